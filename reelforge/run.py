"""Running flows from the CLI or the API: map a failed run to one error with its run id."""

from __future__ import annotations

import logging
from collections.abc import Callable

from reelforge.errors import ReelForgeError, ServiceUnavailable
from reelforge.jobs import VideoJob, VideoResult
from reelforge.orchestration import ensure_results_storage, in_process
from reelforge.prefect_env import configure_prefect
from reelforge.progress import listen
from reelforge.settings import get_settings


def run_video(
    job: VideoJob, *, on_stage: Callable[[str, int, int], None] | None = None
) -> VideoResult:
    """Run the video flow in this process against the configured Prefect API."""
    settings = get_settings()
    configure_prefect(settings)
    _require_prefect(settings.prefect_api)
    ensure_results_storage(settings)  # stage results persist to S3 (resume on retry)
    # Prefect's own console logging would interleave with our progress bar and JSON.
    logging.getLogger("prefect").setLevel(logging.WARNING)
    from flows.video import video_flow

    listen(on_stage)
    with in_process(fresh=True):  # a new run: no heartbeat thread, no cache lookups
        state = video_flow(job, return_state=True)
    flow_run_id = str(state.state_details.flow_run_id)
    if state.is_completed():
        return state.result()
    try:
        state.result()
    except ReelForgeError as exc:
        exc.flow_run_id = flow_run_id
        raise
    except Exception as exc:
        raise ReelForgeError(
            f"run {flow_run_id} failed: {type(exc).__name__}: {exc}", flow_run_id=flow_run_id
        ) from exc
    raise ReelForgeError(f"run {flow_run_id} ended {state.type.value}", flow_run_id=flow_run_id)


def _require_prefect(api: str) -> None:
    import httpx

    try:
        httpx.get(f"{api}/health", timeout=3).raise_for_status()
    except httpx.HTTPError as exc:
        raise ServiceUnavailable(
            f"Prefect API at {api} is unreachable: run `reelforge up` or check PREFECT_API_URL"
        ) from exc
