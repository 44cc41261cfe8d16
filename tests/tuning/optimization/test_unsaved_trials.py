"""Trial folders a crashed driver made after Tune's last save are set aside before a resume, on a real Tune experiment."""

from __future__ import annotations

from pathlib import Path

import pytest
import ray
from ray import tune
from ray.tune import ExperimentAnalysis

from tuning.optimization.unsaved_trials import set_aside_unsaved_trial_folders

pytestmark = pytest.mark.slow  # runs Tune on a local Ray


def _one_epoch(config: dict) -> None:
    tune.report({"val_accuracy": config["accuracy"]})


def test_only_the_folders_the_saved_state_does_not_name_are_moved(tmp_path: Path) -> None:
    ray.init(address="local", num_cpus=1, include_dashboard=False, configure_logging=False, log_to_driver=False)
    try:
        results = tune.Tuner(
            _one_epoch, param_space={"accuracy": tune.grid_search([0.5, 0.7])},
            tune_config=tune.TuneConfig(trial_dirname_creator=lambda trial: f"trial-{trial.config['accuracy']}"),
            run_config=tune.RunConfig(storage_path=str(tmp_path), name="search", verbose=0),
        ).fit()
        experiment = Path(results.experiment_path)
        staging = Path(ExperimentAnalysis(str(experiment)).trials[0].local_experiment_path)
        # trials the driver started after its last save, then died: in the storage, and in its staging copy
        for folder in (experiment / "trial-9", staging / "trial-8"):
            folder.mkdir(parents=True)
            (folder / "result.json").write_text("")

        assert set_aside_unsaved_trial_folders(str(experiment)) == ["trial-8", "trial-9"]
        assert set_aside_unsaved_trial_folders(str(experiment)) == [], "nothing left to move"
    finally:
        ray.shutdown()
    assert sorted(path.name for path in experiment.glob("trial-*")) == ["trial-0.5", "trial-0.7"]
    assert [path.name for path in experiment.glob("interrupted-*/*")] == ["trial-9"]
    assert [path.name for path in staging.glob("interrupted-*/*")] == ["trial-8"]
