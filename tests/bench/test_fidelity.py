"""The fidelity measurement the screening stage rests on: its docs' table is the one its results file gives."""

from __future__ import annotations

import json

from tests.conftest import REPOSITORY

RESULTS = REPOSITORY / "docs" / "results"


def test_benchmarks_md_holds_the_table_of_every_fidelity_results_file() -> None:
    from fidelity import markdown_table

    paths = sorted(RESULTS.glob("fidelity_*.json"))
    document = (REPOSITORY / "docs" / "benchmarks.md").read_text()
    assert paths, "no fidelity results: the screening stage's defaults rest on them"
    for path in paths:
        assert markdown_table(json.loads(path.read_text())) in document, (
            f"docs/benchmarks.md does not hold the table of {path.name}: python bench/fidelity.py --table {path}")
