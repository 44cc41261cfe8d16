"""The libraries' lines a search shows: hidden when nobody should act on them, shortened when too long to read."""

from __future__ import annotations

import logging

import pytest

from tuning.runtime import library_output

RAY_SEVERAL_INSTANCES = (
    "Found multiple active Ray instances: {'192.0.2.2:6390', '192.0.2.2:6391'}. Connecting to latest cluster at "
    "192.0.2.2:6391. You can override this by setting the `--address` flag or `RAY_ADDRESS` environment variable."
)
"""What ray._private.services logs when `ray.init()` finds several local Rays (Ray 2.60)."""


def test_rays_several_instances_warning_becomes_one_short_line_naming_the_joined_address(
        caplog: pytest.LogCaptureFixture) -> None:
    library_output.hide_library_lines()
    library_output.hide_library_lines()  # twice, as a search and a bench in one process would: one filter
    logger = logging.getLogger("ray._private.services")
    assert sum(isinstance(present, library_output.ShortenLines) for present in logger.filters) == 1
    logger.addHandler(caplog.handler)  # Ray's loggers do not propagate to the root, where caplog listens
    try:
        logger.warning(RAY_SEVERAL_INSTANCES)
        logger.warning("Some other warning %s", "stays")
    finally:
        logger.removeHandler(caplog.handler)
    assert [record.getMessage() for record in caplog.records] == [
        ("note: several local Rays are running; joining 192.0.2.2:6391, the one `ray start` last started "
         "(--address picks another)"),
        "Some other warning stays",
    ]
    assert len(caplog.records[0].getMessage()) <= 120


def test_tokens_note_is_hidden(caplog: pytest.LogCaptureFixture) -> None:
    library_output.hide_library_lines()
    logger = logging.getLogger("ray._private.authentication.authentication_token_setup")
    logger.addHandler(caplog.handler)
    try:
        logger.warning("Token authentication is enabled for this Ray cluster. Set RAY_AUTH_MODE=disabled to opt out.")
        logger.warning("Another line")
    finally:
        logger.removeHandler(caplog.handler)
    assert [record.getMessage() for record in caplog.records] == ["Another line"]
