"""Where a benchmark's figures go: `docs/results/<name>.json`, with the host, the date and the command that made them.

The README and docs quote these files; a figure in prose that a results file does not hold has no source.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shlex
import sys
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

RESULTS_DIR = Path(__file__).resolve().parents[1] / "docs" / "results"


def host() -> dict[str, Any]:
    """The machine the figures come from: its processor, cores and the vector extensions that change TensorFlow's speed."""
    cpuinfo = Path("/proc/cpuinfo").read_text() if Path("/proc/cpuinfo").exists() else ""
    model = next((line.split(":", 1)[1].strip() for line in cpuinfo.splitlines() if line.startswith("model name")), platform.processor())
    flags = set(next((line.split(":", 1)[1].split() for line in cpuinfo.splitlines() if line.startswith("flags")), []))
    extensions = [name for name in ("avx2", "avx512f", "avx512_bf16", "amx_tile") if name in flags]
    return {"processor": model, "cores": os.cpu_count(), "extensions": extensions, "python": platform.python_version()}


def write(name: str, figures: dict[str, Any], checks: list[tuple[str, bool]]) -> Path:
    """Write the results of the benchmark `name` and return the file's path."""
    RESULTS_DIR.mkdir(parents=True, exist_ok=True)
    path = RESULTS_DIR / f"{name}.json"
    record = {
        "benchmark": name,
        "command": "python " + shlex.join(sys.argv),
        "date": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "host": host(),
        "figures": figures,
        "checks": [{"check": text, "met": held} for text, held in checks],
    }
    path.write_text(json.dumps(record, indent=2) + "\n")
    return path


def add_table_option(parser: argparse.ArgumentParser) -> None:
    """`--table FILE`: print the docs' table of a results file, which a page of docs/ holds as printed."""
    parser.add_argument("--table", type=Path, help="print the docs' table of this results file and do nothing else")


def print_table(path: Path, markdown_table: Callable[[dict[str, Any]], str]) -> None:
    """Print the docs' table of the results file at `path`."""
    print(markdown_table(json.loads(path.read_text())))
