"""Each results file reaches the docs as the table its benchmark prints from it (`--table FILE`)."""

from __future__ import annotations

import importlib
import json
import shlex
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from tests.conftest import REPOSITORY

QUOTED_FIGURE_BY_FIGURE = {"serving"}
"""Results files whose figures docs quote one at a time, each checked by tests/test_results_quoted.py."""
TABLED_RESULTS_FILES = sorted(path for path in (REPOSITORY / "docs" / "results").glob("*.json")
                              if path.stem not in QUOTED_FIGURE_BY_FIGURE)


def _record(path: Path) -> dict[str, Any]:
    return json.loads(path.read_text())


def _benchmark_module(record: dict[str, Any]) -> ModuleType:
    """The bench script that wrote `record`, named by the command the record keeps."""
    return importlib.import_module(Path(shlex.split(record["command"])[1]).stem)


@pytest.mark.parametrize("path", TABLED_RESULTS_FILES, ids=lambda path: path.stem)
def test_the_docs_hold_the_table_its_benchmark_prints_from_each_results_file(path: Path) -> None:
    record = _record(path)
    module = _benchmark_module(record)
    assert hasattr(module, "markdown_table"), f"{module.__file__} prints no table of {path.name} (--table)"
    table = module.markdown_table(record)
    documents = [document.read_text() for document in sorted((REPOSITORY / "docs").glob("*.md"))]
    assert any(table in document for document in documents), (
        f"no page of docs/ holds the table of {path.name}: python {Path(module.__file__).relative_to(REPOSITORY)} "
        f"--table {path.relative_to(REPOSITORY)}")
