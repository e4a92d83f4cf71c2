"""infra/: the docker-compose file and the Kubernetes manifests parse, every manifest is valid
against the Kubernetes schemas (kubernetes-validate, offline), every setting and command they
use exists, and the Dockerfile installs what scripts/setup.sh installs (Docker cannot run here,
so this is what can be checked)."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest
import typer
import yaml

from reelforge.cli.app import app
from reelforge.core.settings import Settings

REPO = Path(__file__).resolve().parents[2]
INFRA = REPO / "infra"
K8S_VERSION = "1.32.0"  # the oldest Kubernetes the manifests are meant for
# Variables that belong to the images we run next to ours, not to ReelForge or Prefect.
FOREIGN = {"POSTGRES_USER", "POSTGRES_PASSWORD", "MINIO_ROOT_USER", "MINIO_ROOT_PASSWORD",
           "NVIDIA_VISIBLE_DEVICES", "NVIDIA_DRIVER_CAPABILITIES", "DO_NOT_TRACK", "PGDATA"}  # fmt: skip


# Variables of infra/.env that compose passes on under another name.
COMPOSE_ONLY = {"WAN_CHECKPOINTS", "API_SESSION_SECRET", "PREFECT_AUTH_STRING"}


def _settings_env() -> set[str]:
    names = set()
    for name, field in Settings.model_fields.items():
        names.add(f"REELFORGE_{name.upper()}")
        alias = field.validation_alias
        if alias is not None:
            names.update(str(choice) for choice in getattr(alias, "choices", [alias]))
    return names


def _prefect_env() -> set[str]:
    from prefect.settings import Settings as PrefectSettings
    from prefect.settings.legacy import _get_valid_setting_names

    return set(_get_valid_setting_names(PrefectSettings))


def _known(name: str) -> bool:
    return name in _settings_env() or name in _prefect_env() or name in FOREIGN


def _cli_tree() -> dict[str, set[str]]:
    """Subcommand path -> its option names, from the real typer app."""
    command = typer.main.get_command(app)
    tree: dict[str, set[str]] = {}

    def walk(cmd, path: str) -> None:
        for name, sub in getattr(cmd, "commands", {}).items():
            full = f"{path} {name}".strip()
            tree[full] = {opt for p in sub.params for opt in getattr(p, "opts", [])}
            walk(sub, full)

    walk(command, "")
    return tree


def _check_command(args: list[str]) -> None:
    tree = _cli_tree()
    words = [a for a in args if not a.startswith("-")]
    path = next(
        (" ".join(words[:n]) for n in (2, 1) if " ".join(words[:n]) in tree),
        None,
    )
    assert path is not None, f"`reelforge {' '.join(args)}`: no such command"
    for option in (a.split("=")[0] for a in args if a.startswith("--")):
        assert option in tree[path], f"`reelforge {path}` has no option {option}"


def _compose() -> dict:
    return yaml.safe_load((INFRA / "docker-compose.yml").read_text())


def test_compose_has_every_service_and_the_gpu_runtime():
    services = _compose()["services"]
    assert {"postgres", "minio", "prefect-server", "api", "worker-cpu", "worker-gpu"} <= set(
        services
    )
    gpu = services["worker-gpu"]
    assert gpu["runtime"] == "nvidia"
    devices = gpu["deploy"]["resources"]["reservations"]["devices"]
    assert devices[0]["driver"] == "nvidia" and "gpu" in devices[0]["capabilities"]
    assert services["prefect-server"]["command"][:2] == ["server", "start"]
    assert "--analytics-off" in services["prefect-server"]["command"]


def test_compose_publishes_only_the_api_on_loopback_with_a_session_secret():
    services = _compose()["services"]
    published = {name: svc["ports"] for name, svc in services.items() if svc.get("ports")}
    assert published == {"api": ["127.0.0.1:8000:8000"]}  # no Prefect UI, no database, no S3
    api = services["api"]["environment"]
    assert api["REELFORGE_API_SESSION_SECRET"].startswith("${API_SESSION_SECRET:?")
    assert api["REELFORGE_API_COOKIE_SECURE"] == "true"
    server = services["prefect-server"]["environment"]
    assert server["PREFECT_SERVER_API_AUTH_STRING"] == "${PREFECT_AUTH_STRING:?set PREFECT_AUTH_STRING}"  # fmt: skip
    assert api["PREFECT_API_AUTH_STRING"] == server["PREFECT_SERVER_API_AUTH_STRING"]


def test_compose_environment_names_exist():
    for name, svc in _compose()["services"].items():
        for var in svc.get("environment") or {}:
            assert _known(var), f"compose service {name}: unknown setting {var}"
    for var in re.findall(r"\$\{([A-Z_]+)", (INFRA / "docker-compose.yml").read_text()):
        assert var in FOREIGN | COMPOSE_ONLY, f"undocumented variable {var}"
    example = dict(
        line.split("=", 1) for line in (INFRA / "env.example").read_text().splitlines()
        if line and not line.startswith("#")
    )  # fmt: skip
    assert {"POSTGRES_PASSWORD", "MINIO_ROOT_PASSWORD"} | COMPOSE_ONLY <= set(example)


@pytest.mark.parametrize(
    "service", ["init", "worker-cpu", "worker-gpu", "api"], ids=lambda s: f"compose-{s}"
)
def test_compose_commands_exist(service):
    svc = _compose()["services"][service]
    _check_command([str(a) for a in svc["command"]])


def _manifests() -> list[dict]:
    docs = []
    for path in sorted((INFRA / "k8s").glob("*.yaml")):
        docs += [d for d in yaml.safe_load_all(path.read_text()) if d]
    return docs


def _named(kind: str, name: str) -> dict:
    return next(d for d in _manifests() if d["kind"] == kind and d["metadata"]["name"] == name)


def _pod_spec(doc: dict) -> dict:
    return doc.get("spec", {}).get("template", {}).get("spec", {})


def _containers(doc: dict) -> list[dict]:
    spec = _pod_spec(doc)
    return spec.get("initContainers", []) + spec.get("containers", [])


def _gpu_template() -> dict:
    config_map = _named("ConfigMap", "reelforge-gpu-pool")
    return json.loads(config_map["data"]["gpu-pool-template.json"])


def _render(value, variables: dict):
    """The job manifest as the worker fills it in: each placeholder by its variable's default
    (or a sample value where there is none)."""
    samples = {"name": "video-flow-run", "command": ["prefect", "flow-run", "execute"],
               "env": [], "labels": {"app": "reelforge"}, "annotations": {}}  # fmt: skip
    if isinstance(value, dict):
        return {k: _render(v, variables) for k, v in value.items()}
    if isinstance(value, list):
        return [_render(v, variables) for v in value]
    if isinstance(value, str) and (match := re.fullmatch(r"\{\{ (\w+) \}\}", value)):
        name = match.group(1)
        return samples.get(name, variables[name].get("default"))
    return value


def test_every_manifest_is_valid_against_the_kubernetes_schemas():
    import kubernetes_validate

    docs = _manifests()
    assert len(docs) >= 15
    for doc in docs:
        kubernetes_validate.validate(doc, K8S_VERSION, strict=True)
    template = _gpu_template()
    job = _render(template["job_configuration"]["job_manifest"], template["variables"]["properties"])  # fmt: skip
    job["spec"]["template"]["spec"] = {
        k: v
        for k, v in job["spec"]["template"]["spec"].items()
        if v is not None and k not in ("completions", "parallelism")  # Prefect's own extras
    }
    job["spec"] = {k: v for k, v in job["spec"].items() if v is not None}
    container = job["spec"]["template"]["spec"]["containers"][0]
    container["resources"] = {
        kind: {k: v for k, v in limits.items() if v is not None}
        for kind, limits in container["resources"].items()
    }
    kubernetes_validate.validate(job, K8S_VERSION, strict=True)


def test_the_validation_catches_mistakes():
    import kubernetes_validate

    service = {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "x"},
               "spec": {"ports": [{"port": "eighty"}]}}  # fmt: skip
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(service, K8S_VERSION, strict=True)
    typo = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "x"}, "dta": {}}
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(typo, K8S_VERSION, strict=True)


def test_kubernetes_has_every_piece_with_a_service():
    docs = _manifests()
    kinds = {(d["kind"], d["metadata"]["name"]) for d in docs}
    for piece in [("StatefulSet", "postgres"), ("StatefulSet", "minio"),
                  ("Deployment", "reelforge-api"), ("Deployment", "reelforge-worker-cpu"),
                  ("Deployment", "reelforge-worker-gpu"), ("Job", "reelforge-init"),
                  ("PersistentVolumeClaim", "wan-checkpoints"), ("ConfigMap", "reelforge-config")]:  # fmt: skip
        assert piece in kinds, piece
    services = {d["metadata"]["name"]: d for d in docs if d["kind"] == "Service"}
    assert set(services) == {"postgres", "minio", "reelforge-api"}  # Prefect's is the chart's
    assert all(s["spec"]["type"] == "ClusterIP" for s in services.values())
    # the hosts the config points at are defined: our Services and the chart's prefect-server
    config = _named("ConfigMap", "reelforge-config")["data"]
    assert config["REELFORGE_S3_ENDPOINT"].split(".")[0] in services
    values = yaml.safe_load((INFRA / "helm" / "prefect-server-values.yaml").read_text())
    assert config["PREFECT_API_URL"].startswith(f"http://{values['fullnameOverride']}.reelforge.svc")  # fmt: skip
    assert values["service"]["type"] == "ClusterIP" and values["ingress"]["enabled"] is False
    assert values["server"]["basicAuth"]["enabled"] is True


def test_secrets_are_only_referenced():
    docs = _manifests()
    assert not [d for d in docs if d["kind"] == "Secret"]  # created by the operator, not shipped
    template = _gpu_template()
    containers = [c for d in docs for c in _containers(d)]
    containers.append(template["job_configuration"]["job_manifest"]["spec"]["template"]["spec"]["containers"][0])  # fmt: skip
    for container in containers:
        for entry in container.get("env") or []:
            if any(word in entry["name"] for word in ("PASSWORD", "SECRET", "AUTH", "DATABASE_URL")):  # fmt: skip
                assert "secretKeyRef" in entry.get("valueFrom", {}), entry
    api = _containers(_named("Deployment", "reelforge-api"))[0]
    names = {e["name"] for e in api["env"]}
    assert {"REELFORGE_API_SESSION_SECRET", "REELFORGE_DATABASE_URL", "PREFECT_API_AUTH_STRING"} <= names  # fmt: skip
    assert {"name": "REELFORGE_API_COOKIE_SECURE", "value": "true"} in api["env"]


def test_gpu_pool_is_prefects_kubernetes_template_with_a_gpu_and_the_checkpoints():
    from prefect_kubernetes.worker import KubernetesWorker

    default = KubernetesWorker.get_default_base_job_template()
    ours = _gpu_template()
    assert set(ours["variables"]["properties"]) == set(default["variables"]["properties"])
    assert {k: v for k, v in ours["job_configuration"].items() if k != "job_manifest"} == {
        k: v for k, v in default["job_configuration"].items() if k != "job_manifest"
    }
    pod = ours["job_configuration"]["job_manifest"]["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    assert container["resources"]["limits"]["nvidia.com/gpu"] == 1
    assert {"name": "checkpoints", "mountPath": "/models", "readOnly": True} in container["volumeMounts"]  # fmt: skip
    volumes = {v["name"]: v for v in pod["volumes"]}
    claim = volumes["checkpoints"]["persistentVolumeClaim"]["claimName"]
    assert ("PersistentVolumeClaim", claim) in {(d["kind"], d["metadata"]["name"]) for d in _manifests()}  # fmt: skip
    env = {e["name"]: e.get("value") for e in container["env"]}
    assert env["REELFORGE_WAN_CHECKPOINT_DIR"].startswith("/models/")
    # the init Job creates the pool from this template, as the kubernetes type, under the
    # name the ConfigMap gives the gpu pool; the worker serves that pool
    init = _containers(_named("Job", "reelforge-init"))[0]
    config = _named("ConfigMap", "reelforge-config")["data"]
    assert init["args"][:5] == ["work-pool", "create", config["REELFORGE_GPU_POOL"], "--type", "kubernetes"]  # fmt: skip
    worker = _containers(_named("Deployment", "reelforge-worker-gpu"))[0]
    assert worker["args"][:6] == ["worker", "start", "--pool", config["REELFORGE_GPU_POOL"], "--type", "kubernetes"]  # fmt: skip


def _prefect_help(words: list[str]) -> str:
    result = subprocess.run(
        [str(Path(sys.executable).parent / "prefect"), *words, "--help"],
        capture_output=True, text=True, timeout=120,
        env={"PREFECT_SERVER_ANALYTICS_ENABLED": "false", "DO_NOT_TRACK": "1", "COLUMNS": "200",
             "PATH": "/usr/bin:/bin", "HOME": str(REPO / ".reelforge-test")},
    )  # fmt: skip
    assert result.returncode == 0, f"`prefect {' '.join(words)}`: {result.stderr[-300:]}"
    return result.stdout


def test_kubernetes_settings_and_commands_exist():
    for doc in _manifests():
        if doc["kind"] == "ConfigMap" and doc["metadata"]["name"] == "reelforge-config":
            for var in doc["data"]:
                assert _known(var), f"{doc['metadata']['name']}: unknown setting {var}"
        for container in _containers(doc):
            for entry in container.get("env", []):
                assert _known(entry["name"]), f"{doc['metadata']['name']}: {entry['name']}"
            if container.get("command") == ["prefect"]:
                args = container["args"]
                words = args[:2]
                help_text = _prefect_help(words)
                for option in (a for a in args if a.startswith("--")):
                    assert option in help_text, f"`prefect {' '.join(words)}` has no {option}"
            elif "reelforge" in container["image"] and "args" in container:
                _check_command([str(a) for a in container["args"]])
    template = _gpu_template()
    container = template["job_configuration"]["job_manifest"]["spec"]["template"]["spec"]["containers"][0]  # fmt: skip
    for entry in container["env"]:
        assert _known(entry["name"]), f"gpu pool template: unknown setting {entry['name']}"
    values = yaml.safe_load((INFRA / "helm" / "prefect-server-values.yaml").read_text())
    for entry in values["global"]["prefect"]["env"]:
        assert _known(entry["name"]), f"prefect-server values: unknown setting {entry['name']}"


def _torch_pin(text: str) -> str:
    match = re.search(r"torch==([0-9.]+)", text)
    assert match is not None
    return match.group(1)


def test_dockerfile_installs_what_setup_installs():
    dockerfile = (INFRA / "Dockerfile").read_text()
    setup = (REPO / "scripts" / "setup.sh").read_text()
    pyproject = (REPO / "pyproject.toml").read_text()
    # torch first, the same pin everywhere (or pip pulls the CUDA build), then the project
    assert _torch_pin(dockerfile) == _torch_pin(setup) == _torch_pin(pyproject)
    runs = " ".join(re.findall(r"^RUN (.+?)(?<!\\)$", dockerfile.replace("\\\n", " "), re.M))
    assert runs.index("torch==") < runs.index("pip install --no-cache-dir -e .")
    assert setup.index("torch==") < setup.index('-e ".[test]"')
    # the same Debian packages (fonts for overlays; Chromium only serves the tests)
    for package in re.findall(r"NEED\+=\(([^)]*)\)", setup):
        for name in package.split():
            if name not in ("chromium", "fontconfig"):
                assert name in dockerfile, f"setup.sh installs {name}, the Dockerfile does not"
    # every package the project installs is copied into the image (benchmarks are not shipped)
    include = re.search(r"include = \[([^]]*)\]", pyproject).group(1)
    for pattern in re.findall(r'"(\w+)\*"', include):
        if pattern != "benchmarks":
            assert f"COPY {pattern} ./{pattern}" in dockerfile, f"the image lacks {pattern}/"


def test_the_checks_catch_mistakes():
    assert not _known("REELFORGE_GPU_SLOT")  # a typo of REELFORGE_GPU_SLOTS
    assert _known("PREFECT_API_URL") and _known("REELFORGE_GPU_SLOTS")
    with pytest.raises(AssertionError, match="no such command"):
        _check_command(["wokrer", "--pool", "gpu"])
    with pytest.raises(AssertionError, match="has no option --gpus"):
        _check_command(["worker", "--pool", "gpu", "--gpus", "2"])
    assert "--base-job-template" in _prefect_help(["work-pool", "create"])
    with pytest.raises(AssertionError, match="prefect work-pol"):
        _prefect_help(["work-pol", "create"])
