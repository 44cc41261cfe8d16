"""The summary printed at the end of a search."""

from __future__ import annotations

from argparse import Namespace

from ray import tune

from fmnist.metrics import ClassificationMetrics
from tuning.registry import Registration

TOP_TRIALS = 5


def print_summary(
    results: tune.ResultGrid, options: Namespace, test_metrics: ClassificationMetrics,
    registration: Registration, parent_run_id: str, tracking_uri: str,
) -> None:
    """Top trials, the winner's test metrics, where the runs, model and TensorBoard logs are."""
    frame = results.get_dataframe(filter_metric=options.metric, filter_mode=options.mode)
    frame = frame.sort_values(options.metric, ascending=options.mode == "min").head(TOP_TRIALS)
    searched = [column for column in frame.columns if column.startswith("config/")]
    shown = ["trial_id", "training_iteration", "val_accuracy", "val_f1", "val_loss", *searched]
    table = frame[shown].rename(columns=lambda column: column.removeprefix("config/"))
    print(f"\nTop {len(table)} of {len(results)} trials by {options.metric} (best epoch of each):")
    print(table.to_string(index=False, float_format=lambda value: f"{value:.4g}"))
    winner = frame.iloc[0]
    print(f"\nBest trial {winner['trial_id']}: {options.metric} {winner[options.metric]:.4f} at epoch {winner['training_iteration']}")
    print(
        f"Test set: accuracy {test_metrics.accuracy:.4f}, precision {test_metrics.precision:.4f}, "
        f"recall {test_metrics.recall:.4f}, F1 {test_metrics.f1:.4f}"
    )
    champion = "now the champion" if registration.promoted else (
        f"champion unchanged (it has test accuracy {registration.previous_champion_accuracy:.4f})"
    )
    print(f"Model: {registration.model_uri}, {champion}")
    print(f"MLflow: {tracking_uri}, parent run {parent_run_id}")
    print(f"TensorBoard: tensorboard --logdir {results.experiment_path}")
