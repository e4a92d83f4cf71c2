"""`reelforge up / status / down` on a second, throwaway stack (own home, own ports)."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import psutil
import pytest

from scripts.free_ports import free_block

REELFORGE = str(Path(sys.executable).parent / "reelforge")


def _cli(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [REELFORGE, *args], env=env, capture_output=True, text=True, timeout=240, check=False
    )


def _ours(home: Path) -> list[psutil.Process]:
    found = []
    for proc in psutil.process_iter(["cmdline"]):
        cmdline = " ".join(proc.info["cmdline"] or [])
        if str(home) in cmdline:
            found.append(proc)
    return found


@pytest.fixture
def other_stack_env(tmp_path):
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("REELFORGE_", "PREFECT_")) and k != "DO_NOT_TRACK"
    }
    taken = {int(os.environ[k]) for k in ("REELFORGE_PG_PORT", "REELFORGE_PREFECT_PORT")}
    s3 = int(os.environ["REELFORGE_S3_PORT"])
    taken |= set(range(s3, s3 + 10))
    env.update(
        REELFORGE_HOME=str(tmp_path / "home"),
        REELFORGE_PG_PORT=str(free_block(35432, 1, taken)),
        REELFORGE_S3_PORT=str(free_block(38333, 10, taken)),
        REELFORGE_PREFECT_PORT=str(free_block(34200, 1, taken)),
    )
    yield env
    _cli(env, "down")


def test_up_twice_status_healthy_then_down_leaves_nothing(other_stack_env):
    env = other_stack_env
    home = Path(env["REELFORGE_HOME"])
    first = _cli(env, "up", "--json")
    assert first.returncode == 0, first.stdout + first.stderr
    pids = {name: svc["pid"] for name, svc in json.loads(first.stdout)["services"].items()}

    second = _cli(env, "up", "--json")  # harmless: same processes
    assert second.returncode == 0
    assert {n: s["pid"] for n, s in json.loads(second.stdout)["services"].items()} == pids

    status = _cli(env, "status", "--json")
    payload = json.loads(status.stdout)
    assert status.returncode == 0 and payload["healthy"] is True
    assert {name: svc["healthy"] for name, svc in payload["services"].items()} == {
        "postgres": True,
        "s3": True,
        "prefect": True,
    }
    assert _ours(home), "expected our processes to be running"

    down = _cli(env, "down", "--json")
    assert down.returncode == 0
    assert sorted(json.loads(down.stdout)["stopped"]) == ["postgres", "prefect", "s3"]
    psutil.wait_procs(_ours(home), timeout=10)
    assert _ours(home) == []

    after = _cli(env, "status", "--json")
    assert after.returncode == 1 and json.loads(after.stdout)["ok"] is False


def test_busy_port_is_named_in_a_one_line_error(other_stack_env):
    port = int(other_stack_env["REELFORGE_PG_PORT"])
    with socket.socket() as squatter:
        squatter.setsockopt(
            socket.SOL_SOCKET, socket.SO_REUSEADDR, 1
        )  # the port may be in TIME_WAIT
        squatter.bind(("127.0.0.1", port))
        squatter.listen()
        result = _cli(other_stack_env, "up")
    assert result.returncode == 1
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1
    assert f"port {port}" in lines[0] and "REELFORGE_PG_PORT" in lines[0]
