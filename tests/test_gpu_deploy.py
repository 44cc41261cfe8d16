"""The GPU variant: the install extra, the compose override for a GPU host and the KubeRay GPU group agree."""

from __future__ import annotations

import tomllib

import yaml
from packaging.requirements import Requirement

from tests.conftest import REPOSITORY


def test_the_gpu_extra_brings_tensorflow_with_cuda() -> None:
    project = tomllib.loads((REPOSITORY / "pyproject.toml").read_text())["project"]
    (tensorflow,) = [Requirement(line) for line in project["optional-dependencies"]["gpu"]]
    assert (tensorflow.name, tensorflow.extras) == ("tensorflow", {"and-cuda"})
    cpu_build = [Requirement(line) for line in project["dependencies"] if line.startswith("tensorflow-cpu")]
    assert str(tensorflow.specifier) == str(cpu_build[0].specifier), "the GPU image swaps one for the other, same versions"


def test_the_compose_override_gives_ray_workers_the_gpu_image_and_the_hosts_gpus() -> None:
    base = yaml.safe_load((REPOSITORY / "docker-compose.yml").read_text())["services"]
    override = yaml.safe_load((REPOSITORY / "docker-compose.gpu.yml").read_text())["services"]
    assert set(override) == {"ray-worker"} <= set(base)
    worker = override["ray-worker"]
    assert worker["image"] == "fmnist-tune/python-gpu:latest"
    (devices,) = worker["deploy"]["resources"]["reservations"]["devices"]
    assert devices["driver"] == "nvidia" and devices["capabilities"] == ["gpu"]
    makefile = (REPOSITORY / "Makefile").read_text()
    assert "-t fmnist-tune/python-gpu:latest -t fmnist-tune/python-gpu:$(VERSION)" in makefile and "TENSORFLOW=gpu" in makefile
