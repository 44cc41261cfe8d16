"""`python -m tuning.search`: the whole search, from data to a registered champion.

Example:
    python -m tuning.search --smoke-test
    python -m tuning.search --num-samples 20 --max-epochs 10 --tracking-uri http://127.0.0.1:5000
    python -m tuning.search --resume --name fmnist-search-20261126-103223
"""

from __future__ import annotations

import logging
import os
import sys

from tuning import cli

QUIET_LIBRARIES = {"TF_CPP_MIN_LOG_LEVEL": "2", "GIT_PYTHON_REFRESH": "quiet", "MLFLOW_SUPPRESS_PRINTING_URL_TO_STDOUT": "true"}
"""Keeps TensorFlow's start-up chatter, MLflow's "Failed to import Git" and its "View run at" links out of the
driver's and the trials' logs."""
CLASSIC_TUNE_OUTPUT = {
    "RAY_AIR_NEW_OUTPUT": "0", "TUNE_WARN_THRESHOLD_S": "2", "TUNE_WARN_EXCESSIVE_EXPERIMENT_CHECKPOINT_SYNC_THRESHOLD_S": "0",
}
"""Tune prints through a `progress_reporter` (our compact table) only with its classic output engine. Its
"processing trial results took 0.6 s" warning (threshold 0.5 s) is for results many times a second: ours
come once an epoch per trial, tens of seconds apart, and each draws a confusion matrix. Its 260-column
"snapshotting has been triggered multiple times" warning fires whenever small-slice epochs take seconds:
that snapshot, forced after `num_to_keep` checkpoints, is what keeps `--resume` consistent, so it stays."""

QUIET_LOGGERS = ("mlflow", "optuna", "alembic", "ray")
"""Libraries whose INFO lines (database set-up, registrations, study creation) the summary already covers."""


def main(argv: list[str] | None = None) -> int:
    """Parse the flags, check every input, then search; a bad input ends with one line and exit code 2."""
    command = cli.parse(argv)
    for name, value in {**QUIET_LIBRARIES, **CLASSIC_TUNE_OUTPUT}.items():
        os.environ.setdefault(name, value)
    from tuning import driver

    for library in QUIET_LOGGERS:  # after the imports: MLflow and Optuna set their loggers up as they load
        logging.getLogger(library).setLevel(logging.WARNING)

    try:
        search = driver.prepare(command)
    except driver.INPUT_ERRORS as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    return driver.run(search)


if __name__ == "__main__":
    sys.exit(main())
