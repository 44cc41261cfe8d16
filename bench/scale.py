"""The search's own machinery at scale: 2 to 64 concurrent trials and a 2,000-trial study, on a simulated cluster.

Ray nodes with logical CPUs (`ray.cluster_utils.Cluster`, `--nodes` x `--cpus-per-node`) run synthetic trials
(`tuning.testing.synthetic_trial`: an epoch is a sleep, the score a known learning curve, a checkpoint of the real
model's size) through the search's own path, `tuning.driver.prepare` and `search_trials`: Tune's driver, the stored-study
searcher on PostgreSQL, ASHA, the MLflow callback and its outbox sending to a real `mlflow server` on PostgreSQL, the
TensorBoard callback, the console table, checkpoints and the choice of the leaders (their evaluation is skipped).
A sleeping trial costs no CPU, so a 2-core host measures the control plane.

In one run: a concurrency sweep (about `--trials-per-slot` trials per concurrent one), each search's wall time against
the minimal time (the epoch-seconds ASHA let run, divided by the concurrency); then one study of `--study-trials`
trials: the searcher's ask and tell latency by study size, the driver's CPU-seconds per result and peak memory, MLflow
runs and metric points expected against present, the outbox's largest backlog and drain time, PostgreSQL's peak
connections. Writes the figures and the targets to docs/results/<--results>.json; exit code 0 only when every target
holds.

    python bench/scale.py                                    # the defaults: 2..64 concurrent, a 2,000-trial study
    python bench/scale.py --concurrency 2,8 --study-trials 200 --plot-dir /tmp/plots
"""

from __future__ import annotations

import argparse
import sys
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

import numpy as np
import results

from tuning.optimization.objective import STEP_KEY
from tuning.runtime import cluster, library_output
from tuning.testing.scale import CHECKPOINT_BYTES, Measured, Services, scaled_search, services
from tuning.testing.synthetic_trial import sleeping_trial

OVERHEAD_TARGET, PROPORTIONALITY_TARGET = 1.2, 0.10
ASK_P99_TARGET_S, DRIVER_MEMORY_TARGET_MB = 0.5, 1536


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


def percentile_ms(values: list[float], q: float) -> float | None:
    return float(np.percentile(values, q)) * 1000 if values else None


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
    parser.add_argument("--results", default="scale", help="the results file's name in docs/results/ (default: scale)")
    results.add_table_option(parser)
    options = parser.parse_args()
    if options.table:
        results.print_table(options.table, markdown_table)
        return 0
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
            sweep.append(scaled_search(place, f"sweep-{level}", options.trials_per_slot * level, level, options.epoch_s,
                                       options.max_epochs))
            sweep[-1].bare_tune_overhead = bare
            print(row_line(search_row(sweep[-1])), flush=True)  # progress: a long sweep shows each search as it ends
        if options.study_trials:
            study = scaled_search(place, "study", options.study_trials, options.study_concurrency, options.epoch_s,
                                  options.max_epochs)
    if options.plot_dir:
        plot(sweep, study, options.plot_dir)
    figures = {"nodes": options.nodes, "cpus_per_node": options.cpus_per_node, "epoch_s": options.epoch_s,
               "max_epochs": options.max_epochs, "sweep": [search_row(measured) for measured in sweep],
               "study": study_figures(study) if study else None}
    checks = target_checks(figures)
    print("\n" + "\n".join(report_lines(figures, checks)))
    print(f"results: {results.write(options.results, figures, checks)}")
    return 0 if all(held for _, held in checks) else 1


def search_row(measured: Measured) -> dict[str, Any]:
    """One search's figures, as its row of the table shows them and the targets read them."""
    asks = [seconds for _, seconds in measured.asks]
    audit = measured.audit
    return {"concurrency": measured.concurrency, "trials": audit.trials, "epochs": measured.epochs,
            "wall_s": measured.wall_s, "minimal_s": measured.minimal_s, "overhead": measured.overhead,
            "bare_tune_overhead": measured.bare_tune_overhead, "trials_per_hour": measured.trials_per_hour,
            "epochs_per_hour_per_slot": measured.epochs_per_hour_per_slot, "ask_p50_ms": percentile_ms(asks, 50),
            "ask_p99_ms": percentile_ms(asks, 99), "driver_cpu_ms_per_result": measured.driver_cpu_s / measured.epochs * 1000,
            "processes": audit.processes, "lost": audit.lost, "duplicated": audit.duplicated,
            "metric_points": audit.points_expected, "study_epochs": audit.results,
            "connections": max(measured.connections.values())}


def study_figures(study: Measured) -> dict[str, Any]:
    """The large study's figures: its row, its ask latency by study size, the driver, the outbox and the connections."""
    tells = [seconds for _, seconds in study.tells]
    return {**search_row(study),
            "ask_bands": [{"from": start, "p50_ms": p50 * 1000, "p99_ms": p99 * 1000} for start, p50, p99 in ask_bands(study, 250)],
            "tell_p50_ms": percentile_ms(tells, 50), "tell_p99_ms": percentile_ms(tells, 99),
            "driver_cpu_s": study.driver_cpu_s, "driver_peak_mb": study.driver_peak_mb, "outbox_peak": study.outbox_peak,
            "outbox_drain_s": study.outbox_drain_s, "mlflow_connections": study.connections["mlflow"],
            "study_connections": study.connections["study"]}


def ask_bands(measured: Measured, band: int) -> list[tuple[int, float, float]]:
    """(band start, p50 s, p99 s) of the asks, by the study's size when asked."""
    bands: dict[int, list[float]] = defaultdict(list)
    for number, seconds in measured.asks:
        bands[number // band * band].append(seconds)
    return [(start, float(np.percentile(values, 50)), float(np.percentile(values, 99))) for start, values in sorted(bands.items())]


def target_checks(figures: dict[str, Any]) -> list[tuple[str, bool]]:
    """Each target, measured: (what it says, whether it held)."""
    sweep, study = figures["sweep"], figures["study"]
    checks = [(f"{row['concurrency']} concurrent: wall {row['overhead']:.2f}x the minimal time <= {OVERHEAD_TARGET}x",
               row["overhead"] <= OVERHEAD_TARGET) for row in sweep]
    for row in sweep[1:]:
        ratio = row["epochs_per_hour_per_slot"] / sweep[0]["epochs_per_hour_per_slot"]
        checks.append(((f"{row['concurrency']} concurrent: trial epochs per hour per slot {ratio:.2f}x those at "
                       f"{sweep[0]['concurrency']} (within {PROPORTIONALITY_TARGET:.0%})"), abs(ratio - 1) <= PROPORTIONALITY_TARGET))
    for row in [*sweep, *([study] if study else [])]:
        checks.append(((f"{row['trials']} trials: {row['lost']} lost and {row['duplicated']} duplicated of {row['trials']} MLflow "
                       f"runs, {row['metric_points']} metric points, {row['trials']} study trials and {row['study_epochs']} epochs"),
                       row["lost"] == 0 and row["duplicated"] == 0))
    if study:
        last = study["ask_bands"][-1]
        checks.append((f"ask p99 {last['p99_ms']:.0f} ms at {last['from']}+ trials <= {ASK_P99_TARGET_S * 1000:.0f} ms",
                       last["p99_ms"] <= ASK_P99_TARGET_S * 1000))
        checks.append((f"driver peak memory {study['driver_peak_mb']:.0f} MB <= {DRIVER_MEMORY_TARGET_MB} MB",
                       study["driver_peak_mb"] <= DRIVER_MEMORY_TARGET_MB))
        if sweep:
            checks.append(((f"PostgreSQL connections per database: {study['connections']} at {study['trials']} trials, "
                           f"{sweep[0]['connections']} at {sweep[0]['trials']}"), study["connections"] <= sweep[0]["connections"]))
    return checks


ROW_HEADER = (f"{'concurrent':>10} {'trials':>6} {'epochs':>6} {'wall s':>7} {'minimal s':>9} {'overhead':>8} {'Tune alone':>10} "
              f"{'trials/h':>8} {'epochs/h per slot':>17} {'ask p50':>8} {'ask p99':>8} {'driver cpu/result':>17} "
              f"{'processes':>9} {'lost':>4} {'dup':>4}")


def row_line(row: dict[str, Any]) -> str:
    bare = "-" if row["bare_tune_overhead"] is None else f"{row['bare_tune_overhead']:.2f}x"
    return (f"{row['concurrency']:>10} {row['trials']:>6} {row['epochs']:>6} {row['wall_s']:>7.1f} {row['minimal_s']:>9.1f} "
            f"{row['overhead']:>7.2f}x {bare:>10} {row['trials_per_hour']:>8.0f} {row['epochs_per_hour_per_slot']:>17.0f} "
            f"{row['ask_p50_ms']:>6.0f}ms {row['ask_p99_ms']:>6.0f}ms {row['driver_cpu_ms_per_result']:>15.1f}ms "
            f"{row['processes']:>9} {row['lost']:>4} {row['duplicated']:>4}")


def report_lines(figures: dict[str, Any], checks: list[tuple[str, bool]]) -> list[str]:
    """The run's table, the large study's latencies and the targets, as the run prints them at its end."""
    lines = [(f"{figures['nodes']} nodes of {figures['cpus_per_node']} logical CPUs; {figures['epoch_s']:g}-second epochs, "
             f"up to {figures['max_epochs']}"), ROW_HEADER, *(row_line(row) for row in figures["sweep"])]
    study = figures["study"]
    if study:
        lines += [row_line(study), "", f"study of {study['trials']} trials, {study['concurrency']} at once: ask latency by study size",
                  f"{'study size':>12} {'ask p50':>9} {'ask p99':>9}"]
        lines += [f"{band['from']:>5}-{band['from'] + 250:<6} {band['p50_ms']:>7.1f}ms {band['p99_ms']:>7.1f}ms"
                  for band in study["ask_bands"]]
        lines.append(f"tell p50 {study['tell_p50_ms']:.1f} ms, p99 {study['tell_p99_ms']:.1f} ms; driver {study['driver_cpu_s']:.0f} "
                     f"CPU-s, {study['driver_cpu_ms_per_result']:.1f} ms per result, peak {study['driver_peak_mb']:.0f} MB; MLflow "
                     f"outbox largest backlog {study['outbox_peak']} writes, drained in {study['outbox_drain_s']:.1f} s at the end; "
                     f"PostgreSQL connections, peak: {study['mlflow_connections']} (MLflow server), {study['study_connections']} (study)")
    return [*lines, "", *(f"{'met' if held else 'MISSED'}: {text}" for text, held in checks)]


def markdown_table(record: dict[str, Any]) -> str:
    """The docs' block of a scale results file, as the run printed it at its end (`--table FILE`)."""
    checks = [(check["check"], check["met"]) for check in record["checks"]]
    return "\n".join([f"$ {record['command']}", *report_lines(record["figures"], checks)])


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
