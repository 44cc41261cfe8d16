"""Command-line options of `python -m tuning.search`."""

from __future__ import annotations

import argparse
from datetime import datetime

from tuning.space import DEFAULT_SPACE_FILE
from tuning.tracking import DEFAULT_EXPERIMENT

METRICS = ("val_accuracy", "val_f1", "val_precision", "val_recall", "val_loss")


def build_parser() -> argparse.ArgumentParser:
    """Every flag, documented for `--help`."""
    parser = argparse.ArgumentParser(
        prog="python -m tuning.search",
        description="Hyperparameter search for the Fashion-MNIST CNN: Optuna (TPE) proposes, ASHA stops "
        "weak trials early, MLflow and TensorBoard record every epoch, and the best trial is evaluated "
        "on the test set and registered in MLflow's model registry.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    space = parser.add_argument_group("search space and data")
    space.add_argument("--config", default=str(DEFAULT_SPACE_FILE), help="search-space YAML file")
    space.add_argument("--data-dir", help="dataset directory (default: $FMNIST_DATA_DIR or ./data)")
    space.add_argument("--train-size", type=int, help="use a class-balanced subset of this many training images")
    space.add_argument("--validation-fraction", type=float, default=0.1, help="share of the training file held out for validation")

    search = parser.add_argument_group("search")
    search.add_argument("--num-samples", type=int, default=10, help="number of trials")
    search.add_argument("--max-epochs", type=int, default=5, help="epochs for a trial that ASHA never stops")
    search.add_argument("--grace-period", type=int, default=1, help="ASHA: epochs before a trial can be stopped")
    search.add_argument("--reduction-factor", type=float, default=3, help="ASHA: keep 1/this of trials at each rung")
    search.add_argument("--max-concurrent-trials", type=int, default=2, help="trials running at once")
    search.add_argument("--cpus-per-trial", type=float, default=1, help="CPUs reserved by each trial")
    search.add_argument("--gpus-per-trial", type=float, default=0, help="GPUs reserved by each trial")
    search.add_argument("--time-budget-s", type=float, help="stop starting and running trials after this many seconds")
    search.add_argument("--seed", type=int, default=0, help="seed of the TPE sampler, the split and the trials")
    search.add_argument("--metric", choices=METRICS, default="val_accuracy", help="validation metric to select on (loss is minimised, the rest maximised)")
    search.add_argument("--max-failures", type=int, default=2, help="restarts of a failed trial, from its last checkpoint")
    search.add_argument("--smoke-test", action="store_true", help="2 trials, 1 epoch, 2,000 images: a run of seconds")

    where = parser.add_argument_group("where things run and go")
    where.add_argument("--address", help="Ray cluster address (default: $RAY_ADDRESS, else a local Ray)")
    where.add_argument("--storage-path", default="results", help="Tune results, checkpoints and TensorBoard logs (a path or URI shared by all nodes)")
    where.add_argument("--name", default=None, help="experiment name under the storage path (default: fmnist-search-<timestamp>)")
    where.add_argument("--resume", action="store_true", help="continue the interrupted search --name under --storage-path")
    where.add_argument("--tracking-uri", help="MLflow tracking URI (default: $MLFLOW_TRACKING_URI, else sqlite:///mlflow.db)")
    where.add_argument("--experiment-name", default=DEFAULT_EXPERIMENT, help="MLflow experiment")
    where.add_argument("--model-name", default="fmnist-cnn", help="MLflow registered model")
    return parser


def parse(argv: list[str] | None = None) -> argparse.Namespace:
    """Parse and check the flags; `--smoke-test` shrinks the run, `--resume` needs `--name`."""
    parser = build_parser()
    options = parser.parse_args(argv)
    if options.resume and not options.name:
        parser.error("--resume needs --name (the experiment directory under --storage-path)")
    if options.smoke_test:
        options.num_samples, options.max_epochs = 2, 1
        options.train_size = options.train_size or 2_000
    for flag in ("num_samples", "max_epochs", "grace_period", "max_concurrent_trials"):
        if getattr(options, flag) < 1:
            parser.error(f"--{flag.replace('_', '-')} must be at least 1")
    if options.grace_period > options.max_epochs:
        parser.error("--grace-period cannot exceed --max-epochs")
    if options.reduction_factor <= 1:
        parser.error("--reduction-factor must be above 1")
    options.name = options.name or datetime.now().strftime("fmnist-search-%Y%m%d-%H%M%S")
    options.mode = "min" if options.metric.endswith("loss") else "max"
    return options
