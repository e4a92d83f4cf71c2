"""The job table behind the API: accept (with backpressure), read and list, always per tenant.

Accepting a job is one short transaction (a per-tenant advisory lock, a count, an insert),
so a submission never waits for Prefect; the dispatcher hands queued jobs to Prefect.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import func, or_, select, text
from sqlalchemy.orm import Session

from db.models import JobRecord, JobStatus
from reelforge.api.keys import Principal
from reelforge.core.errors import InvalidInput, ReelForgeError

WAITING = (JobStatus.queued, JobStatus.retrying, JobStatus.submitted)
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


def enqueue(
    session: Session,
    principal: Principal,
    *,
    kind: str,
    requests: Sequence[dict[str, Any]],
    executor: str,
    limit: int,
    retry_after: int,
    campaign_id: uuid.UUID | None = None,
) -> list[JobRecord]:
    """Accept all of ``requests`` or none: past the tenant's bound of waiting jobs, 429."""
    for request in requests:
        check_storable(request)
    # Serialises submissions of one tenant only, so the bound is exact under concurrency.
    session.execute(
        text("SELECT pg_advisory_xact_lock(hashtextextended(:key, 0))"),
        {"key": f"reelforge-api-queue:{principal.tenant_id}"},
    )
    waiting = session.scalar(
        select(func.count())
        .select_from(JobRecord)
        .where(JobRecord.tenant_id == principal.tenant_id, JobRecord.status.in_(WAITING))
    )
    if (waiting or 0) + len(requests) > limit:
        raise Backpressure(
            f"tenant {principal.tenant} has {waiting} waiting jobs (limit {limit}): "
            f"retry after {retry_after}s",
            retry_after,
        )
    rows = [
        JobRecord(
            id=uuid.uuid4(),
            tenant_id=principal.tenant_id,
            kind=kind,
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
