"""Every command answers a bad flag in one line naming it, with exit code 2, before it starts anything."""

from __future__ import annotations

import importlib
import socket
from collections.abc import Iterator

import pytest

ENTRY_POINTS = ("tuning.search", "tuning.report", "tuning.jobs", "tuning.dashboard", "tuning.champion.model_server",
                "tuning.champion.load", "fmnist.__main__")


@pytest.fixture
def taken_port() -> Iterator[int]:
    """A port this test listens on, so that a server asked for it cannot."""
    with socket.create_server(("127.0.0.1", 0)) as listening:
        yield listening.getsockname()[1]


def _refusal(module: str, argv: list[str], capsys: pytest.CaptureFixture[str]) -> str:
    """The one line `module`'s main prints for `argv`, after checking it exits with code 2 and prints nothing else."""
    with pytest.raises(SystemExit) as ended:
        importlib.import_module(module).main(argv)
    assert ended.value.code == 2
    printed = capsys.readouterr()
    assert printed.out == "" and printed.err.count("\n") == 1 and printed.err.startswith("error: "), printed.err
    return printed.err.strip()


@pytest.mark.parametrize("module", ENTRY_POINTS)
def test_an_unknown_flag_is_one_line(module: str, capsys: pytest.CaptureFixture[str]) -> None:
    action = ["status"] if module == "tuning.jobs" else []
    assert _refusal(module, [*action, "--no-such-flag"], capsys) == "error: unrecognized arguments: --no-such-flag"


@pytest.mark.parametrize("module", ["tuning.dashboard", "tuning.champion.model_server"])
def test_a_server_refuses_a_port_out_of_range_or_taken_and_an_address_that_is_none(
        module: str, taken_port: int, capsys: pytest.CaptureFixture[str]) -> None:
    assert _refusal(module, ["--port", "70000"], capsys) == "error: --port must be between 1 and 65535, got 70000"
    assert _refusal(module, ["--port", str(taken_port)], capsys) == (
        f"error: --port {taken_port}: cannot listen on 127.0.0.1:{taken_port} (Address already in use)")
    assert _refusal(module, ["--host", "192.0.2.1", "--port", "8123"], capsys).startswith(
        "error: --port 8123: cannot listen on 192.0.2.1:8123 (")


@pytest.mark.parametrize(("argv", "named"), [
    (["--clients", "0"], "error: --clients must be at least 1, got 0"),
    (["--seconds", "0"], "error: --seconds must be above 0 and at most 3600, got 0"),
    (["--url", "ftp://example"], "error: --url ftp://example: expected http://host:port"),
    (["--body", "xml"], "error: argument --body: invalid choice: 'xml'"),
])
def test_the_load_tester_names_its_bad_flag(argv: list[str], named: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert _refusal("tuning.champion.load", argv, capsys).startswith(named)
