"""deploy/kubernetes: every overlay, rendered as `kubectl apply -k` renders it, passes the schemas the API server would
apply and the rules KubeRay's operator enforces at run time, and keeps compose's platform.

KubeRay's objects are checked against KubeRay v1.7.0's own CRD schemas (`tests/data/kuberay-v1.7.0/`), strictly, as
`kubectl apply` is: a field a schema does not declare is an error; then against the checks of KubeRay v1.7.0's
`ValidateRayClusterSpec` and `ValidateRayJobSpec` that apply to these objects. Core objects are checked with
`kubernetes-validate`. The overlays are rendered with `kubectl kustomize` (Kustomize as `kubectl` carries it).
"""

from __future__ import annotations

import copy
import functools
import gzip
import re
import shlex
import shutil
import subprocess
import tomllib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import jsonschema
import kubernetes_validate
import pytest
import yaml

from tests.conftest import REPOSITORY

MANIFESTS = REPOSITORY / "deploy" / "kubernetes"
BASE = MANIFESTS / "base"
OVERLAYS = {"default": MANIFESTS, "dev": MANIFESTS / "overlays" / "dev", "rwx": MANIFESTS / "overlays" / "rwx"}
KUBERAY_CRDS = REPOSITORY / "tests" / "data" / "kuberay-v1.7.0"
KUBERNETES_VERSION = "1.31.0"
TOKEN_AUTH_MIN_RAY = (2, 52, 0)
"""KubeRay v1.7.0 refuses token auth (authOptions.mode token) on a RayCluster whose rayVersion is older or unset."""
MAX_RAYCLUSTER_NAME, MAX_RAYJOB_NAME = 53, 47
DNS1035_LABEL = re.compile(r"^[a-z]([-a-z0-9]*[a-z0-9])?$")
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
    return sorted(path for path in BASE.glob("*.yaml") if path.name != "kustomization.yaml")


def load_objects(path: Path) -> list[dict[str, Any]]:
    return [document for document in yaml.safe_load_all(path.read_text()) if document]


@functools.cache
def rendered(overlay: str) -> tuple[dict[str, Any], ...]:
    """The objects `kubectl apply -k` would send for `overlay`."""
    if shutil.which("kubectl") is None:
        pytest.fail("kubectl not found: these tests render the overlays with `kubectl kustomize` (install kubectl)")
    output = subprocess.run(["kubectl", "kustomize", str(OVERLAYS[overlay])], check=True, capture_output=True, text=True)
    return tuple(document for document in yaml.safe_load_all(output.stdout) if document)


def all_objects() -> list[dict[str, Any]]:
    return list(rendered("default"))


def every_overlays_objects() -> list[tuple[str, dict[str, Any]]]:
    return [(overlay, obj) for overlay in OVERLAYS for obj in rendered(overlay)]


def search_job() -> dict[str, Any]:
    (job,) = load_objects(MANIFESTS / "search-job.yaml")
    return job


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
    crd = yaml.safe_load(gzip.decompress((KUBERAY_CRDS / f"ray.io_{kind.lower()}s.yaml.gz").read_bytes()))
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


def _ray_objects() -> list[tuple[str, dict[str, Any]]]:
    return [*((overlay, obj) for overlay, obj in every_overlays_objects() if obj["apiVersion"].startswith("ray.io/")),
            ("search-job.yaml", search_job())]


@pytest.mark.parametrize(("where", "obj"), _ray_objects(), ids=lambda item: item if isinstance(item, str) else item["kind"])
def test_kuberay_objects_pass_kuberays_own_schema_and_run_time_checks(where: str, obj: dict[str, Any]) -> None:
    assert kuberay_errors(obj) == []
    assert kuberay_run_time_errors(obj) == []


def kuberay_run_time_errors(obj: dict[str, Any]) -> list[str]:
    """What KubeRay v1.7.0's operator refuses at run time (ValidateRayClusterSpec, ValidateRayJobSpec and their
    metadata checks) among the rules these objects could break."""
    name, spec, errors = obj["metadata"]["name"], obj["spec"], []
    longest = MAX_RAYCLUSTER_NAME if obj["kind"] == "RayCluster" else MAX_RAYJOB_NAME
    if len(name) > longest or not DNS1035_LABEL.match(name):
        errors.append(f"{obj['kind']} name {name!r}: a DNS-1035 label of at most {longest} characters")
    if obj["kind"] == "RayCluster":
        groups = [("head", spec["headGroupSpec"]), *((group["groupName"], group) for group in spec["workerGroupSpecs"])]
        for group_name, group in groups:
            if not group["template"]["spec"].get("containers"):
                errors.append(f"{group_name}: no container")
            if {"num-cpus", "num-gpus", "memory", "resources"} & set(group.get("rayStartParams", {})) and group.get("resources"):
                errors.append(f"{group_name}: resources in both rayStartParams and resources")
        if spec.get("authOptions", {}).get("mode") == "token":
            version = spec.get("rayVersion", "")
            parsed = tuple(int(part) for part in re.findall(r"\d+", version)[:3])
            if not version or parsed < TOKEN_AUTH_MIN_RAY:
                errors.append(f"authOptions.mode token needs rayVersion >= 2.52.0, got {version!r}")
    elif obj["kind"] == "RayJob":
        selector = spec.get("clusterSelector", {})
        if not selector.get("ray.io/cluster"):
            errors.append("clusterSelector: the cluster's name (ray.io/cluster) is empty")
        if selector and spec.get("submissionMode") == "SidecarMode":
            errors.append("clusterSelector is not supported in SidecarMode")
        if selector and spec.get("suspend"):
            errors.append("clusterSelector mode cannot be suspended")
    return errors


def test_the_run_time_checks_refuse_what_kuberay_refuses() -> None:
    cluster = copy.deepcopy(the("RayCluster", "fmnist-tune"))
    del cluster["spec"]["rayVersion"]
    assert kuberay_run_time_errors(cluster) == ["authOptions.mode token needs rayVersion >= 2.52.0, got ''"]
    cluster["spec"]["rayVersion"] = "2.50.1"
    assert kuberay_run_time_errors(cluster) == ["authOptions.mode token needs rayVersion >= 2.52.0, got '2.50.1'"]
    job = copy.deepcopy(search_job())
    job["metadata"]["name"] = "Search_2026"
    job["spec"] |= {"clusterSelector": {"ray.io/cluster": ""}}
    assert kuberay_run_time_errors(job) == ["RayJob name 'Search_2026': a DNS-1035 label of at most 47 characters",
                                            "clusterSelector: the cluster's name (ray.io/cluster) is empty"]


def test_the_kuberay_check_refuses_an_undeclared_field_and_a_wrong_type() -> None:
    cluster = copy.deepcopy(the("RayCluster", "fmnist-tune"))
    cluster["spec"]["workerGroupSpecs"][0]["minReplica"] = 0
    cluster["spec"]["workerGroupSpecs"][1]["maxReplicas"] = "four"
    errors = kuberay_errors(cluster)
    assert any("'minReplica' was unexpected" in error for error in errors)
    assert any("'four' is not of type 'integer'" in error for error in errors)


@pytest.mark.parametrize(("overlay", "obj"), [(overlay, obj) for overlay, obj in every_overlays_objects()
                                               if not obj["apiVersion"].startswith("ray.io/")],
                         ids=lambda item: item if isinstance(item, str) else f"{item['kind']}/{item['metadata']['name']}")
def test_core_objects_pass_kubernetes_schema(overlay: str, obj: dict[str, Any]) -> None:
    kubernetes_validate.validate(obj, KUBERNETES_VERSION, strict=True)


def test_the_core_check_refuses_an_undeclared_field() -> None:
    deployment = copy.deepcopy(the("Deployment", "mlflow"))
    deployment["spec"]["template"]["spec"]["containers"][0]["readinesProbe"] = {}
    with pytest.raises(kubernetes_validate.ValidationError, match="readinesProbe"):
        kubernetes_validate.validate(deployment, KUBERNETES_VERSION, strict=True)


def test_the_secret_comes_from_env_with_every_key_the_manifests_and_kuberay_read(platform_secret: dict[str, Any]) -> None:
    kubernetes_validate.validate(platform_secret, KUBERNETES_VERSION, strict=True)
    read = {ref["secretKeyRef"]["key"] for ref in value_refs(all_objects())}
    assert read | {"auth_token"} == set(platform_secret["data"]), "KubeRay reads the Ray token as auth_token"
    assert platform_secret["data"]["auth_token"] == platform_secret["data"]["RAY_AUTH_TOKEN"]
    assert {ref["secretKeyRef"]["name"] for ref in value_refs(all_objects())} == {platform_secret["metadata"]["name"]}
    auth = the("RayCluster", "fmnist-tune")["spec"]["authOptions"]
    assert auth == {"mode": "token", "secretName": platform_secret["metadata"]["name"]}


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
    kustomization = yaml.safe_load((BASE / "kustomization.yaml").read_text())
    assert set(kustomization["resources"]) == {path.name for path in manifest_files()}


@pytest.mark.parametrize("overlay", sorted(OVERLAYS))
def test_every_image_is_the_projects_version_and_pulled_only_when_missing(overlay: str) -> None:
    """`latest` would be pulled every time (Always), and a kind or minikube cluster with loaded images fails to pull."""
    version = tomllib.loads((REPOSITORY / "pyproject.toml").read_text())["project"]["version"]
    for obj in rendered(overlay):
        for where, pod in pod_specs(obj):
            for container in pod["containers"]:
                assert container["image"].endswith(f":{version}"), f"{overlay}: {where}: {container['image']}"
                assert container.get("imagePullPolicy", "IfNotPresent") == "IfNotPresent", f"{overlay}: {where}"
    assert "submitterPodTemplate" not in search_job()["spec"], "KubeRay's submitter runs the head's image"


def test_ray_version_is_the_one_pyproject_pins_and_supports_token_auth() -> None:
    ray_version = the("RayCluster", "fmnist-tune")["spec"]["rayVersion"]
    (pin,) = [requirement for requirement in tomllib.loads((REPOSITORY / "pyproject.toml").read_text())["project"]["dependencies"]
              if requirement.startswith("ray[")]
    lowest = re.search(r">=([\d.]+)", pin).group(1)
    assert ray_version.startswith(lowest + "."), (ray_version, pin)
    assert tuple(int(part) for part in ray_version.split(".")) >= TOKEN_AUTH_MIN_RAY


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


KUBERAY_INJECTS = {"RAY_AUTH_MODE", "RAY_AUTH_TOKEN"}
"""What KubeRay's authOptions gives every Ray container, in compose set by hand."""


def test_ray_nodes_keep_composes_environment_and_the_head_runs_no_trials(compose: dict[str, Any]) -> None:
    cluster = the("RayCluster", "fmnist-tune")
    for role, (where, pod) in zip(["ray-head", "ray-worker", "ray-worker"], pod_specs(cluster), strict=True):
        (container,) = pod["containers"]
        assert {env["name"] for env in container["env"]} == set(compose[role]["environment"]) - KUBERAY_INJECTS, where
        mounts = {mount["mountPath"] for mount in container["volumeMounts"]}
        assert mounts >= {"/results"} and ("/data" in mounts) == (where == "head"), f"{where}: only the head reads the data"
    assert cluster["spec"]["headGroupSpec"]["rayStartParams"]["num-cpus"] == "0"
    assert cluster["spec"]["enableInTreeAutoscaling"] is True
    assert "env" not in cluster["spec"]["autoscalerOptions"], "KubeRay gives the autoscaler the token"


def test_ray_probes_tolerate_a_busy_node_as_long_as_kuberays_own() -> None:
    """KubeRay's injected probes allow about 10 minutes of failed checks before a restart (they need wget, which the
    image lacks, so the containers carry their own)."""
    for where, pod in pod_specs(the("RayCluster", "fmnist-tune")):
        probe = pod["containers"][0]["livenessProbe"]
        assert probe["periodSeconds"] * probe["failureThreshold"] >= 600, where


def test_the_gpu_group_starts_empty_and_asks_for_gpus_with_the_gpu_image() -> None:
    groups = {group["groupName"]: group for group in the("RayCluster", "fmnist-tune")["spec"]["workerGroupSpecs"]}
    gpu = groups["gpu"]
    (container,) = gpu["template"]["spec"]["containers"]
    assert gpu["minReplicas"] == 0 < gpu["maxReplicas"]
    assert container["resources"]["limits"]["nvidia.com/gpu"] == "1"
    assert image_name(container["image"]) == "fmnist-tune/python-gpu"
    assert "nvidia.com/gpu" not in str(groups["cpu"])


def test_the_search_job_names_the_search_after_itself_and_waits_for_the_autoscaler() -> None:
    job = search_job()
    entrypoint = shlex.split(job["spec"]["entrypoint"])
    assert entrypoint[:3] == ["python", "-m", "tuning.search"]
    assert entrypoint[entrypoint.index("--name") + 1] == job["spec"]["jobId"] == job["metadata"]["name"]
    assert entrypoint[entrypoint.index("--storage-path") + 1] == "/results"
    assert job["spec"]["clusterSelector"] == {"ray.io/cluster": the("RayCluster", "fmnist-tune")["metadata"]["name"]}
    assert "--max-concurrent-trials" in entrypoint, "auto would count only the nodes up at the start"
    assert float(entrypoint[entrypoint.index("--wait-for-nodes-s") + 1]) > 0
    assert job["spec"]["preRunningDeadlineSeconds"] > 0, "a job that cannot start must fail, not wait forever"


def _claims(overlay: str) -> dict[str, dict[str, Any]]:
    return {obj["metadata"]["name"]: obj["spec"] for obj in rendered(overlay) if obj["kind"] == "PersistentVolumeClaim"}


def test_the_dev_overlay_fits_one_small_node() -> None:
    assert {name: spec["accessModes"] for name, spec in _claims("dev").items()} == {
        "results": ["ReadWriteOnce"], "data": ["ReadWriteOnce"], "mlflow-artifacts": ["ReadWriteOnce"]}
    (cluster,) = [obj for obj in rendered("dev") if obj["kind"] == "RayCluster"]
    (group,) = cluster["spec"]["workerGroupSpecs"]
    assert (group["groupName"], group["replicas"], group["maxReplicas"]) == ("cpu", 1, 1)
    requested = [pod["containers"][0]["resources"]["requests"]["cpu"] for _, pod in pod_specs(cluster)]
    assert requested == ["500m", "2"], "the head and the worker on a laptop's cores"


def test_the_rwx_overlay_names_a_storage_class_for_the_shared_claims() -> None:
    claims = _claims("rwx")
    assert {name for name, spec in claims.items() if "storageClassName" in spec} == {"results", "data"}
    assert all(claims[name]["accessModes"] == ["ReadWriteMany"] for name in ("results", "data"))
    assert all("storageClassName" not in spec for spec in _claims("default").values())


def test_postgres_restarts_on_block_storage() -> None:
    """A recursive fsGroup change on each mount gives PGDATA group bits, and PostgreSQL then refuses to start."""
    pod = the("StatefulSet", "postgres")["spec"]["template"]["spec"]
    assert pod["securityContext"]["fsGroupChangePolicy"] == "OnRootMismatch"
    entrypoint = (REPOSITORY / "platform" / "postgres" / "entrypoint.sh").read_text()
    assert 'chmod 0700 "$PGDATA"' in entrypoint


def test_the_model_server_lives_on_its_port_and_is_ready_with_a_champion() -> None:
    """/ping answers 503 until a search registers a champion: as a liveness probe it would restart a fresh platform."""
    container = container_of(the("Deployment", "model-server"))
    assert container["livenessProbe"]["tcpSocket"]["port"] == "http"
    assert container["readinessProbe"]["httpGet"]["path"] == "/ping"
