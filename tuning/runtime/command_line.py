"""What every command of the project shares on its command line: one-line errors and the store flags' help."""

from __future__ import annotations

import argparse
import sys
from typing import NoReturn

TRACKING_URI_HELP = "MLflow tracking URI (default: $MLFLOW_TRACKING_URI, else sqlite:///mlflow.db)"
STUDY_STORAGE_HELP = "Optuna study database (default: $OPTUNA_STORAGE, else sqlite:///optuna.db)"


class OneLineErrorParser(argparse.ArgumentParser):
    """argparse, with its errors as one line (`error: ...`) and exit code 2."""

    def error(self, message: str) -> NoReturn:
        print(f"error: {message}", file=sys.stderr)
        sys.exit(2)
