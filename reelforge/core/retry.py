"""Retry policy for stage tasks: transient failures (S3, network, a busy database) retry
with exponential backoff and jitter; bad input and blocked content never do."""

from __future__ import annotations

from typing import Any

from prefect.tasks import exponential_backoff

from reelforge.core.errors import BlockedBySafety, InvalidInput
from reelforge.core.failpoints import FailpointError
from reelforge.core.settings import Settings


def is_transient(task: Any, task_run: Any, state: Any) -> bool:
    try:
        state.result()
    except (InvalidInput, BlockedBySafety, FailpointError):
        return False
    except Exception:
        return True
    return False


_settings = Settings()  # fresh: a worker's or test's environment, read once per process
TRANSIENT: dict[str, Any] = {
    "retries": _settings.stage_retries,
    "retry_delay_seconds": exponential_backoff(backoff_factor=_settings.stage_retry_delay_seconds),
    "retry_jitter_factor": 0.5,
    "retry_condition_fn": is_transient,
}
