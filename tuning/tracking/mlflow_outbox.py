"""An ordered outbox of the trials' MLflow writes, sent by a background thread: training never waits on MLflow.

Tune calls its callbacks in the loop that also processes results and starts trials, so a callback
that waits for an unreachable MLflow server stalls the whole search. The trials' writes (run creation,
metrics, images, the end of a run) go into this outbox instead and are sent in order by one thread,
which keeps retrying the oldest write until the server answers. What is still queued is saved with
Tune's experiment state and sent after a resume. Sending twice loses nothing and duplicates nothing:
a trial's run is looked up by its trial's name before one is created, MLflow drops a metric identical to
one it holds, and an image overwrites itself. An epoch that Tune runs again (after a driver crash it
restores each trial from its last saved experiment state, which can be an epoch behind what the trial
reported) is not logged twice: the epochs a run already holds keep their first values.
"""

from __future__ import annotations

import collections
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any, Literal

from mlflow.entities import DatasetInput, Param, RunTag
from mlflow.tracking import MlflowClient

from tuning.optimization.objective import STEP_KEY
from tuning.runtime.error_text import first_line
from tuning.tracking.parent_run import PARENT_RUN_TAG

TRIAL_ID_TAG = "trial_id"
TRIAL_NAME_TAG = "trial_name"
DEVICE_TAG = "device"
"""What the trial trains on: `cpu`, or `gpu:` and the GPUs' names."""
STEP_METRIC = STEP_KEY
"""Logged with every result at its own step: the last step of its history is the last epoch a run holds."""
RETRY_AFTER_S = (1.0, 2.0, 5.0, 10.0)


@dataclass(frozen=True)
class TrialWrite:
    """One write for a trial's run. `start` carries (run name, params), `metrics` a list of Metric,
    `image` a ConfusionImage (drawn when sent), `tags` a dict, `end` the final status; `epoch` is set for metrics
    and images."""

    trial_id: str
    kind: Literal["start", "metrics", "image", "tags", "end"]
    payload: Any
    epoch: int | None = None


class MlflowOutbox:
    """Sends TrialWrites in order to the tracking server; `put` never blocks on the network."""

    def __init__(self, tracking_uri: str, experiment_id: str, parent_run_id: str, inputs: list[DatasetInput]) -> None:
        self._tracking_uri, self._experiment_id = tracking_uri, experiment_id
        self._parent_run_id, self._inputs = parent_run_id, inputs
        self._run_ids: dict[str, str] = {}
        self._logged_epochs: dict[str, int] = {}
        """Trial id -> the last epoch its run held when the trial (re)started: later writes up to it are replays."""
        self._pending: collections.deque[TrialWrite] = collections.deque()
        self.peak_backlog = 0
        """The most writes ever queued at once."""
        self._set_up_sender()

    def put(self, write: TrialWrite) -> None:
        """Queue a write; the sender thread starts on the first one."""
        with self._lock:
            self._pending.append(write)
            self.peak_backlog = max(self.peak_backlog, len(self._pending))
        self._wake_sender()

    def flush(self, timeout_s: float | None = None) -> bool:
        """Wait until every queued write is sent (or `timeout_s` passes); True when none is left."""
        deadline = None if timeout_s is None else time.monotonic() + timeout_s
        while self.pending():
            if deadline is not None and time.monotonic() > deadline:
                return False
            time.sleep(0.1)
        return True

    def pending(self) -> list[TrialWrite]:
        """The writes not yet sent, oldest first."""
        with self._lock:
            return list(self._pending)

    @property
    def run_ids(self) -> dict[str, str]:
        """Trial id -> MLflow run id, for every trial whose run exists."""
        with self._lock:
            return dict(self._run_ids)

    def snapshot(self) -> tuple[dict[str, str], list[TrialWrite]]:
        """The runs and the unsent writes at one instant: a start sent between two separate reads would be in neither."""
        with self._lock:
            return dict(self._run_ids), list(self._pending)

    def restore(self, run_ids: dict[str, str], pending: list[TrialWrite]) -> None:
        """Take back the runs and the unsent writes of a saved search, to send them first."""
        with self._lock:
            self._run_ids = dict(run_ids)
            self._pending.extendleft(reversed(pending))
        if pending:
            self._wake_sender()

    def __getstate__(self) -> dict[str, Any]:
        """Pickled with Tune's experiment: the configuration and what is left to send, not the thread."""
        state = {key: value for key, value in self.__dict__.items() if key not in ("_lock", "_wakeup", "_sender")}
        state["_pending"] = collections.deque(self.pending())
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        self._set_up_sender()

    def _wake_sender(self) -> None:
        with self._lock:
            if not self._sender.is_alive():
                self._sender.start()
        self._wakeup.set()

    def _set_up_sender(self) -> None:
        self._lock = threading.Lock()
        self._wakeup = threading.Event()
        self._sender = threading.Thread(target=self._send_forever, name="mlflow-outbox", daemon=True)

    def _send_forever(self) -> None:
        failures = 0
        while True:
            with self._lock:
                write = self._pending[0] if self._pending else None
            if write is None:
                self._wakeup.wait()
                self._wakeup.clear()
                continue
            try:
                self._send(write)
            except Exception as error:  # noqa: BLE001 - any failure is retried; the write stays first in line
                if failures == 0:
                    print(f"MLflow at {self._tracking_uri} cannot be reached ({first_line(error, 150)}); "
                          f"training goes on, {len(self.pending())} writes queued", file=sys.stderr, flush=True)
                time.sleep(RETRY_AFTER_S[min(failures, len(RETRY_AFTER_S) - 1)])
                failures += 1
                continue
            if failures:
                print(f"MLflow at {self._tracking_uri} answers again; sending the queued writes", file=sys.stderr, flush=True)
            failures = 0
            with self._lock:
                self._pending.popleft()

    def _send(self, write: TrialWrite) -> None:
        client = MlflowClient(self._tracking_uri)
        if write.kind == "start":
            self._start_run(client, write)
            return
        run_id = self.run_ids.get(write.trial_id)
        if run_id is None:
            return  # a trial whose start was never queued: nothing to write into
        if write.epoch is not None and write.epoch <= self._logged_epochs.get(write.trial_id, 0):
            return  # an epoch run again after a restore: the run keeps the first report of it
        if write.kind == "metrics":
            client.log_batch(run_id, metrics=write.payload)
        elif write.kind == "image":
            with tempfile.TemporaryDirectory() as folder:
                image = Path(folder) / PurePosixPath(write.payload.artifact_file).name
                image.write_bytes(write.payload.png())
                client.log_artifact(run_id, str(image), artifact_path=str(PurePosixPath(write.payload.artifact_file).parent))
        elif write.kind == "tags":
            client.log_batch(run_id, tags=[RunTag(name, value) for name, value in write.payload.items()])
        elif write.kind == "end":
            client.set_terminated(run_id, write.payload)

    def _start_run(self, client: MlflowClient, write: TrialWrite) -> None:
        """The trial's run: the one its name already has (a restart, a resend, or an orphan of a crashed driver this
        trial takes up, which then takes this trial's id), else a new one with params and inputs."""
        run_name, params = write.payload
        run_id = self.run_ids.get(write.trial_id)
        if run_id is None and (run_id := self._existing_run(client, run_name)) is not None:
            client.set_tag(run_id, TRIAL_ID_TAG, write.trial_id)
        if run_id is not None:
            client.update_run(run_id, status="RUNNING")
            self._logged_epochs[write.trial_id] = max((int(point.step) for point in client.get_metric_history(run_id, STEP_METRIC)), default=0)
        else:
            tags = {PARENT_RUN_TAG: self._parent_run_id, TRIAL_ID_TAG: write.trial_id, TRIAL_NAME_TAG: run_name}
            run_id = client.create_run(self._experiment_id, run_name=run_name, tags=tags).info.run_id
            client.log_batch(run_id, params=[Param(name, value) for name, value in params])
            client.log_inputs(run_id, datasets=self._inputs)
        with self._lock:
            self._run_ids[write.trial_id] = run_id

    def _existing_run(self, client: MlflowClient, run_name: str) -> str | None:
        """The search's run for the trial named `run_name` (trial names are unique in a search)."""
        runs = client.search_runs(
            [self._experiment_id],
            filter_string=f"tags.`{PARENT_RUN_TAG}` = '{self._parent_run_id}' and tags.{TRIAL_NAME_TAG} = '{run_name}'",
        )
        return runs[0].info.run_id if runs else None
