"""Trial folders a crashed driver made after Tune's last save of the experiment, set aside before a resume.

Tune names a trial's folder when the trial first starts. A trial that was pending in the last save, or that the
driver created after it, has a folder Tune's saved state does not know: in the search's storage, and in the
driver's staging copy that Tune syncs to it (on the driver's node, kept while the Ray cluster lives). On resume Tune
would give that trial a folder with a random suffix (`trial-3_1a2b`) beside the old one, and its name would no longer
match its MLflow run, its Optuna trial and its TensorBoard curves. Moved into `interrupted-<time>/`, the crashed
attempt's files stay readable (TensorBoard shows them there) and the trial starts again in its own name.
"""

from __future__ import annotations

import time

import pyarrow.fs
from ray.tune import ExperimentAnalysis

from tuning.optimization.objective import TRIAL_NAME_PREFIXES
from tuning.runtime.stores import as_uri


def set_aside_unsaved_trial_folders(experiment_path: str) -> list[str]:
    """Move the trial folders that Tune's saved state at `experiment_path` does not name, in the storage and in this
    node's staging copy, into `interrupted-<UTC time>/`; returns their names. Needs Ray initialised."""
    trials = ExperimentAnalysis(experiment_path).trials
    saved = {trial.relative_logdir for trial in trials if trial.relative_logdir}
    aside = f"interrupted-{time.strftime('%Y%m%d-%H%M%S', time.gmtime())}"
    moved = _move_unsaved(*pyarrow.fs.FileSystem.from_uri(as_uri(experiment_path)), saved, aside)
    if trials:
        moved |= _move_unsaved(pyarrow.fs.LocalFileSystem(), trials[0].local_experiment_path, saved, aside)
    return sorted(moved)


def _move_unsaved(filesystem: pyarrow.fs.FileSystem, path: str, saved: set[str], aside: str) -> set[str]:
    if filesystem.get_file_info(path).type != pyarrow.fs.FileType.Directory:
        return set()
    folders = {info.base_name for info in filesystem.get_file_info(pyarrow.fs.FileSelector(path))
               if info.type == pyarrow.fs.FileType.Directory and info.base_name.startswith(TRIAL_NAME_PREFIXES)}
    unsaved = folders - saved
    if unsaved:
        filesystem.create_dir(f"{path}/{aside}")
        for folder in unsaved:
            filesystem.move(f"{path}/{folder}", f"{path}/{aside}/{folder}")
    return unsaved
