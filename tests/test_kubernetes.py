"""deploy/kubernetes: every manifest passes the schemas the API server would apply, and keeps compose's platform.

KubeRay's objects are checked against KubeRay v1.7.0's own CRD schemas (`../shared/k8s/`), strictly, as `kubectl
apply` is: a field a schema does not declare is an error. Core objects are checked with `kubernetes-validate`.
"""

from __future__ import annotations

import copy
import functools
import re
import shlex
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import jsonschema
import kubernetes_validate
import pytest
import yaml

from tests.conftest import REPOSITORY, SHARED_DATA

MANIFESTS = REPOSITORY / "deploy" / "kubernetes"
KUBERAY_CRDS = SHARED_DATA.parents[1] / "k8s" / "kuberay-v1.7.0"  # beside the shared data: shared/k8s
KUBERNETES_VERSION = "1.31.0"
SECRET_WORDS = re.compile(r"PASSWORD|TOKEN|SECRET")
COMPOSE_TO_KUBERNETES = {  # compose service -> (kind, object name) of the workload that runs it
    "postgres": ("StatefulSet", "postgres"),
    "mlflow": ("Deployment", "mlflow"),
    "tensorboard": ("Deployment", "tensorboard"),
    "optuna-dashboard": ("Deployment", "optuna-dashboard"),
    "notebook": ("Deployment", "notebook"),
    "model-server": ("Deployment", "model-server"),
}


def manifest_files() -> list[Path]:
    return sorted(path for path in MANIFESTS.glob("*.yaml") if path.name != "kustomization.yaml")


def load_objects(path: Path) -> list[dict[str, Any]]:
    return [document for document in yaml.safe_load_all(path.read_text()) if document]


def all_objects() -> list[dict[str, Any]]:
    return [obj for path in manifest_files() for obj in load_objects(path)]


def the(kind: str, name: str) -> dict[str, Any]:
    matches = [obj for obj in all_objects() if obj["kind"] == kind and obj["metadata"]["name"] == name]
    assert len(matches) == 1, f"{kind}/{name}: {len(matches)} found"
    return matches[0]


def pod_specs(obj: dict[str, Any]) -> Iterator[tuple[str, dict[str, Any]]]:
    """(where, pod spec) of every pod template an object holds."""
    spec = obj.get("spec", {})
    if obj["kind"] in ("Deployment", "StatefulSet"):
        yield obj["metadata"]["name"], spec["template"]["spec"]
    elif obj["kind"] == "RayCluster":
        yield "head", spec["headGroupSpec"]["template"]["spec"]
        for group in spec["workerGroupSpecs"]:
            yield f"worker group {group['groupName']}", group["template"]["spec"]
    elif obj["kind"] == "RayJob":
        yield "submitter", spec["submitterPodTemplate"]["spec"]


def strict(schema: Any) -> Any:
    """The schema with undeclared fields refused wherever the API server refuses them."""
    if isinstance(schema, dict):
        schema = {key: strict(value) for key, value in schema.items()}
        if ("properties" in schema and "additionalProperties" not in schema
                and not schema.get("x-kubernetes-preserve-unknown-fields")):
            schema["additionalProperties"] = False
        return schema
    if isinstance(schema, list):
        return [strict(item) for item in schema]
    return schema


@functools.cache
def kuberay_validator(kind: str, version: str = "v1") -> jsonschema.Draft7Validator:
    crd = yaml.safe_load((KUBERAY_CRDS / f"ray.io_{kind.lower()}s.yaml").read_text())
    (served,) = [entry for entry in crd["spec"]["versions"] if entry["name"] == version]
    return jsonschema.Draft7Validator(strict(served["schema"]["openAPIV3Schema"]))


def kuberay_errors(obj: dict[str, Any]) -> list[str]:
    validator = kuberay_validator(obj["kind"], obj["apiVersion"].split("/")[1])
    return [f"{'.'.join(map(str, error.absolute_path))}: {error.message}" for error in validator.iter_errors(obj)]


def secret_from(env_file: Path) -> dict[str, Any]:
    produced = subprocess.run(["bash", str(MANIFESTS / "make-secret.sh"), str(env_file)], check=True,
                              capture_output=True, text=True)
    return yaml.safe_load(produced.stdout)


@pytest.fixture(scope="module")
def platform_secret(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    env_file = tmp_path_factory.mktemp("env") / ".env"
    env_file.write_text(subprocess.run(["bash", str(REPOSITORY / "platform" / "make-env.sh")], check=True,
                                       capture_output=True, text=True).stdout)
    return secret_from(env_file)


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    return yaml.safe_load((REPOSITORY / "docker-compose.yml").read_text())["services"]


@pytest.mark.parametrize("obj", [obj for obj in all_objects() if obj["apiVersion"].startswith("ray.io/")],
                         ids=lambda obj: f"{obj['kind']}/{obj['metadata']['name']}")
def test_kuberay_objects_pass_kuberays_own_schema(obj: dict[str, Any]) -> None:
    assert kuberay_errors(obj) == []


def test_the_kuberay_check_refuses_an_undeclared_field_and_a_wrong_type() -> None:
    cluster = copy.deepcopy(the("RayCluster", "fmnist-tune"))
    cluster["spec"]["workerGroupSpecs"][0]["minReplica"] = 0
    cluster["spec"]["workerGroupSpecs"][1]["maxReplicas"] = "four"
    errors = kuberay_errors(cluster)
    assert any("'minReplica' was unexpected" in error for error in errors)
    assert any("'four' is not of type 'integer'" in error for error in errors)


@pytest.mark.parametrize("obj", [obj for obj in all_objects() if not obj["apiVersion"].startswith("ray.io/")],
                         ids=lambda obj: f"{obj['kind']}/{obj['metadata']['name']}")
def test_core_objects_pass_kubernetes_schema(obj: dict[str, Any]) -> None:
    kubernetes_validate.validate(obj, KUBERNETES_VERSION, strict=True)


def test_the_core_check_refuses_an_undeclared_field() -> None:
    deployment = copy.deepcopy(the("Deployment", "mlflow"))
    deployment["spec"]["template"]["spec"]["containers"][0]["readinesProbe"] = {}
    with pytest.raises(kubernetes_validate.ValidationError, match="readinesProbe"):
        kubernetes_validate.validate(deployment, KUBERNETES_VERSION, strict=True)


def test_the_secret_comes_from_env_with_every_key_the_manifests_read(platform_secret: dict[str, Any]) -> None:
    kubernetes_validate.validate(platform_secret, KUBERNETES_VERSION, strict=True)
    read = {ref["secretKeyRef"]["key"] for ref in value_refs(all_objects())}
    assert read == set(platform_secret["data"])
    assert {ref["secretKeyRef"]["name"] for ref in value_refs(all_objects())} == {platform_secret["metadata"]["name"]}


def test_the_secret_script_refuses_the_examples_placeholders() -> None:
    refused = subprocess.run(["bash", str(MANIFESTS / "make-secret.sh"), str(REPOSITORY / ".env.example")],
                             check=False, capture_output=True, text=True)
    assert refused.returncode == 2
    assert refused.stdout == ""
    assert refused.stderr.strip() == (f"error: {REPOSITORY / '.env.example'}: POSTGRES_PASSWORD is missing or still "
                                      "the example's (make .env writes random secrets)")


def value_refs(objects: list[dict[str, Any]]) -> Iterator[dict[str, Any]]:
    for obj in objects:
        for env in environments(obj):
            if "valueFrom" in env:
                yield env["valueFrom"]


def environments(obj: dict[str, Any]) -> Iterator[dict[str, Any]]:
    for _, pod in pod_specs(obj):
        for container in pod["containers"]:
            yield from container.get("env", [])
    if obj["kind"] == "RayCluster":
        yield from obj["spec"]["autoscalerOptions"].get("env", [])


def test_no_secret_is_a_literal_value() -> None:
    for obj in all_objects():
        for env in environments(obj):
            if SECRET_WORDS.search(env["name"]):
                assert "value" not in env and "secretKeyRef" in env["valueFrom"], f"{obj['metadata']['name']}: {env['name']}"
    assert not [obj for obj in all_objects() if obj["kind"] == "Secret"], "secrets come from make-secret.sh only"


def test_services_stay_inside_the_cluster() -> None:
    kinds = {obj["kind"] for obj in all_objects()}
    assert "Ingress" not in kinds
    for obj in all_objects():
        if obj["kind"] == "Service":
            assert obj["spec"]["type"] == "ClusterIP", obj["metadata"]["name"]
    assert the("RayCluster", "fmnist-tune")["spec"]["headGroupSpec"]["serviceType"] == "ClusterIP"


def test_every_container_has_probes_limits_and_runs_as_non_root() -> None:
    for obj in all_objects():
        for where, pod in pod_specs(obj):
            assert pod["securityContext"]["runAsNonRoot"] is True, where
            assert pod["securityContext"]["runAsUser"] > 0, where
            for container in pod["containers"]:
                limits = container["resources"]["limits"]
                assert {"cpu", "memory"} <= set(limits), f"{where}: {container['name']}"
                assert container["securityContext"]["allowPrivilegeEscalation"] is False
                if obj["kind"] != "RayJob":  # the submitter runs to completion: nothing to probe
                    assert "readinessProbe" in container and "livenessProbe" in container, f"{where}: {container['name']}"


def test_the_kustomization_lists_every_platform_manifest() -> None:
    kustomization = yaml.safe_load((MANIFESTS / "kustomization.yaml").read_text())
    listed = set(kustomization["resources"])
    assert listed == {path.name for path in manifest_files()} - {"search-job.yaml"}
    images = {image["name"] for image in kustomization["images"]}
    used = {container["image"].split(":")[0] for obj in all_objects() for _, pod in pod_specs(obj)
            for container in pod["containers"]}
    assert used <= images


def image_name(image: str) -> str:
    return image.split(":")[0]


def compose_command(command: list[str]) -> list[str]:
    """A compose command as the container runs it: `$$` unescaped, `${NAME:-default}` at its default."""
    return [re.sub(r"\$\{[A-Z_]+:-([^}]*)\}", r"\1", part).replace("$$", "$") for part in command]


def container_of(obj: dict[str, Any]) -> dict[str, Any]:
    ((_, pod),) = pod_specs(obj)
    return pod["containers"][0]


@pytest.mark.parametrize("service", sorted(COMPOSE_TO_KUBERNETES))
def test_each_service_keeps_composes_image_command_and_environment(service: str, compose: dict[str, Any]) -> None:
    container = container_of(the(*COMPOSE_TO_KUBERNETES[service]))
    composed = compose[service]
    assert image_name(container["image"]) == image_name(composed.get("image", "fmnist-tune/python"))
    if "command" in composed:
        assert container["command"] == compose_command(composed["command"])
    assert {env["name"] for env in container.get("env", [])} == set(composed.get("environment", {}))


def test_ray_nodes_keep_composes_environment_and_the_head_runs_no_trials(compose: dict[str, Any]) -> None:
    cluster = the("RayCluster", "fmnist-tune")
    for role, (where, pod) in zip(["ray-head", "ray-worker", "ray-worker"], pod_specs(cluster), strict=True):
        (container,) = pod["containers"]
        assert {env["name"] for env in container["env"]} == set(compose[role]["environment"]), where
        assert {mount["mountPath"] for mount in container["volumeMounts"]} >= {"/results", "/data"}
    assert cluster["spec"]["headGroupSpec"]["rayStartParams"]["num-cpus"] == "0"
    assert cluster["spec"]["enableInTreeAutoscaling"] is True


def test_the_gpu_group_starts_empty_and_asks_for_gpus_with_the_gpu_image() -> None:
    groups = {group["groupName"]: group for group in the("RayCluster", "fmnist-tune")["spec"]["workerGroupSpecs"]}
    gpu = groups["gpu"]
    (container,) = gpu["template"]["spec"]["containers"]
    assert gpu["minReplicas"] == 0 < gpu["maxReplicas"]
    assert container["resources"]["limits"]["nvidia.com/gpu"] == "1"
    assert image_name(container["image"]) == "fmnist-tune/python-gpu"
    assert "nvidia.com/gpu" not in str(groups["cpu"])


def test_the_search_job_names_the_search_after_itself_and_runs_on_the_cluster() -> None:
    (job,) = load_objects(MANIFESTS / "search-job.yaml")
    assert kuberay_errors(job) == []
    entrypoint = shlex.split(job["spec"]["entrypoint"])
    assert entrypoint[:3] == ["python", "-m", "tuning.search"]
    assert entrypoint[entrypoint.index("--name") + 1] == job["spec"]["jobId"] == job["metadata"]["name"]
    assert entrypoint[entrypoint.index("--storage-path") + 1] == "/results"
    assert job["spec"]["clusterSelector"] == {"ray.io/cluster": the("RayCluster", "fmnist-tune")["metadata"]["name"]}
    submitter_env = {env["name"] for env in container_of(job)["env"]}
    assert submitter_env == {"RAY_AUTH_MODE", "RAY_AUTH_TOKEN"}
