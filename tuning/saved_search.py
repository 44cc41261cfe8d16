"""A search's own record beside Tune's state: its settings, MLflow parent run and dataset digest.

Written when a search starts, read by `--resume`, which goes on with exactly these settings.
"""

from __future__ import annotations

import json
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path

import pyarrow.fs

from tuning.cli import Command
from tuning.runtime.stores import as_uri, is_uri
from tuning.settings import SearchSettings, SettingsError

STATE_FILE = "fmnist_search.json"


class SavedSearchError(RuntimeError):
    """No resumable search at that place, or an unreadable record; the message names the file."""


@dataclass(frozen=True)
class SavedSearch:
    """The settings a search started with, the MLflow run it logs into and the data it ran on."""

    settings: SearchSettings
    parent_run_id: str
    dataset_digest: str

    def save(self) -> None:
        """Write the record into the search's folder (a local path or a storage URI)."""
        filesystem, path = pyarrow.fs.FileSystem.from_uri(as_uri(self.settings.experiment_path))
        filesystem.create_dir(path, recursive=True)
        record = {"settings": self.settings.to_dict(), "parent_run_id": self.parent_run_id,
                  "dataset_digest": self.dataset_digest}
        with filesystem.open_output_stream(f"{path}/{STATE_FILE}") as stream:
            stream.write(json.dumps(record, indent=2).encode())

    @classmethod
    def load(cls, experiment_path: str) -> SavedSearch:
        """The record of the search at `experiment_path`, or SavedSearchError naming where it looked."""
        filesystem, path = pyarrow.fs.FileSystem.from_uri(as_uri(experiment_path))
        where = f"{experiment_path}/{STATE_FILE}"
        try:
            with filesystem.open_input_stream(f"{path}/{STATE_FILE}") as stream:
                record = json.loads(stream.read())
            return cls(SearchSettings.from_dict(record["settings"]), record["parent_run_id"], record["dataset_digest"])
        except FileNotFoundError:
            raise SavedSearchError(
                f"--resume: {where} not found; --name must be an interrupted search under --storage-path"
            ) from None
        except (ValueError, KeyError, TypeError, SettingsError) as error:
            raise SavedSearchError(f"--resume: {where} is not a search record ({error})") from None


def settings_to_search(command: Command) -> tuple[SearchSettings, SavedSearch | None]:
    """The settings `command` searches with, checked: a new search's, or for `--resume` the saved ones with the flags
    given to it (and the saved record)."""
    if not command.resume:
        return command.new_settings(), None
    saved = SavedSearch.load(command.resume_path())
    settings = saved.settings.resumed_with(command.resume_flags())
    settings.validate()
    return settings, saved


def check_storage_writable(storage_path: str) -> None:
    """SettingsError naming --storage-path when a local storage path cannot be created or written; the check leaves
    nothing behind (a folder it makes in the nearest existing one is removed at once)."""
    if is_uri(storage_path):
        return
    existing = Path(storage_path).absolute()
    while not existing.exists():
        existing = existing.parent
    if not existing.is_dir():
        raise SettingsError(f"--storage-path {storage_path}: {existing} is a file, not a folder")
    try:
        os.rmdir(tempfile.mkdtemp(prefix=".fmnist-tune-check-", dir=existing))
    except OSError as error:
        raise SettingsError(f"--storage-path {storage_path}: cannot create a folder in {existing} ({error.strerror})") from None
