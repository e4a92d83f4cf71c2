"""Failpoints: make a named stage fail on purpose, to test resume, retries and crashes.

``REELFORGE_FAILPOINTS="publish:1"`` makes the publish stage fail once; ``generate:2`` twice.
A mode may follow the count:

* ``error`` (default): a non-retryable error, so the flow run fails at that stage;
* ``transient``: a retryable error (the stage's retry policy retries it);
* ``crash``: the process exits at once (``os._exit``), as if the machine died;
* ``pause``: the process writes ``<stage>.paused`` next to the counters and waits (at most
  ``PAUSE_MAX_S``) until that file is removed, so a test can stop a service at an exact
  point of a run in another process (`paused_at` finds the file).

Counts live in files under ``REELFORGE_HOME/failpoints/`` keyed by the whole
``REELFORGE_FAILPOINTS`` value, so they survive process restarts (a retried run on a
fresh worker does not fail again) and a new value starts from zero.  Unset: no cost beyond
one environment lookup.
"""

from __future__ import annotations

import fcntl
import hashlib
import os
import re
import time
from dataclasses import dataclass
from pathlib import Path

from reelforge.core.errors import InvalidInput, ReelForgeError

ENV = "REELFORGE_FAILPOINTS"
MODES = ("error", "transient", "crash", "pause")
CRASH_EXIT_CODE = 70
PAUSE_MAX_S = 900.0
_ITEM = re.compile(r"^(?P<stage>[a-z][a-z0-9_-]*):(?P<count>\d+)(?::(?P<mode>[a-z]+))?$")


class FailpointError(ReelForgeError):
    """A failpoint fired (never retried: the run fails at this stage)."""


class TransientFailpointError(ReelForgeError):
    """A failpoint fired in ``transient`` mode (the stage's retry policy retries it)."""


@dataclass(frozen=True)
class Failpoint:
    stage: str
    count: int
    mode: str = "error"


def parse(value: str | None) -> dict[str, Failpoint]:
    """``"publish:1,generate:2:transient"`` -> {stage: Failpoint}; bad syntax is refused."""
    points: dict[str, Failpoint] = {}
    for raw in (value or "").split(","):
        item = raw.strip()
        if not item:
            continue
        match = _ITEM.match(item)
        if match is None or (match["mode"] or "error") not in MODES:
            raise InvalidInput(
                f"{ENV}: bad item {item!r}: use stage:count[:{'|'.join(MODES)}], e.g. publish:1"
            )
        point = Failpoint(match["stage"], int(match["count"]), match["mode"] or "error")
        points[point.stage] = point
    return points


def _counter_dir(value: str) -> Path:
    from reelforge.core.settings import Settings

    home = Settings().home_dir  # fresh: tests and workers change REELFORGE_HOME per process
    scope = hashlib.sha256(value.encode()).hexdigest()[:16]
    return home / "failpoints" / scope


def _take(path: Path, limit: int) -> int | None:
    """Atomically count one firing; the firing number, or None when exhausted."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a+") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        handle.seek(0)
        fired = int(handle.read().strip() or 0)
        if fired >= limit:
            return None
        handle.seek(0)
        handle.truncate()
        handle.write(str(fired + 1))
        handle.flush()
        os.fsync(handle.fileno())
        return fired + 1


def failpoint(stage: str) -> None:
    """Fail here if ``REELFORGE_FAILPOINTS`` names ``stage`` and its count is not used up."""
    value = os.environ.get(ENV)
    if not value:
        return
    point = parse(value).get(stage)
    if point is None or point.count <= 0:
        return
    fired = _take(_counter_dir(value) / stage, point.count)
    if fired is None:
        return
    message = f"failpoint {stage} fired ({fired} of {point.count}, {ENV}={value})"
    if point.mode == "crash":
        os._exit(CRASH_EXIT_CODE)
    if point.mode == "pause":
        _pause(_counter_dir(value) / f"{stage}.paused")
        return
    if point.mode == "transient":
        raise TransientFailpointError(message)
    raise FailpointError(message)


def _pause(marker: Path) -> None:
    marker.write_text(str(os.getpid()))
    deadline = time.monotonic() + PAUSE_MAX_S
    while marker.exists() and time.monotonic() < deadline:
        time.sleep(0.1)
    marker.unlink(missing_ok=True)


def paused_at(stage: str, value: str) -> Path:
    """The marker a ``pause`` failpoint of ``stage`` writes; remove it to resume the run."""
    return _counter_dir(value) / f"{stage}.paused"


def fired(stage: str, value: str | None = None) -> int:
    """How often ``stage`` has fired under the given (default: current) failpoint value."""
    value = value if value is not None else os.environ.get(ENV, "")
    try:
        return int((_counter_dir(value) / stage).read_text().strip() or 0)
    except (OSError, ValueError):
        return 0
