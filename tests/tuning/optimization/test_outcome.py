"""Reading a finished Tune run: interruption, and the leading trials by their best epoch (no model is trained)."""

from __future__ import annotations

import json
import tempfile
from pathlib import Path

import pytest
import ray
from ray import tune

from tuning.optimization.outcome import leaders, was_interrupted

# The validation accuracy each trial reports at epochs 1, 2, 3: "peaked" is best at epoch 2 but ends
# below "steady"; ranking by the best epoch must put "peaked" first, with its epoch-2 checkpoint.
CURVES = {"steady": [0.70, 0.80, 0.85], "peaked": [0.75, 0.90, 0.60], "weak": [0.50, 0.55, 0.60]}


@pytest.mark.parametrize(
    ("statuses", "num_samples", "budget", "elapsed", "expected"),
    [
        (["TERMINATED", "TERMINATED"], 2, None, 10.0, False),
        (["TERMINATED", "ERROR"], 2, None, 10.0, False),
        (["TERMINATED", "RUNNING"], 2, None, 10.0, True),
        (["TERMINATED", "PENDING"], 2, 60.0, 70.0, False),
        (["TERMINATED", "RUNNING"], -1, 60.0, 30.0, True),
        (["TERMINATED", "TERMINATED"], -1, 60.0, 61.0, False),
        (["TERMINATED"], 2, None, 10.0, True),
        (["TERMINATED"], 2, 60.0, 30.0, True),
        (["TERMINATED"], 2, 60.0, 61.0, False),
    ],
)
def test_interruption_is_read_from_trial_statuses(
    statuses: list[str], num_samples: int, budget: float | None, elapsed: float, expected: bool
) -> None:
    assert was_interrupted(statuses, num_samples, budget, elapsed) is expected


def _report_curve(config: dict) -> None:
    for epoch, accuracy in enumerate(CURVES[config["curve"]], start=1):
        with tempfile.TemporaryDirectory() as directory:
            (Path(directory) / "epoch.json").write_text(json.dumps(epoch))
            tune.report({"val_accuracy": accuracy, "epoch": epoch}, checkpoint=tune.Checkpoint.from_directory(directory))


@pytest.fixture(scope="module")
def curves_results(tmp_path_factory: pytest.TempPathFactory) -> tune.ResultGrid:
    ray.init(address="local", num_cpus=2, include_dashboard=False, configure_logging=False, log_to_driver=False)
    tuner = tune.Tuner(
        _report_curve,
        param_space={"curve": tune.grid_search(list(CURVES))},
        run_config=tune.RunConfig(storage_path=str(tmp_path_factory.mktemp("tune")), name="curves", verbose=0),
    )
    yield tuner.fit()
    ray.shutdown()


@pytest.mark.slow  # runs Tune on a local Ray
def test_trials_lead_by_their_best_epoch_with_that_epochs_checkpoint(curves_results: tune.ResultGrid) -> None:
    ranked = leaders(curves_results, "val_accuracy", "max", count=3)
    assert [leader.config["curve"] for leader in ranked] == ["peaked", "steady", "weak"]
    with ranked[0].checkpoint.as_directory() as directory:
        assert json.loads((Path(directory) / "epoch.json").read_text()) == 2
    assert len({leader.trial_id for leader in ranked}) == 3
    assert [leader.config for leader in leaders(curves_results, "val_accuracy", "max", count=2)] == [
        {"curve": "peaked"}, {"curve": "steady"}
    ]


@pytest.mark.slow  # runs Tune on a local Ray
def test_minimising_ranks_the_lowest_value_of_any_epoch_first(curves_results: tune.ResultGrid) -> None:
    assert [leader.config["curve"] for leader in leaders(curves_results, "val_accuracy", "min", count=3)] == [
        "weak", "peaked", "steady"
    ]
