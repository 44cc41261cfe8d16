"""What a trial trains on: TensorFlow kept to the CPUs Ray assigned, and every GPU Ray gave it grown as needed.

Ray hands a trial its GPUs through CUDA_VISIBLE_DEVICES, so TensorFlow lists only those. Memory growth lets
trials that share a GPU (`--gpus-per-trial 0.5`) each take what they use instead of all of it.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

import ray

if TYPE_CHECKING:
    import tensorflow as tf

CPU_DEVICE = "cpu"


def use_assigned_devices() -> str:
    """Set TensorFlow's threads and GPU memory for this trial; the device it trains on (`cpu`, or `gpu:` and names)."""
    import tensorflow as tf

    cpus = int(ray.get_runtime_context().get_assigned_resources().get("CPU", 0)) or 1
    # A process Tune reuses for another trial (with the same resources) has TensorFlow set up already.
    if tf.config.threading.get_intra_op_parallelism_threads() != cpus:
        tf.config.threading.set_intra_op_parallelism_threads(cpus)
        tf.config.threading.set_inter_op_parallelism_threads(min(cpus, 2))
    return grow_gpu_memory(tf.config.list_physical_devices("GPU"))


def grow_gpu_memory(gpus: Sequence[tf.config.PhysicalDevice]) -> str:
    """Turn on memory growth for each of `gpus` (before TensorFlow initialises them); their label, or `cpu` for none."""
    import tensorflow as tf

    for gpu in gpus:
        if not tf.config.experimental.get_memory_growth(gpu):
            tf.config.experimental.set_memory_growth(gpu, True)
    if not gpus:
        return CPU_DEVICE
    names = [tf.config.experimental.get_device_details(gpu).get("device_name", gpu.name) for gpu in gpus]
    return "gpu:" + ",".join(names)
