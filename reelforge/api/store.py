"""The job table behind the API: accept (with backpressure), read and list, always per tenant.

Accepting a job is one short transaction (a per-tenant advisory lock, a count of the tenant's
waiting videos, an insert), so a submission never waits for Prefect; the dispatcher hands
queued jobs to Prefect.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import and_, case, func, or_, select, text
from sqlalchemy.orm import Session

from db.models import JobRecord, JobStatus
from reelforge.api.keys import Principal
from reelforge.core.errors import InvalidInput, ReelForgeError

NOT_STARTED = (JobStatus.queued, JobStatus.retrying)  # no flow run works on these
WAITING = (*NOT_STARTED, JobStatus.submitted)
ACTIVE = (*WAITING, JobStatus.running)
RETRYABLE = (JobStatus.failed, JobStatus.cancelled)


class Backpressure(ReelForgeError):
    """The tenant has too many waiting jobs."""

    def __init__(self, message: str, retry_after: int) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class Conflict(ReelForgeError):
    """The job is not in a state that allows this."""


def check_storable(payload: Any) -> None:
    """PostgreSQL refuses NUL characters and lone surrogates in JSONB: refuse them here."""
    try:
        encoded = json.dumps(payload, ensure_ascii=False, default=str).encode("utf-8")
    except (UnicodeEncodeError, ValueError):
        raise InvalidInput("request contains text that is not valid Unicode") from None
    if b"\\u0000" in encoded or b"\x00" in encoded:
        raise InvalidInput("request contains a NUL character")


def videos_waiting(session: Session, principal: Principal) -> int:
    """The tenant's videos not yet made: each waiting video job counts 1, each campaign that
    has not finished counts its products x renditions (its videos wait inside its run)."""
    videos = case(
        (
            JobRecord.kind == "campaign",
            func.coalesce(
                func.jsonb_array_length(JobRecord.request["products"])
                * func.jsonb_array_length(JobRecord.request["renditions"]),
                1,
            ),
        ),
        else_=1,
    )
    counted = or_(
        JobRecord.status.in_(WAITING),
        and_(JobRecord.kind == "campaign", JobRecord.status.in_(ACTIVE)),
    )
    total = session.scalar(
        select(func.coalesce(func.sum(videos), 0)).where(
            JobRecord.tenant_id == principal.tenant_id, counted
        )
    )
    return int(total or 0)


def admit(
    session: Session, principal: Principal, *, videos: int, limit: int, retry_after: int
) -> None:
    """Room for ``videos`` more of the tenant's videos, or 429 (``Backpressure``); a request
    larger than the limit itself can never fit: 422.

    Takes a per-tenant advisory lock held until the transaction ends, so the bound is exact
    under concurrency: call it before writing anything the submission needs.
    """
    if videos > limit:
        raise InvalidInput(
            f"this request makes {videos} videos, more than the {limit} a tenant may have "
            "waiting (REELFORGE_API_MAX_QUEUED): split it into smaller requests"
        )
    session.execute(
        text("SELECT pg_advisory_xact_lock(hashtextextended(:key, 0))"),
        {"key": f"reelforge-api-queue:{principal.tenant_id}"},
    )
    waiting = videos_waiting(session, principal)
    if waiting + videos > limit:
        raise Backpressure(
            f"tenant {principal.tenant} has {waiting} videos in waiting jobs (limit {limit}): "
            f"retry after {retry_after}s",
            retry_after,
        )


def insert_jobs(
    session: Session,
    principal: Principal,
    *,
    kind: str,
    requests: Sequence[dict[str, Any]],
    executor: str,
    campaign_id: uuid.UUID | None = None,
    review: bool = False,
    versions: int = 1,
) -> list[JobRecord]:
    """The job rows of an admitted submission (see ``admit``), in the caller's transaction."""
    rows = [
        JobRecord(
            id=uuid.uuid4(),
            tenant_id=principal.tenant_id,
            key_id=principal.key_id,
            kind=kind,
            review=review,
            versions=versions,
            status=JobStatus.queued,
            executor=executor,
            request=request,
            campaign_id=campaign_id,
            stages_done=0,
            stages_total=0,
            attempts=0,
        )
        for request in requests
    ]
    session.add_all(rows)
    session.flush()
    return rows


def enqueue(
    session: Session,
    principal: Principal,
    *,
    requests: Sequence[dict[str, Any]],
    executor: str,
    limit: int,
    retry_after: int,
    campaign_id: uuid.UUID | None = None,
    review: bool = False,
    versions: int = 1,
) -> list[JobRecord]:
    """Accept all of the video ``requests`` or none: past the tenant's bound, 429
    (``review``, ``versions``: each is held for a review with that many takes)."""
    for request in requests:
        check_storable(request)
    admit(session, principal, videos=len(requests), limit=limit, retry_after=retry_after)
    return insert_jobs(
        session,
        principal,
        kind="video",
        requests=requests,
        executor=executor,
        campaign_id=campaign_id,
        review=review,
        versions=versions,
    )


def get_job(
    session: Session, principal: Principal, job_id: uuid.UUID, kind: str | None = None
) -> JobRecord | None:
    """The caller's job by its id (None for another tenant's: callers answer 404)."""
    query = select(JobRecord).where(
        JobRecord.id == job_id, JobRecord.tenant_id == principal.tenant_id
    )
    if kind is not None:
        query = query.where(JobRecord.kind == kind)
    return session.scalars(query).one_or_none()


def list_jobs(
    session: Session,
    principal: Principal,
    *,
    kind: str | None = None,
    status: JobStatus | None = None,
    campaign_id: uuid.UUID | None = None,
    limit: int = 50,
    offset: int = 0,
) -> list[JobRecord]:
    query = select(JobRecord).where(JobRecord.tenant_id == principal.tenant_id)
    if kind is not None:
        query = query.where(JobRecord.kind == kind)
    if status is not None:
        query = query.where(JobRecord.status == status)
    if campaign_id is not None:
        query = query.where(JobRecord.campaign_id == campaign_id)
    query = query.order_by(JobRecord.created_at.desc(), JobRecord.id).limit(limit).offset(offset)
    return list(session.scalars(query))


def request_retry(session: Session, principal: Principal, run_id: uuid.UUID) -> JobRecord | None:
    """Mark a failed job for retry (the dispatcher resumes its flow run under the same id)."""
    job = session.scalars(
        select(JobRecord)
        .where(
            JobRecord.tenant_id == principal.tenant_id,
            or_(JobRecord.flow_run_id == run_id, JobRecord.id == run_id),
        )
        .limit(1)
        .with_for_update()
    ).one_or_none()
    if job is None:
        return None
    if job.status not in RETRYABLE:
        raise Conflict(
            f"job {job.id} is {job.status.value}: only failed or cancelled jobs can be retried"
        )
    job.status = JobStatus.queued if job.flow_run_id is None else JobStatus.retrying
    job.error = None
    job.finished_at = None
    job.updated_at = datetime.now(UTC)
    session.flush()
    return job
