"""Best validation accuracy over wall time of a search that has run, read from its results.

Usage: python bench/search_curve.py NAME [--storage-path results] [--tracking-uri sqlite:///mlflow.db]
                                      [--budget-s 3600] [--targets 0.92,0.93]

Reads every trial's `result.json` under STORAGE_PATH/NAME and the search's MLflow parent run (its start is
time zero: Ray and the data come a few seconds before it; its `test_accuracy` is the champion's). Prints
the table of bench/compare_searchers.py for this one search, and how many trials trained all the search's
--max-epochs (read from its saved settings).
"""

from __future__ import annotations

import argparse
from collections import Counter
from pathlib import Path

from compare_searchers import curve_files, finished_search_curve, print_table

from tuning.runtime.stores import DEFAULT_TRACKING_URI
from tuning.saved_search import SavedSearch
from tuning.settings import SearchSettings


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("name", help="the search's --name")
    parser.add_argument("--storage-path", type=Path, default=Path(SearchSettings.storage_path))
    parser.add_argument("--tracking-uri", default=DEFAULT_TRACKING_URI)
    parser.add_argument("--budget-s", type=float, default=3600)
    parser.add_argument("--targets", type=lambda text: [float(value) for value in text.split(",")], default=[0.92, 0.93])
    options = parser.parse_args()
    experiment_dir = options.storage_path / options.name
    if not curve_files(experiment_dir):
        parser.error(f"{experiment_dir}: no trial results there")
    options.max_epochs = SavedSearch.load(str(experiment_dir.resolve())).settings.max_epochs
    curve = finished_search_curve(experiment_dir, options.tracking_uri, options.name)
    print_table({options.name: curve}, options)
    epochs_per_trial = Counter(trial for _, _, trial in curve.epochs)
    full = sum(count >= options.max_epochs for count in epochs_per_trial.values())
    print(f"{full} of {len(epochs_per_trial)} trials trained all {options.max_epochs} epochs; last epoch at "
          f"{curve.epochs[-1][0] / 60:.1f} min")


if __name__ == "__main__":
    main()
