"""The stage context of a job: its tenant, campaign and audience rows (created on first use)."""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy import select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.orm import Session

from db import lineage
from db.models import Audience, Campaign
from db.session import session_scope
from reelforge.core.jobs import VideoJob
from tasks.record import StageContext


def _campaign_id(session: Session, tenant_id: uuid.UUID, name: str) -> uuid.UUID:
    session.execute(
        insert(Campaign)
        .values(tenant_id=tenant_id, name=name)
        .on_conflict_do_nothing(index_elements=["tenant_id", "name"])
    )
    query = select(Campaign.id).where(Campaign.tenant_id == tenant_id, Campaign.name == name)
    return session.scalars(query).one()


def _audience_id(session: Session, tenant_id: uuid.UUID, external_id: str) -> uuid.UUID:
    # Only the caller's id: names and other personal fields stay out of lineage.
    session.execute(
        insert(Audience)
        .values(tenant_id=tenant_id, external_id=external_id)
        .on_conflict_do_nothing(index_elements=["tenant_id", "external_id"])
    )
    query = select(Audience.id).where(
        Audience.tenant_id == tenant_id, Audience.external_id == external_id
    )
    return session.scalars(query).one()


def job_context(job: VideoJob, *, flow_run_id: uuid.UUID | str | None = None) -> StageContext:
    """Tenant, campaign and audience ids for a job's lineage."""
    with session_scope() as session:
        tenant = lineage.ensure_tenant(session, job.tenant)
        campaign = _campaign_id(session, tenant.id, job.campaign) if job.campaign else None
        audience = _audience_id(session, tenant.id, job.audience) if job.audience else None
        return StageContext(
            tenant=job.tenant,
            tenant_id=tenant.id,
            flow_run_id=uuid.UUID(str(flow_run_id)) if flow_run_id else None,
            campaign_id=campaign,
            audience_id=audience,
        )


def register_campaign(
    tenant: str,
    name: str,
    *,
    spec: dict[str, Any],
    cron: str | None,
    timezone: str | None,
    session: Session | None = None,
) -> uuid.UUID:
    """Record (or update) a campaign and the spec it last ran or was deployed with, in
    ``session`` (the caller's transaction) or in a transaction of its own."""
    if session is None:
        with session_scope() as own:
            return register_campaign(
                tenant, name, spec=spec, cron=cron, timezone=timezone, session=own
            )
    row = lineage.ensure_tenant(session, tenant)
    campaign_id = _campaign_id(session, row.id, name)
    campaign = session.get_one(Campaign, campaign_id)
    campaign.spec, campaign.schedule_cron, campaign.timezone = spec, cron, timezone
    return campaign_id
