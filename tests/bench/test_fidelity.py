"""The fidelity measurement the screening stage rests on: its docs' table is the one its results file gives."""

from __future__ import annotations

import json

from tests.conftest import REPOSITORY

RESULTS = REPOSITORY / "docs" / "results" / "fidelity.json"


def test_benchmarks_md_holds_the_table_of_the_fidelity_results_file() -> None:
    from fidelity import markdown_table

    record = json.loads(RESULTS.read_text())
    assert markdown_table(record) in (REPOSITORY / "docs" / "benchmarks.md").read_text(), (
        f"docs/benchmarks.md does not hold the table of {RESULTS.name}: python bench/fidelity.py --table {RESULTS}")
