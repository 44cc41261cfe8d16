"""MLflow set-up for a search: the tracking URI, a reachability check, the parent run, dataset lineage."""

from __future__ import annotations

import contextlib
import os
import re
import time
import urllib.error
import urllib.request
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import mlflow
from mlflow.data.numpy_dataset import from_numpy
from mlflow.entities import DatasetInput, InputTag, Metric, Param, RunTag
from mlflow.environment_variables import MLFLOW_HTTP_REQUEST_MAX_RETRIES
from mlflow.exceptions import RestException
from mlflow.tracking import MlflowClient
from mlflow.utils.mlflow_tags import MLFLOW_DATASET_CONTEXT

from fmnist.data import Split
from tuning.runtime.error_text import first_line

DIGEST_LENGTH = 32  # MLflow stores dataset digests in 36 characters
SPACE_ARTIFACT_DIR = "search"
PARENT_RUN_TAG = "mlflow.parentRunId"
"""MLflow's system tag that nests a trial's run under its search's parent run."""
SEARCH_RUN_TAG = "fmnist.search"
"""Marks a search's parent run (its trial runs carry `mlflow.parentRunId` instead)."""


SERVER_ERROR = re.compile(r"too many (5\d\d) error responses")
"""How MLflow's client reports a request the server answered with HTTP 5xx (through urllib3's retries)."""


class TrackingError(RuntimeError):
    """The MLflow tracking server cannot be used; the message names the URI."""


def check_server(tracking_uri: str) -> None:
    """For an MLflow server: it answers and accepts this client's login (checked with a read: nothing is written)."""
    if not tracking_uri.startswith(("http://", "https://")):
        return
    _check_health(tracking_uri)
    try:
        with _without_retries():
            MlflowClient(tracking_uri).search_experiments(max_results=1)
    except mlflow.exceptions.MlflowException as error:
        raise _tracking_error(tracking_uri, error) from None


@contextlib.contextmanager
def _without_retries() -> Iterator[None]:
    """MLflow's client with one attempt per request: a server answering 5xx fails the check at once instead
    of after minutes of backoff (MLflow retries those for the writes that follow)."""
    name = MLFLOW_HTTP_REQUEST_MAX_RETRIES.name
    previous = os.environ.get(name)
    os.environ[name] = "0"
    try:
        yield
    finally:
        if previous is None:
            del os.environ[name]
        else:
            os.environ[name] = previous


def ensure_experiment(tracking_uri: str, experiment_name: str) -> str:
    """Point MLflow at `tracking_uri`, check it answers, create the experiment if missing; return its id."""
    check_server(tracking_uri)
    mlflow.set_tracking_uri(tracking_uri)
    mlflow.set_registry_uri(tracking_uri)
    try:
        experiment = mlflow.get_experiment_by_name(experiment_name)
        return experiment.experiment_id if experiment else mlflow.create_experiment(experiment_name)
    except mlflow.exceptions.MlflowException as error:
        raise _tracking_error(tracking_uri, error) from None


def _tracking_error(tracking_uri: str, error: mlflow.exceptions.MlflowException) -> TrackingError:
    """The server's refusal in one line naming the flag; a refused login says which variables to set."""
    status = error.get_http_status_code()
    if status in (401, 403):
        return TrackingError(f"--tracking-uri {tracking_uri}: MLflow refused the login (HTTP {status}); "
                             f"set MLFLOW_TRACKING_USERNAME and MLFLOW_TRACKING_PASSWORD")
    server_error = SERVER_ERROR.search(str(error))
    # a 5xx comes through urllib3's retries, or, as the server's own JSON error (a 503 when its database is down), at once
    answered = server_error[1] if server_error else status if isinstance(error, RestException) and status >= 500 else None
    if answered:
        return TrackingError(f"--tracking-uri {tracking_uri}: MLflow answered HTTP {answered}, a server error "
                             f"(is its database up? its log says why)")
    return TrackingError(f"--tracking-uri {tracking_uri}: {first_line(error)}")


def start_parent_run(
    experiment_id: str, search_name: str, params: dict[str, str], space_file: Path, inputs: list[DatasetInput]
) -> str:
    """Create the search's parent run, named after the search, with its settings as params, its
    search-space file as an artifact and the dataset as lineage. Trial runs nest under it."""
    client = MlflowClient()
    run_id = client.create_run(experiment_id, run_name=search_name, tags={SEARCH_RUN_TAG: "true"}).info.run_id
    client.log_batch(run_id, params=[Param(name, value) for name, value in params.items()])
    client.log_artifact(run_id, str(space_file), artifact_path=SPACE_ARTIFACT_DIR)
    client.log_inputs(run_id, datasets=inputs)
    return run_id


def check_run_exists(tracking_uri: str, run_id: str) -> None:
    """TrackingError unless the run is in the store at `tracking_uri` (a resumed search logs into it)."""
    try:
        MlflowClient().get_run(run_id)
    except mlflow.exceptions.MlflowException:
        raise TrackingError(f"--tracking-uri {tracking_uri}: the search's parent run {run_id} is not there") from None


def finish_parent_run(
    run_id: str, best_trial_id: str, best_config: dict[str, Any], champion_trial_ids: list[str],
    champion_metrics: dict[str, float],
) -> None:
    """Record the best trial (its config as `best.*` params, its run), the trials the champion averages (tag
    `champion_trial_ids`) and its validation scores (`champion_*` metrics), and close the parent run."""
    client = MlflowClient()
    best_trial_runs = client.search_runs(
        [client.get_run(run_id).info.experiment_id],
        filter_string=f"tags.mlflow.parentRunId = '{run_id}' and tags.trial_id = '{best_trial_id}'",
    )
    now_ms = int(time.time() * 1000)
    client.log_batch(
        run_id,
        metrics=[Metric(name, value, timestamp=now_ms, step=0) for name, value in champion_metrics.items()],
        params=[Param(f"best.{name}", str(value)) for name, value in sorted(best_config.items())],
        tags=[RunTag("best_trial_id", best_trial_id), RunTag("champion_trial_ids", ",".join(champion_trial_ids))],
    )
    if best_trial_runs:
        client.set_tag(run_id, "best_trial_run_id", best_trial_runs[0].info.run_id)
    client.set_terminated(run_id, "FINISHED")


def set_parent_run_status(run_id: str, status: str) -> None:
    """KILLED for a search interrupted or stopped as a job, RUNNING again when `--resume` continues it."""
    client = MlflowClient()
    if status == "RUNNING":
        client.update_run(run_id, status="RUNNING")
    else:
        client.set_terminated(run_id, status)


def kill_running_search_run(tracking_uri: str, experiment_name: str, search_name: str) -> bool:
    """Mark the search `search_name`'s parent run KILLED if it is still RUNNING (its driver was stopped from outside);
    True when one was."""
    client = MlflowClient(tracking_uri)
    experiment = client.get_experiment_by_name(experiment_name)
    if experiment is None:
        return False
    runs = client.search_runs([experiment.experiment_id], max_results=1, filter_string=(
        f"tags.`{SEARCH_RUN_TAG}` = 'true' and attributes.run_name = '{search_name}' and attributes.status = 'RUNNING'"))
    for run in runs:
        client.set_terminated(run.info.run_id, "KILLED")
    return bool(runs)


def log_warm_start(run_id: str, trials_added: int, trials_skipped: int) -> None:
    """Record on the parent run how many earlier trials seeded the sampler and how many fell outside the space."""
    MlflowClient().log_batch(run_id, params=[
        Param("warm_start.trials_added", str(trials_added)), Param("warm_start.trials_skipped", str(trials_skipped)),
    ])


def dataset_inputs(train: Split, validation: Split, digest: str, source: Path) -> list[DatasetInput]:
    """Lineage records for the training and validation splits, carrying the dataset's digest."""
    inputs = []
    for context, split in (("training", train), ("validation", validation)):
        with warnings.catch_warnings():  # a local path reads as two equal kinds of source: MLflow picks the right one
            warnings.filterwarnings("ignore", message="The specified dataset source can be interpreted in multiple ways")
            dataset = from_numpy(
                split.images, targets=split.labels, source=str(source.resolve()),
                name=f"fashion-mnist-{context}", digest=digest[:DIGEST_LENGTH],
            )
        entity = mlflow.entities.Dataset(**dataset.to_dict())
        inputs.append(DatasetInput(entity, tags=[InputTag(MLFLOW_DATASET_CONTEXT, context)]))
    return inputs


def _check_health(tracking_uri: str) -> None:
    url = tracking_uri.rstrip("/") + "/health"
    try:
        with urllib.request.urlopen(url, timeout=10) as response:
            response.read()
    except urllib.error.HTTPError as error:
        raise TrackingError(f"--tracking-uri {tracking_uri}: {url} answered HTTP {error.code}") from None
    except (urllib.error.URLError, OSError) as error:
        reason = getattr(error, "reason", error)
        raise TrackingError(f"--tracking-uri {tracking_uri}: MLflow server unreachable ({reason})") from None
