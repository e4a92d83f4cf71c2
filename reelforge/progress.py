"""Stage progress, shown where the run is watched: a rich bar in the CLI, a Prefect
progress artifact in the UI. The flow reports; whoever runs it decides how to show it."""

from __future__ import annotations

from collections.abc import Callable
from contextvars import ContextVar

Listener = Callable[[str, int, int], None]  # (stage, done, total)

_listener: ContextVar[Listener | None] = ContextVar("reelforge_progress", default=None)


def listen(listener: Listener | None) -> None:
    _listener.set(listener)


class StageProgress:
    """Counts finished stages of one run and reports each step."""

    def __init__(self, key: str, stages: tuple[str, ...]) -> None:
        from prefect.artifacts import create_progress_artifact

        self.stages = stages
        self.done = 0
        self.artifact_id = create_progress_artifact(
            0.0, key=key, description=f"stages: {' -> '.join(stages)}"
        )

    def step(self, stage: str) -> None:
        from prefect.artifacts import update_progress_artifact

        self.done += 1
        update_progress_artifact(self.artifact_id, 100.0 * self.done / len(self.stages))
        listener = _listener.get()
        if listener is not None:
            listener(stage, self.done, len(self.stages))
