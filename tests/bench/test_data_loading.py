"""The data-loading measurement: its docs' table is the one its results file gives."""

from __future__ import annotations

import json

from tests.conftest import REPOSITORY


def test_benchmarks_md_holds_the_table_of_the_data_loading_results_file() -> None:
    from data_loading import markdown_table

    path = REPOSITORY / "docs" / "results" / "data_loading.json"
    document = (REPOSITORY / "docs" / "benchmarks.md").read_text()
    assert markdown_table(json.loads(path.read_text())) in document, (
        f"docs/benchmarks.md does not hold the table of {path.name}: python bench/data_loading.py --table {path}")
