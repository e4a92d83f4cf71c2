"""Running flows from the CLI or the API: map a failed run to one error with its run id."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from reelforge.core.jobs import VideoJob, VideoResult
from reelforge.core.orchestration import (
    configure_prefect,
    ensure_results_storage,
    in_process,
    require_prefect,
    run_tagged,
)
from reelforge.core.progress import listen
from reelforge.core.settings import get_settings


def run_here(
    flow_name: str,
    parameters: dict[str, Any],
    *,
    tenant: str,
    on_stage: Callable[[str, int, int], None] | None = None,
) -> Any:
    """Run a flow of the registry (flows/__init__.py) in this process against the configured
    Prefect API, as a new run tagged for ``tenant``: its result, or the run's failure as one
    error with its run id. Its inputs are checked already: a refused run never starts."""
    settings = get_settings()
    configure_prefect(settings)
    require_prefect(settings)
    ensure_results_storage(settings)  # stage results persist to S3 (resume on retry)
    # Prefect's own console logging would interleave with our progress bar and JSON.
    logging.getLogger("prefect").setLevel(logging.WARNING)
    _console_without_tracebacks()
    from flows import load_flow  # after configure_prefect: Prefect reads its settings then
    from reelforge.ops.runs import outages_named, raise_failure, tenant_tag

    listen(on_stage)
    # new run: no heartbeats, no cache lookups; tagged so the tenant's ops view lists it
    with in_process(fresh=True), outages_named():
        state = run_tagged(load_flow(flow_name), parameters, [tenant_tag(tenant)])
    if state.is_completed():
        return state.result()
    raise_failure(state, str(state.state_details.flow_run_id))


def run_video(
    job: VideoJob, *, on_stage: Callable[[str, int, int], None] | None = None
) -> VideoResult:
    """Run the video flow in this process against the configured Prefect API."""
    from tasks.preflight import check_job

    check_job(job)  # bad input fails here: no flow run, nothing stored
    return run_here("video", {"job": job}, tenant=job.tenant, on_stage=on_stage)


class _NoTracebacks(logging.Filter):
    """Prefect logs a failed run with its traceback; on the console the caller gets one line
    instead (``--debug`` shows the traceback). Prefect's API handler, which sees the record
    first, still sends the traceback to the run's logs."""

    def filter(self, record: logging.LogRecord) -> bool:
        if record.exc_info and record.name.startswith("prefect"):
            record.exc_info = None
            record.exc_text = None
        return True


_NO_TRACEBACKS = _NoTracebacks()


def _console_without_tracebacks() -> None:
    from prefect.logging.configuration import ensure_logging_setup
    from prefect.logging.handlers import PrefectConsoleHandler

    ensure_logging_setup()
    for handler in logging.getLogger().handlers:
        if isinstance(handler, PrefectConsoleHandler) and _NO_TRACEBACKS not in handler.filters:
            handler.addFilter(_NO_TRACEBACKS)
