"""The dispatcher: queued jobs -> Prefect flow runs, and flow-run states -> jobs.

Two executors (``REELFORGE_API_EXECUTOR``):

* ``pool`` (production): a job becomes a flow run of a Prefect deployment (the video flow on
  the gpu pool, the campaign flow on the cpu pool) and ``reelforge worker`` processes run it,
  on any machine. The API process can stop at any time: the run lives in Prefect.
* ``local``: the API process runs the flow itself in a small thread pool (one API process
  only; on start, runs orphaned by a stopped API are marked crashed so they can be retried).

Retries reuse the orchestration's ``reelforge.ops.runs.retry_run``: the same flow-run id, so
finished stages come back cached and only what failed runs again.
"""

from __future__ import annotations

import logging
import threading
import time
import uuid
from concurrent.futures import Future, ThreadPoolExecutor
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import func, select

from db.models import Asset, Generated, JobRecord, JobStatus
from db.session import session_scope
from flows import load_flow
from reelforge.core.errors import InvalidInput, ReelForgeError
from reelforge.core.settings import Settings
from reelforge.ops.runs import outage_error
from reelforge.ops.webhooks import deliver_due

log = logging.getLogger("reelforge.api.dispatcher")

VIDEO_STAGES = (
    "inputs",
    "enhance",
    "text safety",
    "generate",
    "visual safety",
    "post-process",
    "rendition safety",
    "publish",
)  # fmt: skip  (flows/video.py STAGES)
WAITING_STATES = ("SCHEDULED", "PENDING", "PAUSED")
RUNNING_STATES = ("RUNNING", "CANCELLING")
CLAIM_BATCH = 20
SYNC_BATCH = 200
WEBHOOK_BATCH = 10
HEARTBEAT_WATCH_SECONDS = 30.0  # how often to look for worker runs whose heartbeats stopped
REVIEW_WATCH_SECONDS = 30.0  # how often to decide reviews whose time ran out


def one_line(text: str | None, limit: int = 500) -> str:
    return " ".join((text or "").split())[:limit]


class Dispatcher:
    def __init__(self, settings: Settings, poll_seconds: float = 0.5) -> None:
        self.settings = settings
        self.executor = settings.api_executor
        self.poll_seconds = poll_seconds
        self._pool: ThreadPoolExecutor | None = None
        if self.executor == "local":
            self._pool = ThreadPoolExecutor(
                max_workers=settings.api_local_concurrency, thread_name_prefix="reelforge-run"
            )
        self._inflight: dict[uuid.UUID, Future[Any]] = {}
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._prepared = False
        self._deployments: dict[str, uuid.UUID] = {}
        self._next_heartbeat_watch = 0.0
        self._next_review_watch = 0.0
        self._reviewing: threading.Thread | None = None
        self.last_error: str | None = None

    # --- lifecycle -------------------------------------------------------------------------

    def start(self) -> None:
        self._thread = threading.Thread(target=self._loop, name="reelforge-dispatcher", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=10)
        if self._pool is not None:
            self._pool.shutdown(wait=False, cancel_futures=True)

    def _loop(self) -> None:
        while not self._stop.is_set():
            try:
                self.tick()
                self.last_error = None
            except Exception as exc:  # keep dispatching; say what went wrong in one line
                message = one_line(f"{type(exc).__name__}: {exc}", 300)
                if message != self.last_error:
                    log.warning("dispatcher: %s", message)
                self.last_error = message
            self._stop.wait(self.poll_seconds)

    def tick(self) -> None:
        """One round: hand waiting jobs to Prefect, then bring job rows up to date."""
        self._prepare()
        self._claim()
        self._watch_heartbeats()
        self._watch_reviews()
        self._sync()
        self._deliver_webhooks()

    def _watch_heartbeats(self) -> None:
        """Every HEARTBEAT_WATCH_SECONDS: worker runs whose heartbeats stopped (their machine
        died) are marked Crashed, so their jobs fail and can be retried."""
        now = time.monotonic()
        if now < self._next_heartbeat_watch:
            return
        self._next_heartbeat_watch = now + HEARTBEAT_WATCH_SECONDS
        from reelforge.ops.runs import mark_stalled, stalled_runs

        timeout = self.settings.heartbeat_timeout_seconds
        try:
            for run in stalled_runs(timeout):
                log.warning("dispatcher: run %s sends no heartbeats: marked Crashed", run.id)
                mark_stalled(run.id, timeout, "the API's dispatcher")
        except Exception as exc:  # the next watch tries again; dispatching goes on
            log.warning("heartbeat watch: %s", one_line(f"{type(exc).__name__}: {exc}", 300))

    def _watch_reviews(self) -> None:
        """Every REVIEW_WATCH_SECONDS: reviews whose time ran out are decided (rejected, or
        their best take approved and published: reelforge/ops/reviews.py), in a thread of
        their own, so a publishing run never holds up dispatching."""
        now = time.monotonic()
        if now < self._next_review_watch or (self._reviewing and self._reviewing.is_alive()):
            return
        self._next_review_watch = now + REVIEW_WATCH_SECONDS
        self._reviewing = threading.Thread(
            target=_expire_reviews, name="reelforge-review-timeouts", daemon=True
        )
        self._reviewing.start()

    def _deliver_webhooks(self) -> None:
        """Drain due webhook events (a few per round: a slow endpoint must not hold up
        dispatching); failures stay in the outbox with their backoff, never stop the loop."""
        try:
            deliver_due(WEBHOOK_BATCH, self.settings)
        except Exception as exc:
            log.warning("webhook delivery: %s", one_line(f"{type(exc).__name__}: {exc}", 300))

    # --- preparing Prefect -------------------------------------------------------------------

    def _prepare(self) -> None:
        if self._prepared:
            return
        from reelforge.core.orchestration import ready

        ready(self.settings)
        logging.getLogger("prefect").setLevel(logging.WARNING)
        if self.executor == "local":
            self._recover_orphans()
        self._prepared = True

    def _deployment(self, kind: str) -> uuid.UUID:
        if kind not in self._deployments:
            if kind == "video":
                from reelforge.ops.deployments import deploy_video

                self._deployments[kind] = deploy_video().id
            elif kind == "ad":
                from reelforge.ops.deployments import deploy_ad

                self._deployments[kind] = deploy_ad()
            elif kind == "versions":
                from reelforge.ops.deployments import deploy_versions

                self._deployments[kind] = deploy_versions()
            else:
                from prefect.deployments.runner import EntrypointType

                from flows.campaign import campaign_flow
                from reelforge.core.orchestration import ensure_work_pool
                from reelforge.ops.deployments import deploy_video

                deploy_video()  # its videos run on the gpu pool
                ensure_work_pool(self.settings.cpu_pool)
                deployment = campaign_flow.to_deployment(
                    name=f"api-{self.settings.cpu_pool}",
                    work_pool_name=self.settings.cpu_pool,
                    entrypoint_type=EntrypointType.MODULE_PATH,
                    description="Campaigns submitted over the HTTP API.",
                    tags=["reelforge", "api"],
                )
                self._deployments[kind] = deployment.apply()
        return self._deployments[kind]

    def _recover_orphans(self) -> None:
        """Local runs of a previous API process cannot finish: mark them crashed (retryable)."""
        from prefect import get_client
        from prefect.states import Crashed

        with session_scope() as session:
            orphans = session.scalars(
                select(JobRecord).where(
                    JobRecord.executor == "local",
                    JobRecord.status.in_((JobStatus.submitted, JobStatus.running)),
                    JobRecord.flow_run_id.is_not(None),
                )
            ).all()
            if not orphans:
                return
            with get_client(sync_client=True) as client:
                for job in orphans:
                    message = "the API process stopped while this job ran: retry it"
                    try:
                        client.set_flow_run_state(
                            job.flow_run_id, Crashed(message=message), force=True
                        )
                    except Exception as exc:  # the run may be gone: the row still fails
                        log.warning(
                            "dispatcher: could not mark run %s crashed: %s", job.flow_run_id, exc
                        )
                    _finish(job, JobStatus.failed, error=message)

    # --- handing jobs to Prefect ---------------------------------------------------------------

    def _flow_and_parameters(self, job: JobRecord) -> tuple[Any, dict[str, Any]]:
        if _flow_name(job) == "versions":
            return load_flow("versions"), {"job": job.request, "versions": job.versions}
        if job.kind == "video":
            return load_flow("video"), {"job": job.request}
        if job.kind == "ad":
            return load_flow("ad"), {"ad": job.request}
        return load_flow("campaign"), {
            "spec": job.request,
            "executor": self.executor,
            "dry_run": False,
        }

    def _claim(self) -> None:
        if self.executor == "local":
            capacity = self.settings.api_local_concurrency - sum(
                not f.done() for f in self._inflight.values()
            )
        else:
            capacity = CLAIM_BATCH
        if capacity <= 0:
            return
        with session_scope() as session:
            for job in _next_jobs(session, capacity):
                try:
                    if job.status == JobStatus.retrying and job.flow_run_id is not None:
                        self._retry(job)
                    else:
                        self._submit(job)
                except InvalidInput as exc:  # cannot ever run (or be retried): say why
                    _finish(job, JobStatus.failed, error=one_line(str(exc)))
                job.updated_at = datetime.now(UTC)

    def _submit(self, job: JobRecord) -> None:
        from prefect import get_client

        flow, parameters = self._flow_and_parameters(job)
        tenant = (job.request.get("tenant") if isinstance(job.request, dict) else None) or "?"
        tags = ["reelforge", "api", f"tenant:{tenant}"]
        if self.executor == "pool":
            deployment_id = self._deployment(_flow_name(job))
            with get_client(sync_client=True) as client:
                run = client.create_flow_run_from_deployment(
                    deployment_id, parameters=parameters, tags=tags
                )
        else:
            with get_client(sync_client=True) as client:
                run = client.create_flow_run(flow, parameters=parameters, tags=tags)
            self._run_local(job.id, _run_flow, flow, run)
        job.flow_run_id = run.id
        job.status = JobStatus.submitted
        job.stages_total = len(VIDEO_STAGES) if job.kind == "video" else 100
        job.attempts += 1

    def _retry(self, job: JobRecord) -> None:
        from reelforge.ops.runs import retry_run

        if self.executor == "pool" or job.executor == "pool":
            retry_run(job.flow_run_id, wait=False)  # a worker of the run's pool picks it up
        else:
            from reelforge.ops.runs import get_run

            info = get_run(job.flow_run_id)  # refuse at once what retry_run would refuse
            if info.state not in ("FAILED", "CRASHED", "CANCELLED"):
                raise InvalidInput(f"run {info.id} is {info.state_name}: it cannot be retried")
            self._run_local(job.id, _retry_local, job.flow_run_id)
        job.status = JobStatus.submitted
        job.attempts += 1

    def _run_local(self, job_id: uuid.UUID, fn: Any, *args: Any) -> None:
        assert self._pool is not None
        self._inflight[job_id] = self._pool.submit(fn, *args)

    # --- bringing jobs up to date ----------------------------------------------------------------

    def _sync(self) -> None:
        from prefect import get_client
        from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterId

        with session_scope() as session:
            jobs = session.scalars(
                select(JobRecord)
                .where(
                    JobRecord.status.in_((JobStatus.submitted, JobStatus.running)),
                    JobRecord.flow_run_id.is_not(None),
                )
                .order_by(JobRecord.updated_at)
                .limit(SYNC_BATCH)
                .with_for_update(skip_locked=True)
            ).all()
            if jobs:
                with get_client(sync_client=True) as client:
                    found = client.read_flow_runs(
                        flow_run_filter=FlowRunFilter(
                            id=FlowRunFilterId(any_=[j.flow_run_id for j in jobs])
                        ),
                        limit=len(jobs),
                    )
                    runs = {run.id: run for run in found}
                    progress = self._progress(client, jobs)
                    for job in jobs:
                        run = runs.get(job.flow_run_id)
                        if run is not None and run.state is not None:
                            self._apply(session, job, run, progress.get(job.flow_run_id))
        for job_id in [k for k, f in self._inflight.items() if f.done()]:
            self._inflight.pop(job_id, None)

    def _progress(self, client: Any, jobs: list[JobRecord]) -> dict[uuid.UUID, float]:
        from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterKey

        keys = {f"video-{j.flow_run_id}": j.flow_run_id for j in jobs if j.kind == "video"}
        if not keys:
            return {}
        try:
            artifacts = client.read_artifacts(
                artifact_filter=ArtifactFilter(key=ArtifactFilterKey(any_=list(keys)))
            )
        except Exception:  # progress is a nicety: never fail a sync for it
            return {}
        out: dict[uuid.UUID, float] = {}
        for artifact in artifacts:
            if artifact.key in keys and isinstance(artifact.data, int | float):
                out[keys[artifact.key]] = max(float(artifact.data), out.get(keys[artifact.key], 0))
        return out

    def _apply(self, session: Any, job: JobRecord, run: Any, percent: float | None) -> None:
        state = run.state.type.value
        local_busy = job.id in self._inflight and not self._inflight[job.id].done()
        if job.kind == "video" and percent is not None:
            total = len(VIDEO_STAGES)
            done = min(total, round(percent * total / 100.0))
            job.stages_total, job.stages_done = total, done
            job.stage = VIDEO_STAGES[done] if done < total else None
        if state in WAITING_STATES or (local_busy and state not in RUNNING_STATES):
            status = JobStatus.submitted
        elif state in RUNNING_STATES:
            status = JobStatus.running
        elif state == "COMPLETED":
            _finish(job, JobStatus.completed, result=_result_of(session, job, run))
            job.stages_done, job.stage = job.stages_total, None
            return
        elif state in ("FAILED", "CRASHED"):
            _finish(job, JobStatus.failed, error=failure_of(run))
            return
        elif state == "CANCELLED":
            _finish(job, JobStatus.cancelled, error=one_line(run.state.message) or "cancelled")
            return
        else:
            return
        if status != job.status:
            job.status = status
            job.updated_at = datetime.now(UTC)


def _expire_reviews() -> None:
    from reelforge.ops.reviews import expire_reviews

    try:
        for decided in expire_reviews():
            log.info("dispatcher: review %s timed out: %s", decided["review_id"], decided["status"])
    except Exception as exc:  # the next watch tries again
        log.warning("review watch: %s", one_line(f"{type(exc).__name__}: {exc}", 300))


def failure_of(run: Any) -> str:
    """A failed run's error in one line. Prefect's state message carries the raw client error
    of an outage (``MaxRetryError: HTTPConnectionPool(...)`` when S3 stopped mid-stage): the
    run's own exception, read back, names the service and the fix instead."""
    try:
        run.state.result(raise_on_failure=True)
    except Exception as exc:
        named = outage_error(exc)
        if named is not None:
            return one_line(str(named))
    return one_line(run.state.message) or run.state.type.value.lower()


def _next_jobs(session: Any, capacity: int) -> list[JobRecord]:
    """Up to ``capacity`` waiting jobs, taken round robin across tenants (each tenant's
    oldest first, then each one's second oldest...), so one tenant's backlog never holds
    up another's next job; rows another dispatcher holds are skipped."""
    waiting = JobRecord.status.in_((JobStatus.queued, JobStatus.retrying))
    turn = (
        func.row_number()
        .over(partition_by=JobRecord.tenant_id, order_by=(JobRecord.created_at, JobRecord.id))
        .label("turn")
    )
    ranked = select(JobRecord.id, JobRecord.created_at, turn).where(waiting).subquery()
    order = {
        job_id: position
        for position, job_id in enumerate(
            session.scalars(
                select(ranked.c.id)
                .order_by(ranked.c.turn, ranked.c.created_at, ranked.c.id)
                .limit(capacity * 2)  # room for rows skipped as locked
            )
        )
    }
    if not order:
        return []
    jobs = session.scalars(
        select(JobRecord)
        .where(JobRecord.id.in_(list(order)), waiting)
        .with_for_update(skip_locked=True)
    ).all()
    return sorted(jobs, key=lambda job: order[job.id])[:capacity]


def _flow_name(job: JobRecord) -> str:
    """The flow a job runs: its kind's, or the versions flow for a video held for review."""
    return "versions" if job.kind == "video" and job.review else job.kind


def _finish(
    job: JobRecord, status: JobStatus, *, error: str | None = None, result: Any = None
) -> None:
    now = datetime.now(UTC)
    job.status = status
    job.error = error
    if result is not None:
        job.result = result
    job.finished_at = now
    job.updated_at = now


def _run_flow(flow: Any, run: Any) -> Any:
    from prefect.flow_engine import run_flow

    return run_flow(flow, flow_run=run, parameters=run.parameters, return_type="state")


def _retry_local(flow_run_id: uuid.UUID) -> Any:
    from reelforge.ops.runs import retry_run

    try:
        return retry_run(flow_run_id, wait=True)
    except ReelForgeError:
        return None  # the run's own state says how it ended; the sync reads it


def _result_of(session: Any, job: JobRecord, run: Any) -> dict[str, Any]:
    """The flow's return value (persisted to S3), or for videos what lineage says."""
    try:
        value = run.state.result(raise_on_failure=True)
        if hasattr(value, "model_dump"):
            return value.model_dump(mode="json")
    except Exception as exc:
        log.info("dispatcher: result of run %s unreadable: %s", run.id, one_line(str(exc), 200))
    if job.kind == "video":
        from db.models import Activity

        asset = session.scalars(
            select(Asset)
            .join(Generated, Generated.asset_id == Asset.id)
            .join(Activity, Activity.id == Generated.activity_id)
            .where(
                Activity.flow_run_id == run.id,
                Asset.kind == "rendition",
                Asset.published_uri.is_not(None),
            )
            .limit(1)
        ).first()
        if asset is not None:
            return {"video": {"asset_id": str(asset.id), "uri": asset.uri, "sha256": asset.sha256}}
    return {}
