"""What a cluster's live nodes can hold: the CPUs `auto` gives a trial, and a trial no node can hold."""

import pytest

from tuning.cluster import check_trial_fits_a_node, smallest_node_cpus, total
from tuning.settings import SettingsError

HEAD_WITHOUT_CPUS = {"memory": 2.0e9, "node:__internal_head__": 1.0}
WORKERS = [{"CPU": 4.0, "memory": 8.0e9}, {"CPU": 2.0, "memory": 4.0e9}]


def test_auto_cpus_come_from_the_smallest_node_that_runs_trials() -> None:
    assert smallest_node_cpus([HEAD_WITHOUT_CPUS, *WORKERS]) == 2
    assert smallest_node_cpus([HEAD_WITHOUT_CPUS]) == 1, "a cluster without CPUs still gets a trial size"
    assert total([HEAD_WITHOUT_CPUS, *WORKERS], "CPU") == 6


def test_a_trial_larger_than_every_node_is_refused_naming_the_flag() -> None:
    check_trial_fits_a_node([HEAD_WITHOUT_CPUS, *WORKERS], cpus_per_trial=4, gpus_per_trial=0)
    with pytest.raises(SettingsError, match=r"^--cpus-per-trial 5: no Ray node has that many CPUs "
                                            r"\(the largest has 4; 3 nodes, 6 in all\)$"):
        check_trial_fits_a_node([HEAD_WITHOUT_CPUS, *WORKERS], cpus_per_trial=5, gpus_per_trial=0)
