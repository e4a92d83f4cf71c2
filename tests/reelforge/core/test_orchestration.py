"""Generation slots: as many per machine as it has GPUs (or ``REELFORGE_GPU_SLOTS``), each a
file lock, so a holder that crashes loses its slot the moment its process is gone."""

from __future__ import annotations

import os
import queue
import signal
import subprocess
import sys
import threading

import pytest

HOLD = """
import time
from reelforge.core.orchestration import gpu_slot
print("asking", flush=True)
with gpu_slot() as index:
    print("holding", index, flush=True)
    time.sleep(600)
"""


@pytest.fixture
def slot_env(tmp_path):
    """The environment of a process on a machine of its own: its own slot folder."""
    return {**os.environ, "REELFORGE_GPU_SLOT_DIR": str(tmp_path / "slots")}


class _Holder:
    """A process asking for a slot; its output lines arrive on a queue."""

    def __init__(self, env: dict[str, str], slots: int) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-c", HOLD],
            stdout=subprocess.PIPE,
            text=True,
            env={**env, "REELFORGE_GPU_SLOTS": str(slots)},
        )
        self.lines: queue.Queue[str] = queue.Queue()
        threading.Thread(target=self._read, daemon=True).start()
        # imports done: from here on, what it waits for is the slot
        assert self.lines.get(timeout=120) == "asking\n"

    def _read(self) -> None:
        for line in self.proc.stdout:
            self.lines.put(line)

    def holding(self, wait_s: float) -> int | None:
        """The slot it took within ``wait_s`` seconds; None if it is still waiting."""
        try:
            line = self.lines.get(timeout=wait_s)
        except queue.Empty:
            return None
        assert line.startswith("holding"), line
        return int(line.split()[1])


def _stop(*holders: _Holder | None) -> None:
    for holder in filter(None, holders):
        holder.proc.kill()
        holder.proc.wait()


def test_a_machine_never_runs_more_generations_than_its_slots(slot_env):
    first = _Holder(slot_env, 1)
    second = None
    try:
        assert first.holding(60) == 0
        second = _Holder(slot_env, 1)
        assert second.holding(3) is None  # one GPU: the second generation waits
        third = _Holder(slot_env, 2)  # a machine with two GPUs: a second one may start
        try:
            assert third.holding(60) == 1
            assert second.holding(1) is None
        finally:
            _stop(third)
    finally:
        _stop(first, second)


def test_a_crashed_holder_frees_its_slot_at_once(slot_env):
    holder = _Holder(slot_env, 1)
    assert holder.holding(60) == 0
    waiting = _Holder(slot_env, 1)
    try:
        assert waiting.holding(3) is None
        os.kill(holder.proc.pid, signal.SIGKILL)  # no clean release: the kernel drops the lock
        holder.proc.wait()
        assert waiting.holding(30) == 0
    finally:
        _stop(holder, waiting)


def test_slots_in_one_process_are_distinct(slot_env, monkeypatch):
    from reelforge.core.orchestration import gpu_slot
    from reelforge.core.settings import get_settings

    monkeypatch.setenv("REELFORGE_GPU_SLOT_DIR", slot_env["REELFORGE_GPU_SLOT_DIR"])
    monkeypatch.setenv("REELFORGE_GPU_SLOTS", "2")
    get_settings.cache_clear()
    try:
        # two in-process runs (the API's dispatcher threads) hold two different slots
        with gpu_slot() as first, gpu_slot() as second:
            assert {first, second} == {0, 1}
        with gpu_slot() as again:
            assert again == 0  # both given back
    finally:
        monkeypatch.undo()
        get_settings.cache_clear()
