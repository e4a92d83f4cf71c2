"""Failpoints fire the configured number of times, across processes, in the chosen mode."""

from __future__ import annotations

import os
import subprocess
import sys
import uuid

import pytest

from reelforge.core.errors import InvalidInput
from reelforge.core.failpoints import (
    CRASH_EXIT_CODE,
    FailpointError,
    TransientFailpointError,
    failpoint,
    fired,
    parse,
)
from reelforge.core.retry import is_transient


@pytest.fixture
def home(tmp_path, monkeypatch):
    monkeypatch.setenv("REELFORGE_HOME", str(tmp_path))
    return tmp_path


def _value(spec: str) -> str:
    # A unique trailing item gives each test its own counters.
    return f"{spec},scope-{uuid.uuid4().hex[:8]}:0"


def test_parse_accepts_counts_and_modes_and_refuses_garbage():
    points = parse("publish:1, generate:2:transient,enhance:1:crash")
    assert points["publish"].count == 1 and points["publish"].mode == "error"
    assert points["generate"].mode == "transient" and points["enhance"].mode == "crash"
    for bad in ("publish", "publish:x", "publish:1:explode", "../x:1"):
        with pytest.raises(InvalidInput, match="REELFORGE_FAILPOINTS"):
            parse(bad)


def test_fires_exactly_count_times_then_stays_quiet(home, monkeypatch):
    value = _value("publish:2")
    monkeypatch.setenv("REELFORGE_FAILPOINTS", value)
    failpoint("generate")  # not named: never fires
    for n in (1, 2):
        with pytest.raises(FailpointError, match=f"failpoint publish fired \\({n} of 2"):
            failpoint("publish")
    failpoint("publish")
    assert fired("publish") == 2


def test_the_count_survives_a_process_restart(home, monkeypatch):
    value = _value("publish:1")
    env = {**os.environ, "REELFORGE_HOME": str(home), "REELFORGE_FAILPOINTS": value}
    code = "from reelforge.core.failpoints import failpoint; failpoint('publish')"
    first = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True)
    assert first.returncode != 0 and "FailpointError" in first.stderr
    second = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True)
    assert second.returncode == 0, second.stderr  # a fresh process does not fail again
    monkeypatch.setenv("REELFORGE_FAILPOINTS", value)
    assert fired("publish") == 1


def test_a_new_value_starts_from_zero(home, monkeypatch):
    monkeypatch.setenv("REELFORGE_FAILPOINTS", _value("publish:1"))
    with pytest.raises(FailpointError):
        failpoint("publish")
    monkeypatch.setenv("REELFORGE_FAILPOINTS", _value("publish:1"))
    with pytest.raises(FailpointError):
        failpoint("publish")


def test_crash_mode_exits_the_process(home):
    env = {**os.environ, "REELFORGE_HOME": str(home), "REELFORGE_FAILPOINTS": _value("gen:1:crash")}
    code = "from reelforge.core.failpoints import failpoint; failpoint('gen'); print('survived')"
    done = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True)
    assert done.returncode == CRASH_EXIT_CODE and "survived" not in done.stdout


def test_error_mode_is_not_retried_but_transient_mode_is(home, monkeypatch):
    class _State:
        def __init__(self, exc: Exception) -> None:
            self.exc = exc

        def result(self):
            raise self.exc

    assert not is_transient(None, None, _State(FailpointError("x")))
    assert is_transient(None, None, _State(TransientFailpointError("x")))
    monkeypatch.setenv("REELFORGE_FAILPOINTS", _value("publish:1:transient"))
    with pytest.raises(TransientFailpointError):
        failpoint("publish")


def test_pause_mode_holds_the_process_until_its_marker_is_removed(home):
    import time

    from reelforge.core.failpoints import paused_at

    value = _value("gen:1:pause")
    env = {**os.environ, "REELFORGE_HOME": str(home), "REELFORGE_FAILPOINTS": value}
    code = "from reelforge.core.failpoints import failpoint; failpoint('gen'); print('resumed')"
    proc = subprocess.Popen(
        [sys.executable, "-c", code], env=env, stdout=subprocess.PIPE, text=True
    )
    marker = paused_at("gen", value)
    deadline = time.monotonic() + 60
    while not marker.exists():
        assert time.monotonic() < deadline and proc.poll() is None, "never paused"
        time.sleep(0.05)
    time.sleep(0.5)
    assert proc.poll() is None, "did not wait at the pause"
    marker.unlink()
    out, _ = proc.communicate(timeout=30)
    assert proc.returncode == 0 and "resumed" in out
