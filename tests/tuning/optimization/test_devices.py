"""What a trial trains on: the device tag and GPU memory growth, through TensorFlow's own device API."""

from __future__ import annotations

import pytest
import tensorflow as tf

from tuning.optimization.devices import CPU_DEVICE, grow_gpu_memory


def test_no_gpu_listed_means_the_cpu() -> None:
    assert grow_gpu_memory(tf.config.list_physical_devices("GPU")) == CPU_DEVICE


def test_memory_growth_is_asked_of_tensorflow_for_every_listed_gpu() -> None:
    """On a host without GPUs TensorFlow refuses the call for a GPU it does not have: the refusal shows it was made."""
    listed = tf.config.PhysicalDevice(name="/physical_device:GPU:0", device_type="GPU")
    with pytest.raises(ValueError, match="Unrecognized device: .*GPU:0"):
        grow_gpu_memory([listed])
