"""Start and stop `reelforge worker` processes for tests and benchmarks."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
import uuid
from contextlib import contextmanager
from pathlib import Path

import psutil

REPO = Path(__file__).resolve().parents[2]


def _stop(proc: subprocess.Popen) -> None:
    """SIGINT (twice: Prefect's worker shuts down gracefully), then SIGKILL; whatever is
    left of the worker's process tree (flow-run subprocesses) is killed too."""
    try:
        tree = [psutil.Process(proc.pid), *psutil.Process(proc.pid).children(recursive=True)]
    except psutil.Error:
        tree = []
    for sig, wait in ((signal.SIGINT, 15), (signal.SIGINT, 10), (signal.SIGKILL, 10)):
        if proc.poll() is not None:
            break
        try:
            os.killpg(proc.pid, sig)
        except (ProcessLookupError, PermissionError):
            proc.send_signal(sig)
        try:
            proc.wait(wait)
        except subprocess.TimeoutExpired:
            continue
    for leftover in tree:
        with contextlib.suppress(psutil.Error):
            leftover.kill()


@contextmanager
def running_workers(count: int, pool: str, log_dir: Path, *, limit: int = 1, env=None):
    """``count`` workers of ``pool`` (cpu|gpu) of the current settings; yields their names."""
    from prefect import get_client

    from reelforge.core.orchestration import pool_name

    names = [f"test-{pool}-{i}-{uuid.uuid4().hex[:6]}" for i in range(count)]
    procs = []
    try:
        for name in names:
            log = (log_dir / f"{name}.log").open("wb")
            procs.append(
                subprocess.Popen(
                    [
                        str(Path(sys.executable).parent / "reelforge"),
                        "worker",
                        "--pool",
                        pool,
                        "--name",
                        name,
                        "--limit",
                        str(limit),
                        "--poll-seconds",
                        "2",
                    ],
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    cwd=REPO,
                    env={**os.environ, **(env or {})},
                    start_new_session=True,
                )
            )
        deadline = time.monotonic() + 120
        work_pool = pool_name(pool)  # type: ignore[arg-type]
        while True:  # every worker has said hello to the pool
            with get_client(sync_client=True) as client:
                try:
                    seen = {w.name for w in client.read_workers_for_work_pool(work_pool)}
                except Exception:
                    seen = set()
            if set(names) <= seen:
                break
            dead = [p for p in procs if p.poll() is not None]
            assert not dead, f"a worker exited: see {log_dir}"
            assert time.monotonic() < deadline, f"workers did not start: see {log_dir}"
            time.sleep(1)
        yield names
    finally:
        for proc in procs:
            _stop(proc)
