"""The README and docs quote the figures the benchmarks wrote (`docs/results/*.json`), not figures of their own."""

from __future__ import annotations

import json
from typing import Any

import pytest

from tests.conftest import REPOSITORY

RESULTS = REPOSITORY / "docs" / "results"


def results(name: str) -> dict[str, Any]:
    return json.loads((RESULTS / f"{name}.json").read_text())


def _readme_missing(quoted: list[str]) -> list[str]:
    text = (REPOSITORY / "README.md").read_text()
    return [figure for figure in quoted if figure not in text]


def served(record: dict[str, Any], body: str, images: int, clients: int) -> dict[str, Any]:
    (row,) = [row for row in record["figures"]["served"]
              if (row["body"], row["images_per_request"], row["clients"]) == (body, images, clients)]
    return row


@pytest.mark.parametrize("document", ["README.md", "docs/benchmarks.md"])
def test_the_serving_figures_are_the_ones_bench_serving_wrote(document: str) -> None:
    record = results("serving")
    text = (REPOSITORY / document).read_text()
    picture = served(record, "png", 1, 1)
    shares = record["figures"]["share_of_in_process_256"]
    quoted = [f"{picture['p50_ms']:.1f} ms p50", f"{picture['p99_ms']:.1f} ms p99",
              f"{shares['npy']:.0%} of in process as `.npy`" if document == "docs/benchmarks.md" else f"{shares['npy']:.0%} as `.npy`",
              f"{shares['json']:.0%} as JSON"]
    missing = [figure for figure in quoted if figure not in text]
    assert missing == [], f"{document} does not quote docs/results/serving.json ({record['date']}): {missing}"


def test_every_results_file_says_where_and_how_it_was_measured() -> None:
    for path in sorted(RESULTS.glob("*.json")):
        record = json.loads(path.read_text())
        assert {"benchmark", "command", "date", "host", "figures", "checks"} <= set(record), path.name
        assert record["command"].startswith("python bench/") and record["host"]["cores"] >= 1, path.name


SEARCH_QUOTES = {
    "search_quality_20min": ["{fmnist-tune.test} test accuracy after {fmnist-tune.trials} configurations",
                             "trained alone {first-point.test}"],
    "search_quality_60min": ["{fmnist-tune.test} test accuracy after {fmnist-tune.trials} trials"],
    "search_quality_60min_seed1": ["{fmnist-tune.test} test accuracy after {fmnist-tune.trials} trials"],
    "search_quality_60min_first_point": ["first point trained alone for 60 minutes, {first-point.test}"],
    "search_quality_10min_cold_seed1": ["{fmnist-tune.test} test accuracy after {fmnist-tune.trials} trials",
                                        "Optuna {optuna.test}", "random search {random.test}",
                                        "KerasTuner {kerastuner.test}"],
    "search_quality_10min_same_start": ["{fmnist-tune.test} test accuracy after {fmnist-tune.trials} trials",
                                        "Optuna {optuna.test}"],
}
"""Each search-quality results file the README's table quotes, and how: `{SEARCHER.test}` is the searcher's mean test
accuracy, `{SEARCHER.trials}` its mean trials."""


@pytest.mark.parametrize("name", list(SEARCH_QUOTES))
def test_the_readme_quotes_each_search_quality_run_from_its_results_file(name: str) -> None:
    record = results(name)
    quoted = []
    for template in SEARCH_QUOTES[name]:
        for row in record["figures"]["means"]:
            template = template.replace(f"{{{row['searcher']}.test}}", f"{row['mean_test_accuracy']:.2%}")
            template = template.replace(f"{{{row['searcher']}.trials}}", f"{row['mean_trials']:g}")
        quoted.append(template)
    missing = _readme_missing(quoted)
    assert missing == [], f"README.md does not quote docs/results/{name}.json ({record['date']}): {missing}"


def test_the_readme_quotes_the_10_minute_cold_comparison_from_its_results_file() -> None:
    record = results("search_quality_10min_cold")
    tests = {row["searcher"]: f"{row['mean_test_accuracy']:.2%}" for row in record["figures"]["means"]}
    quoted = [f"{tests['fmnist-tune']} test accuracy", f"the original CNN {tests['original']}",
              f"the space's first point {tests['first-point']}", f"the first point alone {tests['first-point']}",
              f"random search {tests['random']}",
              f"Optuna {tests['optuna']}", f"KerasTuner {tests['kerastuner']}"]
    missing = _readme_missing(quoted)
    assert missing == [], f"README.md does not quote docs/results/search_quality_10min_cold.json ({record['date']}): {missing}"


def test_the_readme_quotes_the_search_overhead_from_its_results_file() -> None:
    record = results("search_overhead")
    figures = record["figures"]
    quoted = [f"{figures['median_ratio']:.2f}x the time on the medians", f"{figures['fastest_ratio']:.2f}x on the fastest epochs"]
    missing = _readme_missing(quoted)
    assert missing == [], f"README.md does not quote docs/results/search_overhead.json ({record['date']}): {missing}"


def test_the_readme_quotes_the_study_searchers_ask_from_its_results_file() -> None:
    record = results("study_scale")
    first, last = record["figures"]["bands"][0], record["figures"]["bands"][-1]
    quoted = [f"{last['ask_p50_ms']:.0f} ms p50, {last['ask_p99_ms']:.0f} ms p99 ({first['ask_p50_ms']:.1f} ms at the start)"]
    missing = _readme_missing(quoted)
    assert missing == [], f"README.md does not quote docs/results/study_scale.json ({record['date']}): {missing}"


def test_the_readme_quotes_the_scale_sweep_from_its_results_file() -> None:
    record = results("scale")
    rows = record["figures"]["sweep"]
    cpu = sorted(row["driver_cpu_ms_per_result"] for row in rows)
    quoted = [f"{rows[0]['concurrency']} to {rows[-1]['concurrency']} synthetic trials at once",
              f"driver {cpu[0]:.0f}-{cpu[-1]:.0f} ms of CPU a result"]
    assert sum(row["lost"] + row["duplicated"] for row in rows) == 0 or "nothing lost" not in (REPOSITORY / "README.md").read_text()
    missing = _readme_missing(quoted)
    assert missing == [], f"README.md does not quote docs/results/scale.json ({record['date']}): {missing}"
