"""The ops view: every run of a tenant however it was started (an API job, `reelforge
generate`, `campaign run`, a schedule, an event), found by the ``tenant:<slug>`` tag every
flow run carries, with what lineage recorded about it; retry and cancel for any of them."""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from itertools import pairwise
from typing import Any

from sqlalchemy import or_, select, update
from sqlalchemy.orm import Session

from db import lineage as graph
from db.models import (
    Activity,
    ActivityStatus,
    Asset,
    AssetKind,
    Campaign,
    Generated,
    JobRecord,
    JobStatus,
)
from reelforge.api import service, store
from reelforge.api.dispatcher import VIDEO_STAGES
from reelforge.api.keys import Principal, key_labels
from reelforge.api.service import rendition_asset_id
from reelforge.core.errors import InvalidInput, ReelForgeError
from reelforge.core.orchestration import process_gone
from reelforge.core.storage import ObjectStore
from reelforge.ops import runs as runs_ops
from reelforge.ops.runs import RunInfo

log = logging.getLogger("reelforge.api")


@dataclass
class RunRow:
    """One run as the dashboard lists it: an API job, or a flow run started elsewhere (the
    CLI, a schedule, an event), found by its ``tenant:<slug>`` tag."""

    id: uuid.UUID  # the job's id, or the flow run's where there is no job
    flow_run_id: uuid.UUID | None
    kind: str
    status: str
    origin: str  # API, CLI, schedule or event
    subject: str
    created_at: datetime | None
    duration_s: float | None = None
    stages_done: int = 0
    stages_total: int = 0
    stage: str | None = None
    failed_stage: str | None = None
    error: str | None = None
    asset_id: uuid.UUID | None = None
    can_retry: bool = False
    can_cancel: bool = False


def _origin(info: RunInfo) -> str:
    if "api" in info.tags:
        return "API"
    if info.deployment_id is None:
        return "CLI"
    return "schedule" if "auto-scheduled" in info.tags else "event"


def _failures(session: Session, principal: Principal, run_ids: list[uuid.UUID]) -> dict[uuid.UUID, Activity]:  # fmt: skip
    """The latest failed stage run of each flow run (recorded by the stage's failure hook)."""
    rows = session.scalars(
        select(Activity)
        .where(
            Activity.tenant_id == principal.tenant_id,
            Activity.flow_run_id.in_(run_ids),
            Activity.status == ActivityStatus.failed,
        )
        .order_by(Activity.started_at)
    )
    return {a.flow_run_id: a for a in rows if a.flow_run_id is not None}


def _published(session: Session, principal: Principal, run_ids: list[uuid.UUID]) -> dict[uuid.UUID, uuid.UUID]:  # fmt: skip
    """The published rendition each flow run made."""
    rows = session.execute(
        select(Activity.flow_run_id, Asset.id)
        .join(Generated, Generated.activity_id == Activity.id)
        .join(Asset, Asset.id == Generated.asset_id)
        .where(
            Activity.tenant_id == principal.tenant_id,
            Activity.flow_run_id.in_(run_ids),
            Asset.kind == AssetKind.rendition,
            Asset.published_uri.is_not(None),
        )
    )
    return {run_id: asset_id for run_id, asset_id in rows if run_id is not None}


def tenant_runs(session: Session, principal: Principal, limit: int = 50) -> list[RunRow]:
    """The tenant's runs, newest first: its API jobs and every flow run tagged with it, with
    stage progress, duration, the failed stage and its error from lineage. Without Prefect
    (down) the jobs still show."""
    jobs = store.list_jobs(session, principal, limit=limit)
    try:
        runs = runs_ops.list_runs(tenant=principal.tenant, top_level=True, limit=limit)
        progress = runs_ops.progress_of([r.id for r in runs])
    except ReelForgeError:
        runs, progress = [], {}
    by_run = {r.id: r for r in runs}
    run_ids = [*by_run, *(j.flow_run_id for j in jobs if j.flow_run_id and j.flow_run_id not in by_run)]  # fmt: skip
    failures = _failures(session, principal, run_ids)
    published = _published(session, principal, run_ids)
    rows: list[RunRow] = []
    for job in jobs:
        info = by_run.pop(job.flow_run_id, None) if job.flow_run_id else None
        request = job.request or {}
        failed = failures.get(job.flow_run_id) if job.flow_run_id else None
        rows.append(
            RunRow(
                id=job.id,
                flow_run_id=job.flow_run_id,
                kind=job.kind,
                status=job.status.value,
                origin="API",
                subject=str(request.get("prompt") if job.kind == "video" else request.get("name")),
                created_at=job.created_at,
                duration_s=_duration(info),
                stages_done=job.stages_done,
                stages_total=job.stages_total,
                stage=job.stage,
                failed_stage=failed.stage if failed and job.status == JobStatus.failed else None,
                error=job.error,
                asset_id=rendition_asset_id(job) or published.get(job.flow_run_id),  # type: ignore[arg-type]
                can_retry=job.status in (JobStatus.failed, JobStatus.cancelled),
                can_cancel=job.status in store.NOT_STARTED
                or (
                    job.flow_run_id is not None
                    and job.status in (JobStatus.submitted, JobStatus.running)
                ),
            )
        )
    for info in by_run.values():
        percent = progress.get(info.id)
        total = len(VIDEO_STAGES) if info.flow == "video" else 100
        done = total if info.state == "COMPLETED" else round((percent or 0) * total / 100)
        failed = failures.get(info.id) if info.state in runs_ops.RETRYABLE else None
        rows.append(
            RunRow(
                id=info.id,
                flow_run_id=info.id,
                kind=info.flow,
                status=info.state_name.lower(),
                origin=_origin(info),
                subject=info.subject or "",
                created_at=info.created,
                duration_s=_duration(info),
                stages_done=done,
                stages_total=total,
                stage=VIDEO_STAGES[done] if info.flow == "video" and done < total else None,
                failed_stage=failed.stage if failed else None,
                error=(failed.error if failed else None)
                or (info.message if info.state in runs_ops.RETRYABLE else None),
                asset_id=published.get(info.id),
                can_retry=info.state in runs_ops.RETRYABLE,
                can_cancel=info.state in runs_ops.ACTIVE,
            )
        )
    epoch = datetime.min.replace(tzinfo=UTC)
    rows.sort(key=lambda r: r.created_at or epoch, reverse=True)
    return rows[:limit]


def _duration(info: RunInfo | None) -> float | None:
    if info is None or info.start_time is None:
        return None
    if info.end_time is not None:
        return round((info.end_time - info.start_time).total_seconds(), 1)
    return round((datetime.now(UTC) - info.start_time).total_seconds(), 1)


def tenant_run(principal: Principal, run_id: uuid.UUID) -> RunInfo | None:
    """A flow run, if it is the caller's (by its tenant tag): None otherwise, or if unknown."""
    try:
        info = runs_ops.get_run(run_id)
    except InvalidInput:
        return None
    return info if info.tenant == principal.tenant else None


def job_of_run(session: Session, principal: Principal, run_id: uuid.UUID) -> JobRecord | None:
    """The caller's API job with this id or flow-run id."""
    return session.scalars(
        select(JobRecord)
        .where(
            JobRecord.tenant_id == principal.tenant_id,
            or_(JobRecord.id == run_id, JobRecord.flow_run_id == run_id),
        )
        .limit(1)
    ).one_or_none()


def cancel_job(session: Session, job: JobRecord) -> None:
    """Cancel an API job: one no flow run works on yet (queued, or waiting for its retry) is
    marked cancelled at once by a conditional update, which waits for the row lock the
    dispatcher takes jobs with and then checks the status again, so the job is either
    cancelled here or dispatched, never both; a dispatched one has its flow run cancelled
    (the dispatcher then marks the job)."""
    now = datetime.now(UTC)
    cancelled = session.execute(
        update(JobRecord)
        .where(JobRecord.id == job.id, JobRecord.status.in_(store.NOT_STARTED))
        .values(
            status=JobStatus.cancelled,
            error="cancelled while waiting to start",
            finished_at=now,
            updated_at=now,
        )
    )
    session.refresh(job)
    if cancelled.rowcount:
        return
    if job.flow_run_id is None or job.status not in (JobStatus.submitted, JobStatus.running):
        raise InvalidInput(f"job {job.id} is {job.status.value}: there is nothing to cancel")
    runs_ops.cancel_run(job.flow_run_id)


def retry_tenant_run(
    principal: Principal, run_id: uuid.UUID, background: Callable[[uuid.UUID], object]
) -> RunInfo | None:
    """Retry a run that no API job owns (CLI, schedule, event), if it is the caller's.

    A worker's run is rescheduled for its pool; an in-process run has no worker, so
    ``background`` runs it in this process (as the dispatcher's local retries do)."""
    info = tenant_run(principal, run_id)
    if info is None:
        return None
    if info.deployment_id is not None:
        return runs_ops.retry_run(info.id, wait=False)
    gone = info.state in runs_ops.ACTIVE and process_gone(info.process)  # retry marks it crashed
    if info.state not in runs_ops.RETRYABLE and not gone:
        raise InvalidInput(
            f"run {info.id} is {info.state_name}: only failed, crashed or cancelled runs can be "
            "retried"
        )
    background(info.id)
    return info


def retry_here(run_id: uuid.UUID) -> None:
    """Run an in-process run again in this process; how it ends is in its own state."""
    try:
        runs_ops.retry_run(run_id, wait=True)
    except ReelForgeError as exc:
        log.info("retry of run %s ended: %s", run_id, " ".join(str(exc).split())[:300])


@dataclass
class VideoCard:
    """A published video as the dashboard shows it, with who made it."""

    id: uuid.UUID  # the API job's id, or the rendition's asset id where no job made it
    asset_id: uuid.UUID
    flow_run_id: uuid.UUID | None
    made_by: str  # "API key <name> (job <id>)", "campaign <name>" or "CLI"
    prompt: str
    url: str
    thumbnail_url: str | None
    width: int | None
    height: int | None
    duration: float | None
    verdicts: list[Any]
    # an ad's shots: (number, the middle of the shot in seconds), for the strip of thumbnails
    shots: list[tuple[int, float]] = field(default_factory=list)


def ad_shots(media: dict[str, Any]) -> list[tuple[int, float]]:
    """Where an ad's shots are (its rendition's ``starts``, the end card last): each shot's
    number and middle, a frame the dashboard shows as the shot's thumbnail."""
    starts = media.get("starts") if isinstance(media.get("shots"), list) else None
    if not isinstance(starts, list) or len(starts) < 2:
        return []
    try:
        times = [float(t) for t in starts]
    except (TypeError, ValueError):
        return []
    return [(i + 1, round((a + b) / 2, 3)) for i, (a, b) in enumerate(pairwise(times))]


def tenant_videos(
    session: Session, principal: Principal, objects: ObjectStore, limit: int = 24
) -> list[VideoCard]:
    """The tenant's published videos from lineage (API, CLI, campaigns, schedules alike)."""
    videos = graph.published_videos(session, principal.tenant_id, limit=limit)
    run_ids = [v.flow_run_id for v in videos if v.flow_run_id]
    asset_ids = [str(v.asset_id) for v in videos]
    jobs: dict[uuid.UUID, JobRecord] = {}  # by the rendition's asset id
    for job in session.scalars(
        select(JobRecord).where(
            JobRecord.tenant_id == principal.tenant_id,
            JobRecord.kind == "video",
            or_(
                JobRecord.flow_run_id.in_(run_ids),
                JobRecord.result["video"]["asset_id"].astext.in_(asset_ids),
            ),
        )
    ):
        made = rendition_asset_id(job)
        by_run = [v.asset_id for v in videos if job.flow_run_id and v.flow_run_id == job.flow_run_id]  # fmt: skip
        for asset_id in (made, *by_run):
            if asset_id is not None:
                jobs[asset_id] = job
    campaign_ids = {v.campaign_id for v in videos if v.campaign_id}
    campaigns = {
        cid: name
        for cid, name in session.execute(
            select(Campaign.id, Campaign.name).where(Campaign.id.in_(campaign_ids))
        )
    }
    labels = key_labels(session, [job.key_id for job in jobs.values() if job.key_id])
    cards = []
    for video in videos:
        job = jobs.get(video.asset_id)
        if job is not None:
            key = labels.get(job.key_id) if job.key_id else None
            made_by = f"API key {key} (job {job.id})" if key else f"API job {job.id}"
        elif video.campaign_id in campaigns:
            made_by = f"campaign {campaigns[video.campaign_id]}"
        else:
            made_by = "CLI"
        thumb = service.thumbnail_of(session, principal, video.asset_id)
        thumb_url = None
        if thumb is not None:  # the tenant's reviewers may see a private thumbnail too
            thumb_url = objects.presign(
                thumb.published_uri or thumb.uri, internal=not thumb.published_uri
            )
        cards.append(
            VideoCard(
                id=job.id if job is not None else video.asset_id,
                asset_id=video.asset_id,
                flow_run_id=video.flow_run_id,
                made_by=made_by,
                prompt=str((job.request or {}).get("prompt", "")) if job is not None else "",
                url=objects.presign(video.published_uri),
                thumbnail_url=thumb_url,
                width=_number(int, video.media.get("width")),
                height=_number(int, video.media.get("height")),
                duration=_number(float, video.media.get("duration")),
                verdicts=service.verdicts_for(session, principal, video.asset_id),
                shots=ad_shots(video.media or {}),
            )
        )
    return cards


def _number(kind: Callable[[Any], Any], value: Any) -> Any:
    try:
        return kind(value)
    except (TypeError, ValueError):
        return None


def run_activities(session: Session, principal: Principal, flow_run_id: uuid.UUID) -> list[Activity]:  # fmt: skip
    """The stage runs lineage recorded for a flow run (succeeded and failed), in order."""
    return list(
        session.scalars(
            select(Activity)
            .where(Activity.tenant_id == principal.tenant_id, Activity.flow_run_id == flow_run_id)
            .order_by(Activity.started_at, Activity.id)
        )
    )
