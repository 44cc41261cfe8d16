"""The champion evaluator actor: started with the search, it loads its libraries without taking the trials' CPUs."""

from __future__ import annotations

import ray

from tuning.champion import LOWEST_PRIORITY, start_champion_evaluator


def test_the_evaluator_takes_no_cpu_slot_and_imports_at_the_lowest_priority() -> None:
    ray.init(num_cpus=2, include_dashboard=False, configure_logging=False, log_to_driver=False)
    try:
        evaluator = start_champion_evaluator()
        assert ray.get(evaluator.imports_done.remote(), timeout=300) == LOWEST_PRIORITY
        assert ray.available_resources().get("CPU") == 2, "the evaluator holds a CPU a trial could use"
    finally:
        ray.shutdown()
