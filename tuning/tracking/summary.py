"""The summary printed at the end of a search."""

from __future__ import annotations

from ray import tune

from tuning.champion.evaluator import Champion
from tuning.settings import SearchSettings

TOP_TRIALS = 5
SHOWN_METRICS = ("val_accuracy", "val_f1", "val_loss")


def print_summary(
    results: tune.ResultGrid, settings: SearchSettings, champion: Champion, champion_trial_ids: list[str],
    parent_run_id: str,
) -> None:
    """Top trials, the champion (the trials it averages, best first) and its test metrics, where the runs, model and
    logs are."""
    metric = settings.metric
    frame = results.get_dataframe(filter_metric=metric, filter_mode=settings.mode)
    frame = frame.sort_values(metric, ascending=settings.mode == "min").head(TOP_TRIALS)
    searched = [column for column in frame.columns if column.startswith("config/")]
    shown = ["trial_id", "training_iteration", *dict.fromkeys((metric, *SHOWN_METRICS)), *searched]
    table = frame[shown].rename(columns=lambda column: column.removeprefix("config/"))
    print(f"\nTop {len(table)} of {len(results)} trials by {metric} (best epoch of each):")
    print(table.to_string(index=False, float_format=lambda value: f"{value:.4g}"))
    winner = frame.iloc[0]
    print(f"\nBest trial {winner['trial_id']}: {metric} {winner[metric]:.4f} at epoch {winner['training_iteration']}")
    if len(champion_trial_ids) > 1:
        print(f"Champion: the average of trials {', '.join(champion_trial_ids)}, {metric} {champion.validation_score:.4f}")
    test_metrics, registration = champion.test_metrics, champion.registration
    print(
        f"Test set: accuracy {test_metrics.accuracy:.4f}, precision {test_metrics.precision:.4f}, "
        f"recall {test_metrics.recall:.4f}, F1 {test_metrics.f1:.4f}"
    )
    standing = "now the champion" if registration.promoted else (
        f"champion unchanged (it has test accuracy {registration.previous_champion_accuracy:.4f})"
    )
    print(f"Model: {registration.model_uri}, {standing}")
    print(f"MLflow: {settings.tracking_uri}, parent run {parent_run_id}")
    print(f"TensorBoard: tensorboard --logdir {results.experiment_path}")
