"""The search's stored study after its search ends: no trial is left RUNNING."""

from __future__ import annotations

from pathlib import Path

import optuna
from optuna.distributions import FloatDistribution
from optuna.trial import TrialState

from tuning.optimization import stored_study


def test_trials_still_running_when_the_search_ends_are_closed_pruned_at_their_last_epoch_or_failed(tmp_path: Path) -> None:
    storage = stored_study.open_storage(f"sqlite:///{tmp_path / 'optuna.db'}")
    study = optuna.create_study(storage=storage, study_name="search", direction="maximize")
    space = {"learning_rate": FloatDistribution(1e-4, 1e-2, log=True)}
    finished, two_epochs, _none_ended = (study.ask(space) for _ in range(3))
    study.tell(finished, 0.91)
    two_epochs.report(0.80, step=1)
    two_epochs.report(0.84, step=2)

    assert stored_study.close_unfinished(storage, "search") == 2
    trials = optuna.load_study(study_name="search", storage=storage).trials
    assert [trial.state for trial in trials] == [TrialState.COMPLETE, TrialState.PRUNED, TrialState.FAIL]
    assert [trial.value for trial in trials] == [0.91, 0.84, None], "the pruned trial keeps its last epoch's value"
    assert stored_study.close_unfinished(storage, "search") == 0, "closing twice changes nothing"
