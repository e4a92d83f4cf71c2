"""Bounded fan-out of Prefect tasks: at most ``limit`` in flight, results in input order."""

from __future__ import annotations

import concurrent.futures as cf
import time
from collections.abc import Callable, Sequence
from typing import Any, TypeVar

T = TypeVar("T")


def fan_out(
    submit: Callable[[T], Any],
    items: Sequence[T],
    *,
    limit: int,
    on_done: Callable[[int, Any], None] | None = None,
) -> list[Any]:
    """Submit ``submit(item)`` (a Prefect ``task.submit``) for each item, keeping at most
    ``limit`` running; returns the final states in input order. ``on_done(done, state)``
    is called as each finishes."""
    states: list[Any] = [None] * len(items)
    running: dict[cf.Future, tuple[int, Any]] = {}
    done = 0

    def collect(block_until_one: bool) -> None:
        nonlocal done
        if not running:
            return
        finished, _ = cf.wait(
            list(running),
            timeout=None if block_until_one else 0,
            return_when=cf.FIRST_COMPLETED,
        )
        for future in finished:
            index, prefect_future = running.pop(future)
            prefect_future.wait()
            states[index] = prefect_future.state
            done += 1
            if on_done is not None:
                on_done(done, states[index])

    for index, item in enumerate(items):
        while len(running) >= limit:
            collect(block_until_one=True)
        prefect_future = submit(item)
        running[prefect_future.wrapped_future] = (index, prefect_future)
        collect(block_until_one=False)
    while running:
        collect(block_until_one=True)
    return states


class Throttle:
    """Call ``fn`` at most every ``seconds`` (and always for the last call)."""

    def __init__(self, fn: Callable[..., None], seconds: float = 1.0) -> None:
        self.fn, self.seconds, self.last = fn, seconds, 0.0

    def __call__(self, *args: Any, final: bool = False) -> None:
        now = time.monotonic()
        if final or now - self.last >= self.seconds:
            self.last = now
            self.fn(*args)
