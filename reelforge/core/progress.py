"""Stage progress, shown where the run is watched: a rich bar in the CLI, a Prefect
progress artifact in the UI. The flow reports; whoever runs it decides how to show it."""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from contextvars import ContextVar, copy_context

Listener = Callable[[str, int, int], None]  # (stage, done, total)

_listener: ContextVar[Listener | None] = ContextVar("reelforge_progress", default=None)
_updates = ThreadPoolExecutor(max_workers=1, thread_name_prefix="reelforge-progress")


def listen(listener: Listener | None) -> None:
    _listener.set(listener)


class StageProgress:
    """Counts finished stages of one run and reports each step."""

    def __init__(self, key: str, stages: tuple[str, ...]) -> None:
        from prefect.artifacts import create_progress_artifact

        self.stages = stages
        self.done = 0
        # Sent from a background thread, in order, so no stage waits for the API (the run's
        # context goes along: its API URL, and the flow run the artifact belongs to); the
        # last step waits until every update has landed.
        self._artifact = _updates.submit(
            copy_context().run,
            create_progress_artifact,
            0.0,
            key=key,
            description=f"stages: {' -> '.join(stages)}",
        )

    def _update(self, progress: float) -> None:
        from prefect.artifacts import update_progress_artifact

        update_progress_artifact(self._artifact.result(), progress)

    def step(self, stage: str) -> None:
        self.done += 1
        self._pending = _updates.submit(
            copy_context().run, self._update, 100.0 * self.done / len(self.stages)
        )
        if self.done == len(self.stages):
            self._pending.result()
        listener = _listener.get()
        if listener is not None:
            listener(stage, self.done, len(self.stages))
