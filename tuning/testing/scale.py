"""The harness that runs many synthetic trials through the search's own path on a simulated cluster and audits what
they left behind: Tune's results against MLflow's runs and metric points and the study's trials and epochs.
`bench/scale.py` measures with it; `tests/tuning/testing/test_scale.py` asserts with it."""

from __future__ import annotations

import contextlib
import resource
import tempfile
import threading
import time
from collections import defaultdict
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Self

import optuna
import psycopg2
import ray
from ray.cluster_utils import Cluster

from tuning import cli, driver, saved_search
from tuning.optimization import stored_study
from tuning.optimization.objective import STEP_KEY, TRIAL_NUMBER_KEY
from tuning.optimization.study_searcher import StoredStudySearcher
from tuning.testing.services import POSTGRES, fresh_database, postgres_url, running_mlflow_server
from tuning.testing.synthetic_trial import sleeping_trial
from tuning.tracking.mlflow_callback import numeric_metrics

CHECKPOINT_BYTES = 1_060_070
"""The original CNN's `model.keras` with its optimizer state, as a trial checkpoints it."""


@dataclass
class Services:
    """The PostgreSQL databases, the MLflow server and the Ray cluster the searches share."""

    tracking_uri: str
    mlflow_database: str
    study_database: str
    ray_address: str
    storage_path: Path
    data_dir: str | None

    @property
    def study_storage(self) -> str:
        return postgres_url(self.study_database)


@dataclass
class Audit:
    """What the search should have left behind against what is there."""

    trials: int
    results: int
    runs_missing: int
    runs_duplicated: int
    points_expected: int
    points_missing: int
    points_duplicated: int
    study_trials_missing: int
    study_trials_duplicated: int
    study_epochs_missing: int
    processes: int
    """Trial processes the trials ran in (Tune reuses a finished trial's process for the next)."""

    @property
    def lost(self) -> int:
        return self.runs_missing + self.points_missing + self.study_trials_missing + self.study_epochs_missing

    @property
    def duplicated(self) -> int:
        return self.runs_duplicated + self.points_duplicated + self.study_trials_duplicated


@dataclass
class Measured:
    """One search: its size, its times and what it left behind."""

    concurrency: int
    wall_s: float
    epochs: int
    epoch_s: float
    audit: Audit
    driver_cpu_s: float
    driver_peak_mb: float
    outbox_peak: int
    outbox_drain_s: float
    connections: dict[str, int]
    asks: list[tuple[int, float]] = field(default_factory=list)
    tells: list[tuple[int, float]] = field(default_factory=list)
    bare_tune_overhead: float | None = None
    """The same trials' overhead with Tune alone (`--bare-tune`), when measured."""

    @property
    def minimal_s(self) -> float:
        return self.epochs * self.epoch_s / self.concurrency

    @property
    def overhead(self) -> float:
        return self.wall_s / self.minimal_s

    @property
    def trials_per_hour(self) -> float:
        return self.audit.trials / self.wall_s * 3600

    @property
    def epochs_per_hour_per_slot(self) -> float:
        """The work done per concurrent trial: ASHA lets a different share of trials go on in each search, so trials
        per hour compare searches only when weighed by their epochs."""
        return self.epochs / self.wall_s * 3600 / self.concurrency


@contextlib.contextmanager
def simulated_cluster(nodes: int, cpus_per_node: int) -> Iterator[str]:
    """A head that runs no trial and `nodes` worker nodes of `cpus_per_node` logical CPUs, all on this host."""
    simulated = Cluster(initialize_head=True, head_node_args={"num_cpus": 0, "include_dashboard": False})
    try:
        for _ in range(nodes):
            simulated.add_node(num_cpus=cpus_per_node)
        simulated.wait_for_nodes()
        yield simulated.address
    finally:
        ray.shutdown()
        simulated.shutdown()


@contextlib.contextmanager
def services(nodes: int, cpus_per_node: int, data_dir: str | None, mlflow_workers: int = 2) -> Iterator[Services]:
    """Fresh MLflow and study databases, an MLflow server and a simulated cluster, stopped afterwards."""
    with (tempfile.TemporaryDirectory(prefix="fmnist-scale-") as folder, fresh_database("fmnist_scale_mlflow") as mlflow_db,
          fresh_database("fmnist_scale_study") as study_db,
          running_mlflow_server(["--backend-store-uri", postgres_url(mlflow_db), "--serve-artifacts", "--artifacts-destination",
                                 str(Path(folder) / "artifacts")], Path(folder) / "mlflow-server.log", mlflow_workers) as uri,
          simulated_cluster(nodes, cpus_per_node) as address):
        yield Services(uri, mlflow_db, study_db, address, Path(folder) / "searches", data_dir)


class Sampler:
    """Samples the driver's resident memory and PostgreSQL's connections per database twice a second, on a thread."""

    def __init__(self, databases: list[str]) -> None:
        self.peak_rss_mb, self.connections = 0.0, dict.fromkeys(databases, 0)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> Self:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        self._thread.join()

    def _run(self) -> None:
        with psycopg2.connect(dbname="postgres", **POSTGRES) as admin:
            admin.autocommit = True
            while not self._stop.wait(0.5):
                self.peak_rss_mb = max(self.peak_rss_mb, resident_mb())
                with admin.cursor() as cursor:
                    cursor.execute("SELECT datname, count(*) FROM pg_stat_activity WHERE datname = ANY(%s) GROUP BY datname",
                                   (list(self.connections),))
                    for database, count in cursor.fetchall():
                        self.connections[database] = max(self.connections[database], int(count))


def resident_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


@contextlib.contextmanager
def timed_searcher(asks: list[tuple[int, float]], tells: list[tuple[int, float]]) -> Iterator[None]:
    """Record how long each of the searcher's asks (with the study's size then) and tells take, around the real calls."""
    suggest, complete = StoredStudySearcher.suggest, StoredStudySearcher.on_trial_complete

    def timed_suggest(self: StoredStudySearcher, trial_id: str) -> object:
        started = time.perf_counter()
        config = suggest(self, trial_id)
        if isinstance(config, dict):
            asks.append((int(config[TRIAL_NUMBER_KEY]), time.perf_counter() - started))
        return config

    def timed_complete(self: StoredStudySearcher, trial_id: str, result: dict | None = None, error: bool = False) -> None:
        started = time.perf_counter()
        complete(self, trial_id, result, error)
        tells.append((len(tells), time.perf_counter() - started))

    StoredStudySearcher.suggest, StoredStudySearcher.on_trial_complete = timed_suggest, timed_complete
    try:
        yield
    finally:
        StoredStudySearcher.suggest, StoredStudySearcher.on_trial_complete = suggest, complete


def scaled_search(place: Services, name: str, trials: int, concurrency: int, epoch_s: float, max_epochs: int,
                  checkpoint_bytes: int = CHECKPOINT_BYTES) -> Measured:
    """One search of `trials` synthetic trials, `concurrency` at once, through the driver; measured and audited."""
    argv = ["--name", name, "--address", place.ray_address, "--tracking-uri", place.tracking_uri,
            "--study-storage", place.study_storage, "--storage-path", str(place.storage_path),
            "--num-samples", str(trials), "--max-concurrent-trials", str(concurrency), "--cpus-per-trial", "1",
            "--max-epochs", str(max_epochs), "--grace-period", "1", "--reduction-factor", "3", "--train-size", "2000"]
    if place.data_dir:
        argv += ["--data-dir", place.data_dir]
    settings, _ = saved_search.settings_to_search(cli.parse(argv))
    search = driver.prepare(settings, None)
    asks: list[tuple[int, float]] = []
    tells: list[tuple[int, float]] = []
    before = resource.getrusage(resource.RUSAGE_SELF)
    with Sampler([place.mlflow_database, place.study_database]) as sampler, timed_searcher(asks, tells):
        started = time.monotonic()
        finished = driver.search_trials(search, sleeping_trial(epoch_s, checkpoint_bytes))
        wall = time.monotonic() - started
    after = resource.getrusage(resource.RUSAGE_SELF)
    if isinstance(finished, int):
        raise SystemExit(f"the search {name} ended with exit code {finished}")
    assert finished.mlflow is not None, "a new search has its MLflow callback"
    audit = audit_search(finished, place, name)
    cpu = (after.ru_utime + after.ru_stime) - (before.ru_utime + before.ru_stime)
    return Measured(concurrency, wall, audit.results, epoch_s, audit, cpu, sampler.peak_rss_mb,
                    finished.mlflow.peak_backlog, finished.mlflow.drain_s,
                    {"mlflow": sampler.connections[place.mlflow_database], "study": sampler.connections[place.study_database]},
                    asks, tells)


def audit_search(finished: driver.FinishedSearch, place: Services, name: str) -> Audit:
    """Every Tune trial's results against its MLflow run's metric points and its study trial's epochs."""
    epochs: dict[str, int] = {}
    keys: dict[str, set[str]] = {}
    processes = {(result.metrics["node_ip"], result.metrics["pid"]) for result in finished.results}
    for result in finished.results:
        trial_id = str(result.metrics["trial_id"])
        epochs[trial_id] = int(result.metrics[STEP_KEY])
        keys[trial_id] = {metric.key for metric in numeric_metrics(result.metrics)}
    runs_missing, runs_duplicated, points_missing, points_duplicated = mlflow_audit(finished.parent_run_id, place, epochs, keys)
    study = optuna.load_study(study_name=name, storage=place.study_storage)
    by_trial: dict[str, list[optuna.trial.FrozenTrial]] = defaultdict(list)
    for trial in study.get_trials(deepcopy=False):
        if stored_study.TUNE_TRIAL_ID_ATTR in trial.user_attrs:
            by_trial[trial.user_attrs[stored_study.TUNE_TRIAL_ID_ATTR]].append(trial)
    study_missing = sum(trial_id not in by_trial for trial_id in epochs)
    study_duplicated = sum(len(trials) - 1 for trials in by_trial.values())
    epochs_missing = sum(len(set(range(1, count + 1)) - set(by_trial[trial_id][0].intermediate_values))
                         for trial_id, count in epochs.items() if trial_id in by_trial)
    return Audit(len(epochs), sum(epochs.values()), runs_missing, runs_duplicated,
                 sum(epochs[t] * len(keys[t]) for t in epochs), points_missing, points_duplicated,
                 study_missing, study_duplicated, epochs_missing, len(processes))


def mlflow_audit(parent_run_id: str, place: Services, epochs: dict[str, int], keys: dict[str, set[str]]) -> tuple[int, int, int, int]:
    """Runs missing and duplicated, metric points missing and duplicated, read from the MLflow server's database."""
    with psycopg2.connect(dbname=place.mlflow_database, **POSTGRES) as connection, connection.cursor() as cursor:
        cursor.execute("SELECT trial.value, trial.run_uuid FROM tags trial JOIN tags parent ON parent.run_uuid = trial.run_uuid "
                       "WHERE trial.key = 'trial_id' AND parent.key = 'mlflow.parentRunId' AND parent.value = %s",
                       (parent_run_id,))
        runs: dict[str, list[str]] = defaultdict(list)
        for trial_id, run_uuid in cursor.fetchall():
            runs[trial_id].append(run_uuid)
        cursor.execute("SELECT run_uuid, key, step, count(*) FROM metrics WHERE run_uuid = ANY(%s) GROUP BY run_uuid, key, step",
                       ([run for ids in runs.values() for run in ids],))
        points: dict[str, dict[tuple[str, int], int]] = defaultdict(dict)
        for run_uuid, key, step, count in cursor.fetchall():
            points[run_uuid][(key, int(step))] = int(count)
    missing = duplicated = 0
    for trial_id, count in epochs.items():
        held = points[runs[trial_id][0]] if runs.get(trial_id) else {}
        expected = {(key, step) for key in keys[trial_id] for step in range(1, count + 1)}
        missing += len(expected - held.keys())
        duplicated += sum(held.get(point, 1) - 1 for point in expected)
    return (sum(trial_id not in runs for trial_id in epochs), sum(len(ids) - 1 for ids in runs.values()), missing, duplicated)
