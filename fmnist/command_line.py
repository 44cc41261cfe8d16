"""What every command of the project does with a bad flag: one line (`error: ...`) and exit code 2, no usage dump."""

from __future__ import annotations

import argparse
import sys
from typing import NoReturn


class OneLineErrorParser(argparse.ArgumentParser):
    """argparse, with its errors as one line (`error: ...`) and exit code 2."""

    def error(self, message: str) -> NoReturn:
        print(f"error: {message}", file=sys.stderr)
        sys.exit(2)
