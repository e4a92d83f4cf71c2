"""infra/: the docker-compose file and the Kubernetes manifests parse, and every setting and
command they use exists (Docker cannot run here, so this is what can be checked)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import typer
import yaml

from reelforge.cli.app import app
from reelforge.core.settings import Settings

INFRA = Path(__file__).resolve().parents[2] / "infra"
# Variables that belong to the images we run next to ours, not to ReelForge or Prefect.
FOREIGN = {"POSTGRES_USER", "POSTGRES_PASSWORD", "MINIO_ROOT_USER", "MINIO_ROOT_PASSWORD",
           "NVIDIA_VISIBLE_DEVICES", "NVIDIA_DRIVER_CAPABILITIES", "DO_NOT_TRACK"}  # fmt: skip


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


def test_compose_environment_names_exist():
    for name, svc in _compose()["services"].items():
        for var in svc.get("environment") or {}:
            assert _known(var), f"compose service {name}: unknown setting {var}"
    for var in re.findall(r"\$\{([A-Z_]+)", (INFRA / "docker-compose.yml").read_text()):
        assert var in FOREIGN or var == "WAN_CHECKPOINTS", f"undocumented variable {var}"
    example = dict(
        line.split("=", 1) for line in (INFRA / "env.example").read_text().splitlines()
        if line and not line.startswith("#")
    )  # fmt: skip
    assert {"POSTGRES_PASSWORD", "MINIO_ROOT_PASSWORD"} <= set(example)


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


def _containers(doc: dict) -> list[dict]:
    spec = doc.get("spec", {})
    template = spec.get("template", {}).get("spec", {})
    return template.get("containers", [])


def test_kubernetes_gpu_pool_requests_gpus_and_runs_the_gpu_worker():
    docs = _manifests()
    gpu = next(d for d in docs if d["metadata"]["name"] == "reelforge-worker-gpu")
    (container,) = _containers(gpu)
    assert container["resources"]["limits"]["nvidia.com/gpu"] == 1
    assert container["args"][:3] == ["worker", "--pool", "gpu"]
    assert gpu["spec"]["template"]["spec"]["runtimeClassName"] == "nvidia"


def test_kubernetes_settings_and_commands_exist():
    docs = _manifests()
    kinds = {d["kind"] for d in docs}
    assert {"Namespace", "ConfigMap", "Secret", "Job", "Deployment"} <= kinds
    for doc in docs:
        if doc["kind"] in ("ConfigMap", "Secret"):
            for var in {**doc.get("data", {}), **doc.get("stringData", {})}:
                assert _known(var), f"{doc['metadata']['name']}: unknown setting {var}"
        for container in _containers(doc):
            for entry in container.get("env", []):
                assert _known(entry["name"]), f"{doc['metadata']['name']}: {entry['name']}"
            if "reelforge" in container["image"]:
                _check_command([str(a) for a in container["args"]])


def test_the_checks_catch_mistakes():
    assert not _known("REELFORGE_GPU_SLOT")  # a typo of REELFORGE_GPU_SLOTS
    assert _known("PREFECT_API_URL") and _known("REELFORGE_GPU_SLOTS")
    with pytest.raises(AssertionError, match="no such command"):
        _check_command(["wokrer", "--pool", "gpu"])
    with pytest.raises(AssertionError, match="has no option --gpus"):
        _check_command(["worker", "--pool", "gpu", "--gpus", "2"])
