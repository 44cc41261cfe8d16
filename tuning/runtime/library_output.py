"""What the libraries print: the environment and loggers that keep their chatter out of a search's output."""

from __future__ import annotations

import logging
import os
import re

QUIET_LIBRARIES = {"TF_CPP_MIN_LOG_LEVEL": "2", "GIT_PYTHON_REFRESH": "quiet", "MLFLOW_SUPPRESS_PRINTING_URL_TO_STDOUT": "true"}
"""Keeps TensorFlow's start-up chatter, MLflow's "Failed to import Git" and its "View run at" links out of the
driver's and the trials' logs (the trials get them through Ray's runtime environment, `tuning.runtime.cluster.connect`)."""
NO_TELEMETRY = {"RAY_USAGE_STATS_ENABLED": "0", "MLFLOW_DISABLE_TELEMETRY": "true"}
"""Ray's usage statistics and MLflow's telemetry, on by default in those libraries: a search sends nothing out unless
its user sets these to 1 / false (the platform's image sets the same)."""
CLASSIC_TUNE_OUTPUT = {
    "RAY_AIR_NEW_OUTPUT": "0", "TUNE_WARN_THRESHOLD_S": "2", "TUNE_WARN_EXCESSIVE_EXPERIMENT_CHECKPOINT_SYNC_THRESHOLD_S": "0",
}
"""Tune prints through a `progress_reporter` (our compact table) only with its classic output engine. Its slow
result-processing warning is meant for results many times a second (ours come once an epoch per trial, each
drawing a confusion matrix), and its "snapshotting has been triggered multiple times" warning for forced
snapshots, which are what keeps `--resume` consistent here."""

HIDDEN_LINES = {
    "ray._private.authentication.authentication_token_setup": "Token authentication is enabled for this Ray cluster",
    "ray.tune.tune": "Resume experiment with:",
}
"""Library lines a search's user should not act on, by the logger that writes them: Ray's note that a local Ray has
token auth (as the platform wants), and Tune's `Tuner.restore` hint on Ctrl+C (the search prints its own `--resume`)."""
SHORTENED_LINES = {
    "ray._private.services": (
        r"Found multiple active Ray instances: .* Connecting to latest cluster at (?P<address>\S+)\.(\s|$)",
        "note: several local Rays are running; joining {address}, the one `ray start` last started (--address picks another)",
    ),
}
"""Library lines worth reading but longer than a terminal, by logger: (pattern, the shorter line it becomes)."""
QUIET_LOGGERS = ("mlflow", "optuna", "alembic", "ray")
"""Libraries whose INFO lines (database set-up, registrations, study creation) the summary already covers."""


def quiet_environment() -> None:
    """Set the libraries' output and telemetry switches, unless the user set them; before the libraries are imported."""
    for name, value in {**QUIET_LIBRARIES, **NO_TELEMETRY, **CLASSIC_TUNE_OUTPUT}.items():
        os.environ.setdefault(name, value)


class DropLinesContaining(logging.Filter):
    """A logger filter that drops the records whose message contains `text`."""

    def __init__(self, text: str) -> None:
        super().__init__()
        self.text = text

    def filter(self, record: logging.LogRecord) -> bool:
        return self.text not in record.getMessage()


class ShortenLines(logging.Filter):
    """A logger filter that rewrites the records matching `pattern` as `template`, filled with the match's groups."""

    def __init__(self, pattern: str, template: str) -> None:
        super().__init__()
        self.pattern, self.template = re.compile(pattern), template

    def filter(self, record: logging.LogRecord) -> bool:
        if match := self.pattern.search(record.getMessage()):
            record.msg, record.args = self.template.format(**match.groupdict()), None
        return True


def hide_library_lines() -> None:
    """Drop HIDDEN_LINES and shorten SHORTENED_LINES; before Ray starts (the loggers exist before their modules load,
    so the filters wait there)."""
    for logger_name, text in HIDDEN_LINES.items():
        logger = logging.getLogger(logger_name)
        if not any(isinstance(present, DropLinesContaining) and present.text == text for present in logger.filters):
            logger.addFilter(DropLinesContaining(text))
    for logger_name, (pattern, template) in SHORTENED_LINES.items():
        logger = logging.getLogger(logger_name)
        if not any(isinstance(present, ShortenLines) and present.pattern.pattern == pattern for present in logger.filters):
            logger.addFilter(ShortenLines(pattern, template))


def quiet_loggers() -> None:
    """Only warnings from QUIET_LOGGERS; after the imports, as MLflow and Optuna set their loggers up as they load."""
    for library in QUIET_LOGGERS:
        logging.getLogger(library).setLevel(logging.WARNING)
