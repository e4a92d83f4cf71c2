"""Fixtures for the API tests: the app on the real test stack, tenants with API keys."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import pytest


@dataclass
class TenantKey:
    slug: str
    key: str
    tenant_id: uuid.UUID

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.key}"}


@pytest.fixture(scope="session")
def api_settings(stack):
    return stack


@pytest.fixture(scope="session")
def app(api_settings):
    from reelforge.api import create_app

    return create_app(api_settings, dispatch=False)


@pytest.fixture(scope="session")
def client(app) -> Iterator[object]:
    from fastapi.testclient import TestClient

    with TestClient(app) as test_client:
        yield test_client


def delete_tenant_jobs(tenant_ids: list[uuid.UUID]) -> None:
    from sqlalchemy import delete

    from db.models import JobRecord
    from db.session import session_scope

    with session_scope() as session:
        session.execute(delete(JobRecord).where(JobRecord.tenant_id.in_(tenant_ids)))


@pytest.fixture
def make_tenant(stack) -> Iterator[Callable[[], TenantKey]]:
    """A fresh tenant with a key (committed); its jobs are deleted afterwards, so that no
    dispatcher in a later test picks them up."""
    from db.session import session_scope
    from reelforge.api.keys import create_key

    made: list[TenantKey] = []

    def make(prefix: str = "api") -> TenantKey:
        slug = f"{prefix}-{uuid.uuid4().hex[:10]}"
        with session_scope() as session:
            key, record = create_key(session, slug)
            made.append(TenantKey(slug, key, record.tenant_id))
        return made[-1]

    yield make
    if made:
        delete_tenant_jobs([t.tenant_id for t in made])


@pytest.fixture
def committed_chain(stack):
    """prompt -> enhanced prompt -> raw clip -> rendition (published) for a tenant, committed."""
    import hashlib

    from db import lineage
    from db.models import AssetKind, SafetyGate
    from db.session import session_scope

    def make(tenant: TenantKey) -> dict[str, uuid.UUID]:
        with session_scope() as session:

            def asset(kind: AssetKind, media: dict | None = None):
                data = uuid.uuid4().bytes
                sha = hashlib.sha256(data).hexdigest()
                row, _ = lineage.get_or_create_asset(
                    session, tenant_id=tenant.tenant_id, kind=kind, sha256=sha,
                    size_bytes=len(data), uri=f"s3://reelforge-private/{tenant.slug}/{kind}/{sha}",
                    media_type="application/octet-stream", media=media or {},
                )  # fmt: skip
                return row

            prompt = asset(AssetKind.prompt)
            enhanced = asset(AssetKind.enhanced_prompt)
            clip = asset(AssetKind.raw_clip)
            lut = asset(AssetKind.lut)
            rendition = asset(AssetKind.rendition, {"width": 320, "height": 180, "duration": 1.0})
            thumb = asset(AssetKind.thumbnail)
            tid = tenant.tenant_id
            lineage.record_activity(session, tenant_id=tid, stage="enhance", used=[(prompt, "prompt")], generated=[enhanced])  # fmt: skip
            lineage.record_activity(session, tenant_id=tid, stage="generate", used=[(enhanced, "prompt")], generated=[clip], model_version="tiny@test", parameters={"seed": 7})  # fmt: skip
            lineage.record_activity(session, tenant_id=tid, stage="postprocess", used=[(clip, "input"), (lut, "lut")], generated=[rendition, thumb], parameters={"aspect": "16:9", "lut": "warm"})  # fmt: skip
            lineage.record_verdict(session, tenant_id=tid, asset=rendition, gate=SafetyGate.visual, passed=True, policy_version="test", details={"flags": []})  # fmt: skip
            lineage.mark_published(
                session, rendition, f"s3://reelforge-published/{tenant.slug}/r.mp4"
            )
            return {"prompt": prompt.id, "clip": clip.id, "rendition": rendition.id, "thumbnail": thumb.id}  # fmt: skip

    return make


def complete_job(job_id: uuid.UUID, rendition_id: uuid.UUID) -> None:
    """Mark a job completed with a result pointing at a rendition (as the dispatcher would)."""
    from datetime import UTC, datetime

    from db.models import JobRecord, JobStatus
    from db.session import session_scope

    with session_scope() as session:
        job = session.get_one(JobRecord, job_id)
        job.status = JobStatus.completed
        job.finished_at = datetime.now(UTC)
        job.stages_total = job.stages_done = 8
        job.result = {"video": {"asset_id": str(rendition_id)}, "enhanced_prompt": "e", "generation_cached": False}  # fmt: skip


def fail_job(job_id: uuid.UUID, error: str = "failpoint publish fired") -> None:
    from datetime import UTC, datetime

    from db.models import JobRecord, JobStatus
    from db.session import session_scope

    with session_scope() as session:
        job = session.get_one(JobRecord, job_id)
        job.status = JobStatus.failed
        job.error = error
        job.finished_at = datetime.now(UTC)
