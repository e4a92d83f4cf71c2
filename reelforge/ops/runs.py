"""Ops on flow runs: list, retry (same run id, resumes at the failed stage) and cancel.

Retry keeps the flow-run id, so every stage that finished in the failed attempt comes back
``Cached`` from the results bucket and only what failed runs again:

* a run of a deployment (a worker ran it) is set to ``Scheduled`` again and a worker of its
  pool picks it up, on whichever machine: this is what Prefect's UI retry and
  ``prefect flow-run retry`` do;
* a run made in-process (``reelforge generate``, ``campaign run``) has no worker to pick it
  up: it is set to ``Scheduled`` and run again here, in this process, with the same flow
  run (``prefect.flow_engine.run_flow``) and the parameters it was created with.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from typing import Any

from pydantic import BaseModel

from flows import FLOWS, load_flow
from reelforge.core.errors import InvalidInput, ReelForgeError, ServiceUnavailable
from reelforge.core.orchestration import (
    in_process,
    process_gone,
    queue_wait_seconds,
    ready,
    run_process,
)
from reelforge.core.settings import get_settings

STATUSES = (
    "scheduled",
    "pending",
    "running",
    "completed",
    "failed",
    "cancelled",
    "crashed",
    "cancelling",
    "paused",
)
RETRYABLE = ("FAILED", "CRASHED", "CANCELLED")
TENANT_TAG = "tenant:"
ACTIVE = ("SCHEDULED", "PENDING", "RUNNING", "PAUSED", "CANCELLING")


class RunInfo(BaseModel):
    id: uuid.UUID
    name: str
    flow: str
    state: str
    state_name: str
    message: str | None = None
    deployment_id: uuid.UUID | None = None
    work_pool: str | None = None
    worker: str | None = None
    parent_task_run_id: uuid.UUID | None = None
    start_time: datetime | None = None
    end_time: datetime | None = None
    duration_s: float | None = None
    queue_wait_s: float | None = None  # from when it was due to when it started
    run_count: int = 0
    process: str | None = None  # who runs it: a worker's pid, or `run_process`'s tag
    tags: list[str] = []
    created: datetime | None = None
    subject: str | None = None  # what it makes: a video's prompt, a campaign's name

    @property
    def tenant(self) -> str | None:
        """The tenant the run works for (its ``tenant:<slug>`` tag), if it carries one."""
        return next((t.removeprefix(TENANT_TAG) for t in self.tags if t.startswith(TENANT_TAG)), None)  # fmt: skip


def tenant_tag(tenant: str) -> str:
    """The tag every flow run carries for its tenant: the ops view lists a tenant's runs by it."""
    return f"{TENANT_TAG}{tenant}"


def _info(run: Any, flow_names: dict[uuid.UUID, str]) -> RunInfo:
    state = run.state
    message = " ".join((state.message or "").split())[:300] if state and state.message else None
    return RunInfo(
        id=run.id,
        name=run.name,
        flow=flow_names.get(run.flow_id, str(run.flow_id)),
        state=state.type.value if state else "UNKNOWN",
        state_name=state.name if state else "Unknown",
        message=message,
        deployment_id=run.deployment_id,
        work_pool=run.work_pool_name,
        worker=(run.labels or {}).get("prefect.worker.name"),
        parent_task_run_id=run.parent_task_run_id,
        start_time=run.start_time,
        end_time=run.end_time,
        duration_s=round(run.total_run_time.total_seconds(), 3) if run.total_run_time else None,
        queue_wait_s=queue_wait_seconds(run),
        run_count=run.run_count,
        process=run_process(run),
        tags=list(run.tags or []),
        created=run.created,
        subject=_subject(run.parameters or {}),
    )


def _subject(parameters: dict[str, Any]) -> str | None:
    job, spec = parameters.get("job"), parameters.get("spec")
    if isinstance(job, dict) and job.get("prompt"):
        return str(job["prompt"])
    if isinstance(spec, dict) and spec.get("name"):
        return str(spec["name"])
    return None


def progress_of(run_ids: list[uuid.UUID]) -> dict[uuid.UUID, float]:
    """How far each run got (percent), from the progress artifacts its flow keeps."""
    from prefect import get_client
    from prefect.client.schemas.filters import (
        ArtifactFilter,
        ArtifactFilterFlowRunId,
        ArtifactFilterType,
    )

    if not run_ids:
        return {}
    with get_client(sync_client=True) as client:
        artifacts = client.read_artifacts(
            artifact_filter=ArtifactFilter(
                flow_run_id=ArtifactFilterFlowRunId(any_=run_ids),
                type=ArtifactFilterType(any_=["progress"]),
            )
        )
    out: dict[uuid.UUID, float] = {}
    for artifact in artifacts:
        if artifact.flow_run_id is not None and isinstance(artifact.data, int | float):
            out[artifact.flow_run_id] = max(float(artifact.data), out.get(artifact.flow_run_id, 0))
    return out


def abandoned_runs(limit: int = 200) -> list[RunInfo]:
    """Runs still ``Running`` (or ``Pending``) whose process on this machine is gone."""
    active = [*list_runs("running", limit=limit), *list_runs("pending", limit=limit)]
    return [run for run in active if process_gone(run.process)]


HEARTBEAT_EVENT = "prefect.flow-run.heartbeat"
EVENTS_PAGE = 50  # the most events Prefect's API returns per page


def stalled_runs(
    timeout_s: float,
    *,
    run_ids: list[uuid.UUID] | None = None,
    tenant: str | None = None,
    limit: int = 200,
) -> list[RunInfo]:
    """Runs of a worker still ``Running`` or ``Cancelling`` that have given no sign of life
    (a ``prefect.flow-run.heartbeat`` event or a state change) for ``timeout_s``: their
    machine died (kill -9 of the worker and its flow process, a host crash), so nothing
    will ever report their end.

    A worker's flow process sends a heartbeat every PREFECT_FLOWS_HEARTBEAT_FREQUENCY
    seconds (180 by default). In-process runs send none (``in_process``): ``abandoned_runs``
    judges them by their process instead. ``run_ids``: only among these runs; ``tenant``:
    only that tenant's (by tag).
    """
    from prefect import get_client
    from prefect.client.schemas.filters import (
        FlowRunFilter,
        FlowRunFilterDeploymentId,
        FlowRunFilterId,
        FlowRunFilterState,
        FlowRunFilterStateType,
        FlowRunFilterTags,
    )
    from prefect.client.schemas.objects import StateType
    from prefect.events.filters import (
        EventFilter,
        EventNameFilter,
        EventOccurredFilter,
        EventResourceFilter,
    )

    ready()
    since = datetime.now(UTC) - timedelta(seconds=timeout_s)
    with get_client(sync_client=True) as client:
        runs = client.read_flow_runs(
            flow_run_filter=FlowRunFilter(
                state=FlowRunFilterState(
                    type=FlowRunFilterStateType(any_=[StateType.RUNNING, StateType.CANCELLING])
                ),
                deployment_id=FlowRunFilterDeploymentId(is_null_=False),
                id=FlowRunFilterId(any_=run_ids) if run_ids is not None else None,
                tags=FlowRunFilterTags(all_=[tenant_tag(tenant)]) if tenant else None,
            ),
            limit=limit,
        )
        quiet = {
            f"prefect.flow-run.{run.id}": run
            for run in runs
            if run.state is not None and run.state.timestamp < since
        }
        if not quiet:
            return []
        page = client.read_events(
            EventFilter(
                occurred=EventOccurredFilter(since=since),
                event=EventNameFilter(name=[HEARTBEAT_EVENT]),
                resource=EventResourceFilter(id=list(quiet)),
            ),
            limit=EVENTS_PAGE,
        )
        while page is not None and quiet:
            for event in page.events:
                quiet.pop(event.resource.id, None)
            page = page.get_next_page_sync(client)
        names = _flow_names(client, list(quiet.values()))
        return [_info(run, names) for run in quiet.values()]


def _stalled(info: RunInfo) -> bool:
    """Whether a worker's run has stopped sending heartbeats (see ``stalled_runs``)."""
    if info.deployment_id is None or info.state not in ("RUNNING", "CANCELLING"):
        return False
    return bool(stalled_runs(get_settings().heartbeat_timeout_seconds, run_ids=[info.id]))


def mark_stalled(run_id: uuid.UUID, timeout_s: float, found_by: str) -> None:
    """Mark a run of ``stalled_runs`` Crashed, saying why, so that it can be retried."""
    mark_crashed(
        run_id, f"no heartbeat for {timeout_s:.0f}s (its machine died): found by {found_by}"
    )


def mark_crashed(run_id: uuid.UUID, why: str) -> None:
    from prefect import get_client
    from prefect.states import Crashed

    with get_client(sync_client=True) as client:
        client.set_flow_run_state(run_id, Crashed(message=why), force=True)


def _flow_names(client: Any, runs: list[Any]) -> dict[uuid.UUID, str]:
    from prefect.client.schemas.filters import FlowFilter, FlowFilterId

    ids = list({run.flow_id for run in runs})
    if not ids:
        return {}
    flows = client.read_flows(flow_filter=FlowFilter(id=FlowFilterId(any_=ids)))
    return {flow.id: flow.name for flow in flows}


def _parse_id(run_id: str) -> uuid.UUID:
    try:
        return uuid.UUID(run_id)
    except ValueError:
        raise InvalidInput(
            f"not a run id: {run_id!r} (expected a UUID; `reelforge runs` lists them)"
        ) from None


def get_run(run_id: str | uuid.UUID) -> RunInfo:
    from prefect import get_client
    from prefect.exceptions import ObjectNotFound

    ready()
    rid = run_id if isinstance(run_id, uuid.UUID) else _parse_id(run_id)
    with get_client(sync_client=True) as client:
        try:
            run = client.read_flow_run(rid)
        except ObjectNotFound:
            raise InvalidInput(f"no run {rid}: `reelforge runs` lists the recent ones") from None
        return _info(run, _flow_names(client, [run]))


def list_runs(
    status: str | None = None,
    *,
    flow: str | None = None,
    limit: int = 20,
    tenant: str | None = None,
    top_level: bool = False,
) -> list[RunInfo]:
    """Recent flow runs, newest first, optionally of one state and flow; ``tenant``: only
    that tenant's (by tag); ``top_level``: not the videos a campaign ran as its subflows."""
    from prefect import get_client
    from prefect.client.schemas.filters import (
        FlowFilter,
        FlowFilterName,
        FlowRunFilter,
        FlowRunFilterParentTaskRunId,
        FlowRunFilterState,
        FlowRunFilterStateType,
        FlowRunFilterTags,
    )
    from prefect.client.schemas.objects import StateType
    from prefect.client.schemas.sorting import FlowRunSort

    if status is not None and status.lower() not in STATUSES:
        raise InvalidInput(f"unknown status {status!r}: use one of {', '.join(STATUSES)}")
    if not 1 <= limit <= 1000:
        raise InvalidInput(f"--limit {limit} is out of range: use 1 to 1000")
    ready()
    run_filter = FlowRunFilter(
        state=FlowRunFilterState(type=FlowRunFilterStateType(any_=[StateType(status.upper())]))
        if status
        else None,
        tags=FlowRunFilterTags(all_=[tenant_tag(tenant)]) if tenant else None,
        parent_task_run_id=FlowRunFilterParentTaskRunId(is_null_=True) if top_level else None,
    )
    flow_filter = FlowFilter(name=FlowFilterName(any_=[flow])) if flow else None
    with get_client(sync_client=True) as client:
        runs = client.read_flow_runs(
            flow_filter=flow_filter,
            flow_run_filter=run_filter,
            sort=FlowRunSort.EXPECTED_START_TIME_DESC,
            limit=limit,
        )
        names = _flow_names(client, runs)
        return [_info(run, names) for run in runs]


def run_result(run_id: uuid.UUID) -> Any:
    """What a finished run returned (its result persists to the results bucket)."""
    from prefect import get_client

    with get_client(sync_client=True) as client:
        run = client.read_flow_run(run_id)
    if run.state is None or not run.state.is_completed():
        raise InvalidInput(f"run {run_id} has not completed: it has no result")
    return run.state.result()


def _load_flow(name: str) -> Any:
    if name not in FLOWS:
        raise InvalidInput(f"cannot retry a {name!r} run here: only {', '.join(FLOWS)} runs")
    return load_flow(name)


def retry_run(
    run_id: str | uuid.UUID, *, wait: bool = True, timeout_s: float | None = None
) -> RunInfo:
    """Retry a failed, crashed or cancelled run under the same id (see the module docstring)."""
    from prefect import get_client
    from prefect.states import Scheduled

    info = get_run(run_id)
    if info.state in ACTIVE and process_gone(info.process):
        mark_crashed(info.id, "its process is gone (killed or crashed mid-run)")
        info = get_run(info.id)
    elif _stalled(info):
        mark_stalled(info.id, get_settings().heartbeat_timeout_seconds, "`reelforge retry`")
        info = get_run(info.id)
    if info.state not in RETRYABLE:
        hint = "it finished" if info.state == "COMPLETED" else "it has not finished"
        raise InvalidInput(
            f"run {info.id} is {info.state_name}: only failed, crashed or cancelled runs can be "
            f"retried ({hint})"
        )
    with get_client(sync_client=True) as client:
        result = client.set_flow_run_state(
            info.id, Scheduled(message="Retried with `reelforge retry`"), force=True
        )
        if result.status.value == "ABORT":
            raise ReelForgeError(f"run {info.id} could not be rescheduled: {result.details}")
        run = client.read_flow_run(info.id)
    if info.deployment_id is None:
        import logging

        from prefect.flow_engine import run_flow

        flow = _load_flow(info.flow)
        logging.getLogger("prefect").setLevel(logging.WARNING)  # as `reelforge generate`
        with in_process(), outages_named():
            state = run_flow(flow, flow_run=run, parameters=run.parameters, return_type="state")
        if not state.is_completed():
            raise_failure(state, str(info.id))
        return get_run(info.id)
    if not wait:
        return get_run(info.id)
    deadline = None if timeout_s is None else time.monotonic() + timeout_s
    while True:
        current = get_run(info.id)
        if current.state not in ACTIVE and current.run_count > info.run_count:
            return current
        if deadline is not None and time.monotonic() > deadline:
            raise ReelForgeError(
                f"run {info.id} was rescheduled but did not finish within {timeout_s:.0f}s "
                f"(state {current.state_name}): is a worker of pool {info.work_pool} running?",
                flow_run_id=str(info.id),
            )
        time.sleep(1.0)


@contextmanager
def outages_named() -> Iterator[None]:
    """A flow engine that lost a service mid-run raises that client's error: name it."""
    try:
        yield
    except Exception as exc:
        named = outage_error(exc)
        if named is None:
            raise
        raise named from exc


def raise_failure(state: Any, run_id: str) -> None:
    """Raise a failed run's own error (keeping its exit code), tagged with the run id."""
    try:
        state.result()
    except Exception as exc:
        raise failure_error(exc, run_id) from exc
    raise ReelForgeError(f"run {run_id} ended {state.name}", flow_run_id=run_id)


def failure_error(exc: BaseException, run_id: str) -> ReelForgeError:
    """The one-line error of a failed run: its own ReelForgeError, or, when a service or
    the disk gave out under it, which one and what to do, then how to resume the run."""
    outage = _outage(exc)
    if outage is not None:
        return _outage_error(outage, f"`reelforge retry {run_id}` resumes the run", run_id)
    if isinstance(exc, ReelForgeError):
        exc.flow_run_id = run_id
        return exc
    return ReelForgeError(f"run {run_id} failed: {type(exc).__name__}: {exc}", flow_run_id=run_id)


def _outage(exc: BaseException) -> str | None:
    """What gave out, in a line with its fix, if ``exc`` (or its cause) is an outage."""
    import errno
    import tempfile

    import psycopg
    import sqlalchemy.exc
    import urllib3

    settings = get_settings()
    seen: BaseException | None = exc
    for _ in range(10):  # the cause chain, not for ever
        if seen is None:
            return None
        disk_full = isinstance(seen, OSError) and seen.errno == errno.ENOSPC
        if disk_full or "No space left on device" in str(seen):  # ours, or ffmpeg's stderr
            return (
                f"no space left on the scratch disk ({tempfile.gettempdir()}): free space "
                "or point TMPDIR (and REELFORGE_HOME's disk) at a bigger one"
            )
        if isinstance(seen, sqlalchemy.exc.OperationalError | psycopg.OperationalError):
            return (
                "PostgreSQL is unreachable: start it (`reelforge up`) or check "
                "REELFORGE_DATABASE_URL"
            )
        if isinstance(seen, urllib3.exceptions.HTTPError):
            return (
                f"S3 at {settings.s3_address} is unreachable: start it (`reelforge up`) or "
                "check REELFORGE_S3_ENDPOINT"
            )
        if isinstance(seen, ServiceUnavailable):
            return getattr(seen, "outage", None) or str(seen)
        if _prefect_failure(seen):
            if not _postgres_up(settings):  # Prefect's own database is down: say so
                return (
                    "PostgreSQL is unreachable (Prefect's API fails without it): start it "
                    "(`reelforge up`) or check REELFORGE_DATABASE_URL"
                )
            return (
                f"the Prefect API at {settings.prefect_api} failed: check `reelforge status` "
                "(`reelforge down && reelforge up` restarts the local one)"
            )
        seen = seen.__cause__ or seen.__context__
    return None


def _prefect_failure(exc: BaseException) -> bool:
    import httpx
    from prefect.exceptions import PrefectHTTPStatusError

    if isinstance(exc, PrefectHTTPStatusError):
        return exc.response.status_code >= 500
    return isinstance(exc, httpx.TransportError)


def _postgres_up(settings: Any) -> bool:
    from reelforge.ops.stack import database_answers

    try:
        return database_answers(settings)
    except Exception:
        return False


def outage_error(exc: Exception) -> ServiceUnavailable | None:
    """For a run that broke before it could end (its engine lost a service): one line, or
    None if ``exc`` is no outage."""
    outage = _outage(exc)
    if outage is None:
        return None
    return _outage_error(
        outage,
        "`reelforge runs --status running` lists the run and `reelforge retry RUN` resumes it",
    )


def _outage_error(outage: str, then: str, run_id: str | None = None) -> ServiceUnavailable:
    error = ServiceUnavailable(f"{outage}; then {then}", flow_run_id=run_id)
    error.outage = outage  # type: ignore[attr-defined]  # what a wrapping run reports again
    return error


def cancel_run(run_id: str | uuid.UUID) -> RunInfo:
    """Cancel a run: at once if it has not started, through its worker if it is running."""
    from prefect import get_client
    from prefect.states import Cancelled, Cancelling

    info = get_run(run_id)
    if info.state not in ACTIVE:
        raise InvalidInput(f"run {info.id} is {info.state_name}: there is nothing to cancel")
    running = info.state in ("RUNNING", "CANCELLING")
    if running and (info.deployment_id is None or _stalled(info)):
        # No worker watches an in-process run, nor one whose machine died: it is marked
        # Cancelled, and a process still running it finds out when it next reports a state.
        state = Cancelled(message="Cancelled with `reelforge cancel`")
    else:
        state = (Cancelling if running else Cancelled)(message="Cancelled with `reelforge cancel`")
    with get_client(sync_client=True) as client:
        client.set_flow_run_state(info.id, state, force=True)
    return get_run(info.id)


def run_campaign(spec: Any, *, executor: str = "local", dry_run: bool = False) -> Any:
    """Run a campaign flow in this process; its report, or one error with the run id."""
    import logging

    from flows.campaign import campaign_flow

    ready()
    if executor == "pool":
        from reelforge.ops.deployments import deploy_video

        deploy_video()
    from prefect import tags

    logging.getLogger("prefect").setLevel(logging.WARNING)
    with in_process(), outages_named(), tags(tenant_tag(spec.tenant)):
        state = campaign_flow(spec, executor=executor, dry_run=dry_run, return_state=True)
    run_id = str(state.state_details.flow_run_id)
    if not state.is_completed():
        raise_failure(state, run_id)
    return state.result().model_copy(update={"flow_run_id": uuid.UUID(run_id)})
