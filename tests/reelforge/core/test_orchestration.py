"""Generation slots: a Prefect global concurrency limit per machine, sized by its GPUs;
a holder that crashes loses its slot when the lease runs out."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import uuid

import pytest

HOLD = """
import sys, time
from reelforge.core.orchestration import gpu_slot, ready
ready()
with gpu_slot() as name:
    print("holding", name, flush=True)
    time.sleep(float(sys.argv[1]))
print("released", flush=True)
"""


@pytest.fixture
def host(stack, monkeypatch):
    """A machine name of its own, so this test's limit is not the real machine's."""
    from reelforge.core.orchestration import gpu_limit_name

    name = f"test-{uuid.uuid4().hex[:8]}"
    monkeypatch.setenv("REELFORGE_GPU_HOST", name)
    yield gpu_limit_name()
    from prefect import get_client

    with get_client(sync_client=True) as client:
        client.delete_global_concurrency_limit_by_name(gpu_limit_name())


def _holder(seconds: float) -> subprocess.Popen:
    proc = subprocess.Popen(
        [sys.executable, "-c", HOLD, str(seconds)],
        stdout=subprocess.PIPE,
        text=True,
        env=os.environ.copy(),
    )
    line = proc.stdout.readline()
    assert line.startswith("holding"), line
    return proc


def _active(name: str) -> int:
    from prefect import get_client

    with get_client(sync_client=True) as client:
        return client.read_global_concurrency_limit_by_name(name).active_slots


def test_a_machine_never_runs_more_generations_than_its_slots(host, monkeypatch):
    from prefect.concurrency.sync import concurrency

    from reelforge.core.orchestration import ensure_gpu_limit, gpu_slot

    assert ensure_gpu_limit(1) == host
    holder = _holder(30)
    try:
        assert _active(host) == 1
        with pytest.raises(TimeoutError), concurrency(host, timeout_seconds=2, strict=True):
            pass
        ensure_gpu_limit(2)  # a second GPU: a second generation may start
        with gpu_slot() as name:
            assert name == host and _active(host) == 2
    finally:
        holder.kill()
        holder.wait()


@pytest.mark.slow
def test_a_crashed_holder_frees_its_slot_when_the_lease_expires(host):
    from reelforge.core.orchestration import ensure_gpu_limit

    ensure_gpu_limit(1)
    holder = _holder(600)
    os.kill(holder.pid, signal.SIGKILL)  # no clean release: only the lease can free it
    holder.wait()
    assert _active(host) == 1
    killed = time.monotonic()
    # The lease (REELFORGE_GPU_LEASE_SECONDS, 60 s minimum) expires; the server's lease
    # reaper runs every 15 s.
    while _active(host) != 0:
        assert time.monotonic() - killed < 150, "the slot of a crashed holder was never freed"
        time.sleep(2)
    assert time.monotonic() - killed >= 40
