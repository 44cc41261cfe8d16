"""The search's own machinery at scale: 2 to 64 concurrent trials and a 2,000-trial study, on a simulated cluster.

Ray nodes with logical CPUs (`ray.cluster_utils.Cluster`, `--nodes` x `--cpus-per-node`) run synthetic trials
(`tuning.optimization.synthetic_trial`: an epoch is a sleep, the score a known learning curve, a checkpoint of the real
model's size) through the search's own path, `tuning.driver.prepare` and `search_trials`: Tune's driver, the stored-study
searcher on PostgreSQL, ASHA, the MLflow callback and its outbox sending to a real `mlflow server` on PostgreSQL, the
TensorBoard callback, the console table, checkpoints and the choice of the leaders (their evaluation is skipped).
A sleeping trial costs no CPU, so a 2-core host measures the control plane.

In one run: a concurrency sweep (about `--trials-per-slot` trials per concurrent one), each search's wall time against
the minimal time (the epoch-seconds ASHA let run, divided by the concurrency); then one study of `--study-trials`
trials: the searcher's ask and tell latency by study size, the driver's CPU-seconds per result and peak memory, MLflow
runs and metric points expected against present, the outbox's largest backlog and drain time, PostgreSQL's peak
connections. Exit code 0 only when every target holds.

    python bench/scale.py                                    # the defaults: 2..64 concurrent, a 2,000-trial study
    python bench/scale.py --concurrency 2,8 --study-trials 200 --plot-dir /tmp/plots
"""

from __future__ import annotations

import argparse
import contextlib
import resource
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
import uuid
from collections import defaultdict
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Self

import numpy as np
import optuna
import psycopg2
import ray
from ray.cluster_utils import Cluster

from tuning import cli, driver, saved_search
from tuning.optimization import stored_study
from tuning.optimization.objective import STEP_KEY, TRIAL_NUMBER_KEY
from tuning.optimization.study_searcher import StoredStudySearcher
from tuning.optimization.synthetic_trial import sleeping_trial
from tuning.runtime import cluster, library_output
from tuning.tracking.mlflow_callback import numeric_metrics

POSTGRES = {"host": "127.0.0.1", "port": 5432, "user": "postgres"}
CHECKPOINT_BYTES = 1_060_070
"""The original CNN's `model.keras` with its optimizer state, as a trial checkpoints it."""
OVERHEAD_TARGET, PROPORTIONALITY_TARGET = 1.2, 0.10
ASK_P99_TARGET_S, DRIVER_MEMORY_TARGET_MB = 0.5, 1536


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
        return f"postgresql+psycopg2://{POSTGRES['user']}@{POSTGRES['host']}:{POSTGRES['port']}/{self.study_database}"


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


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@contextlib.contextmanager
def fresh_database(prefix: str) -> Iterator[str]:
    """A database on the local PostgreSQL, dropped afterwards."""
    name = f"{prefix}_{uuid.uuid4().hex[:8]}"
    admin = psycopg2.connect(dbname="postgres", **POSTGRES)
    admin.autocommit = True
    with admin.cursor() as cursor:
        cursor.execute(f'CREATE DATABASE "{name}"')
    try:
        yield name
    finally:
        with admin.cursor() as cursor:
            cursor.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.close()


@contextlib.contextmanager
def mlflow_server(database: str, folder: Path, workers: int) -> Iterator[str]:
    """`mlflow server` on PostgreSQL with proxied artifacts, on a free port; its URI."""
    port = free_port()
    backend = f"postgresql+psycopg2://{POSTGRES['user']}@{POSTGRES['host']}:{POSTGRES['port']}/{database}"
    with (folder / "mlflow-server.log").open("w") as log:
        server = subprocess.Popen(
            [sys.executable, "-m", "mlflow", "server", "--backend-store-uri", backend, "--serve-artifacts",
             "--artifacts-destination", str(folder / "artifacts"), "--host", "127.0.0.1", "--port", str(port),
             "--workers", str(workers)], stdout=log, stderr=subprocess.STDOUT, cwd=folder)
    uri = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 180
        while True:
            try:
                with urllib.request.urlopen(uri + "/health", timeout=2):
                    break
            except OSError:
                if server.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"mlflow server did not start; see {folder / 'mlflow-server.log'}") from None
                time.sleep(1)
        yield uri
    finally:
        server.terminate()
        server.wait(timeout=30)


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
          fresh_database("fmnist_scale_study") as study_db, mlflow_server(mlflow_db, Path(folder), mlflow_workers) as uri,
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


def bare_tune_overhead(place: Services, name: str, trials: int, concurrency: int, epoch_s: float, max_epochs: int,
                       checkpoint_bytes: int = CHECKPOINT_BYTES) -> float:
    """The same trials with Tune alone, on the same cluster: its random search over the two settings the curve reads,
    ASHA, its default loggers, reused processes, no study, MLflow or TensorBoard images. Its wall time over its minimal
    time: the floor that Ray, Tune and this host set under the search's own overhead."""
    from ray import tune
    from ray.tune.schedulers import ASHAScheduler

    from fmnist.data import load, stratified_split, stratified_subset

    cluster.connect(place.ray_address)  # as the search joins it
    dataset = load(place.data_dir)
    train, validation = stratified_split(stratified_subset(dataset.train, 2000, seed=0), 0.1, seed=0)
    trainable = tune.with_resources(tune.with_parameters(sleeping_trial(epoch_s, checkpoint_bytes), train=train,
                                                         validation=validation, max_epochs=max_epochs), {"cpu": 1})
    started = time.monotonic()
    results = tune.Tuner(
        trainable,
        param_space={"learning_rate": tune.loguniform(1e-4, 1e-2), "filters_1": tune.choice([32, 48, 64])},
        tune_config=tune.TuneConfig(metric="val_accuracy", mode="max", num_samples=trials, max_concurrent_trials=concurrency,
                                    scheduler=ASHAScheduler(time_attr=STEP_KEY, max_t=max_epochs, grace_period=1,
                                                            reduction_factor=3), reuse_actors=True),
        run_config=tune.RunConfig(name=name, storage_path=str(place.storage_path), verbose=0),
    ).fit()
    wall = time.monotonic() - started
    epochs = sum(int(result.metrics[STEP_KEY]) for result in results)
    return wall / (epochs * epoch_s / concurrency)


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


def percentile_ms(values: list[float], q: float) -> float:
    return float(np.percentile(values, q)) * 1000 if values else float("nan")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--concurrency", default="2,8,16,32,64", help="concurrent trials of each sweep search (default: 2,8,16,32,64)")
    parser.add_argument("--trials-per-slot", type=int, default=10, help="trials per concurrent trial in the sweep (default: 10)")
    parser.add_argument("--study-trials", type=int, default=2000, help="trials of the large study (default: 2000; 0: none)")
    parser.add_argument("--study-concurrency", type=int, default=64, help="its concurrent trials (default: 64)")
    parser.add_argument("--epoch-s", type=float, default=1.0, help="seconds a synthetic epoch sleeps (default: 1)")
    parser.add_argument("--max-epochs", type=int, default=9, help="epochs of a trial ASHA lets finish (default: 9)")
    parser.add_argument("--nodes", type=int, default=8, help="simulated worker nodes (default: 8)")
    parser.add_argument("--cpus-per-node", type=int, default=8, help="logical CPUs of each (default: 8)")
    parser.add_argument("--data-dir", default=None, help="Fashion-MNIST's folder (default: as the search finds it)")
    parser.add_argument("--plot-dir", type=Path, default=None, help="write the two curves as PNG files here")
    parser.add_argument("--bare-tune", action="store_true",
                        help="also run each sweep search's trials with Tune alone, and print its overhead beside the search's")
    options = parser.parse_args()
    library_output.quiet_environment()  # as `python -m tuning.search` starts
    library_output.hide_library_lines()
    library_output.quiet_loggers()
    levels = [int(level) for level in options.concurrency.split(",")]
    sweep: list[Measured] = []
    study: Measured | None = None
    with services(options.nodes, options.cpus_per_node, options.data_dir) as place:
        for level in levels:
            bare = None
            if options.bare_tune:
                bare = bare_tune_overhead(place, f"bare-{level}", options.trials_per_slot * level, level, options.epoch_s,
                                          options.max_epochs)
                print(f"{level} concurrent, Tune alone: wall {bare:.2f}x the minimal time", flush=True)
            sweep.append(scaled_search(place, f"sweep-{level}", options.trials_per_slot * level, level, options.epoch_s,
                                       options.max_epochs))
            sweep[-1].bare_tune_overhead = bare
            print_row(sweep[-1], header=len(sweep) == 1)
        if options.study_trials:
            study = scaled_search(place, "study", options.study_trials, options.study_concurrency, options.epoch_s,
                                  options.max_epochs)
            print_row(study, header=False)
    if options.plot_dir:
        plot(sweep, study, options.plot_dir)
    return 0 if report_targets(sweep, study) else 1


def print_row(measured: Measured, header: bool) -> None:
    if header:
        print(f"{'concurrent':>10} {'trials':>6} {'epochs':>6} {'wall s':>7} {'minimal s':>9} {'overhead':>8} "
              f"{'trials/h':>8} {'epochs/h per slot':>17} {'ask p50':>8} {'ask p99':>8} {'driver cpu/result':>17} {'processes':>9} {'lost':>4} {'dup':>4}",
              flush=True)
    asks = [seconds for _, seconds in measured.asks]
    print(f"{measured.concurrency:>10} {measured.audit.trials:>6} {measured.epochs:>6} {measured.wall_s:>7.1f} "
          f"{measured.minimal_s:>9.1f} {measured.overhead:>7.2f}x {measured.trials_per_hour:>8.0f} {measured.epochs_per_hour_per_slot:>17.0f} "
          f"{percentile_ms(asks, 50):>6.0f}ms {percentile_ms(asks, 99):>6.0f}ms {measured.driver_cpu_s / measured.epochs * 1000:>15.1f}ms "
          f"{measured.audit.processes:>9} {measured.audit.lost:>4} {measured.audit.duplicated:>4}", flush=True)


def ask_bands(measured: Measured, band: int) -> list[tuple[int, float, float]]:
    """(band start, p50 s, p99 s) of the asks, by the study's size when asked."""
    bands: dict[int, list[float]] = defaultdict(list)
    for number, seconds in measured.asks:
        bands[number // band * band].append(seconds)
    return [(start, float(np.percentile(values, 50)), float(np.percentile(values, 99))) for start, values in sorted(bands.items())]


def report_targets(sweep: list[Measured], study: Measured | None) -> bool:
    """Print each target, measured; True when all hold."""
    checks: list[tuple[bool, str]] = []
    for measured in sweep:
        checks.append((measured.overhead <= OVERHEAD_TARGET,
                       f"{measured.concurrency} concurrent: wall {measured.overhead:.2f}x the minimal time <= {OVERHEAD_TARGET}x"))
    if sweep:
        base = sweep[0].epochs_per_hour_per_slot
        for measured in sweep[1:]:
            ratio = measured.epochs_per_hour_per_slot / base
            checks.append((abs(ratio - 1) <= PROPORTIONALITY_TARGET,
                           (f"{measured.concurrency} concurrent: trial epochs per hour per slot {ratio:.2f}x those at "
                            f"{sweep[0].concurrency} (within {PROPORTIONALITY_TARGET:.0%})")))
    for measured in [*sweep, *([study] if study else [])]:
        audit = measured.audit
        checks.append((audit.lost == 0 and audit.duplicated == 0,
                       (f"{audit.trials} trials: {audit.lost} lost and {audit.duplicated} duplicated of {audit.trials} MLflow runs, "
                       f"{audit.points_expected} metric points, {audit.trials} study trials and {audit.results} epochs")))
    if study:
        print(f"\nstudy of {study.audit.trials} trials, {study.concurrency} at once: ask latency by study size")
        print(f"{'study size':>12} {'ask p50':>9} {'ask p99':>9}")
        bands = ask_bands(study, 250)
        for start, p50, p99 in bands:
            print(f"{start:>5}-{start + 250:<6} {p50 * 1000:>7.1f}ms {p99 * 1000:>7.1f}ms")
        tells = [seconds for _, seconds in study.tells]
        print(f"tell p50 {percentile_ms(tells, 50):.1f} ms, p99 {percentile_ms(tells, 99):.1f} ms; driver "
              f"{study.driver_cpu_s:.0f} CPU-s, {study.driver_cpu_s / study.epochs * 1000:.1f} ms per result, peak "
              f"{study.driver_peak_mb:.0f} MB; MLflow outbox largest backlog {study.outbox_peak} writes, drained in "
              f"{study.outbox_drain_s:.1f} s at the end; PostgreSQL connections, peak: {study.connections['mlflow']} "
              f"(MLflow server), {study.connections['study']} (study)")
        checks.append((bands[-1][2] <= ASK_P99_TARGET_S,
                       f"ask p99 {bands[-1][2] * 1000:.0f} ms at {bands[-1][0]}+ trials <= {ASK_P99_TARGET_S * 1000:.0f} ms"))
        checks.append((study.driver_peak_mb <= DRIVER_MEMORY_TARGET_MB,
                       f"driver peak memory {study.driver_peak_mb:.0f} MB <= {DRIVER_MEMORY_TARGET_MB} MB"))
        small = max(sweep[0].connections.values()) if sweep else None
        if small is not None:
            checks.append((max(study.connections.values()) <= small,
                           (f"PostgreSQL connections per database: {max(study.connections.values())} at {study.audit.trials} "
                           f"trials, {small} at {sweep[0].audit.trials}")))
    print()
    for held, text in checks:
        print(f"{'met' if held else 'MISSED'}: {text}")
    return all(held for held, _ in checks)


def plot(sweep: list[Measured], study: Measured | None, folder: Path) -> None:
    """`scale_overhead.png` (overhead against concurrency) and `scale_ask_latency.png` (ask latency against study size)."""
    import matplotlib
    import matplotlib.ticker

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    folder.mkdir(parents=True, exist_ok=True)
    figure, axes = plt.subplots(figsize=(6, 4))
    axes.plot([m.concurrency for m in sweep], [m.overhead for m in sweep], marker="o", label="the search")
    bare = [m for m in sweep if m.bare_tune_overhead is not None]
    if bare:
        axes.plot([m.concurrency for m in bare], [m.bare_tune_overhead for m in bare], marker="s",
                  label="Tune alone, same trials")
    axes.axhline(OVERHEAD_TARGET, color="grey", linestyle="--", label=f"target {OVERHEAD_TARGET}x")
    axes.set(xscale="log", xlabel="concurrent trials", ylabel="wall time / minimal time", ylim=(0.9, None),
             title="Search overhead against concurrency")
    axes.set_xticks([m.concurrency for m in sweep], [str(m.concurrency) for m in sweep])
    axes.xaxis.set_minor_formatter(matplotlib.ticker.NullFormatter())
    axes.legend()
    figure.tight_layout()
    figure.savefig(folder / "scale_overhead.png", dpi=100)
    if study:
        figure, axes = plt.subplots(figsize=(6, 4))
        bands = ask_bands(study, 250)
        axes.plot([start + 125 for start, _, _ in bands], [p50 * 1000 for _, p50, _ in bands], marker="o", label="p50")
        axes.plot([start + 125 for start, _, _ in bands], [p99 * 1000 for _, _, p99 in bands], marker="o", label="p99")
        axes.axhline(ASK_P99_TARGET_S * 1000, color="grey", linestyle="--", label="p99 target")
        axes.set(xlabel="trials in the study", ylabel="ask latency (ms)", title="Searcher ask latency against study size")
        axes.legend()
        figure.tight_layout()
        figure.savefig(folder / "scale_ask_latency.png", dpi=100)


if __name__ == "__main__":
    sys.exit(main())
