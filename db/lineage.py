"""Writing and reading the lineage graph.

Writers take a session and never commit: the caller's transaction decides, so a stage's
activity, its edges and its assets land together or not at all.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import ColumnElement, Float, func, or_, select, text, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.orm import Session

from db.models import (
    Activity,
    ActivityStatus,
    Asset,
    AssetKind,
    DerivedFrom,
    Generated,
    SafetyGate,
    SafetyVerdict,
    Tenant,
    Used,
)
from reelforge.core.version import code_version


def ensure_tenant(session: Session, slug: str, name: str | None = None) -> Tenant:
    session.execute(
        insert(Tenant)
        .values(slug=slug, name=name or slug)
        .on_conflict_do_nothing(index_elements=["slug"])
    )
    return session.scalars(select(Tenant).where(Tenant.slug == slug)).one()


def get_or_create_asset(
    session: Session,
    *,
    tenant_id: uuid.UUID,
    kind: AssetKind,
    sha256: str,
    size_bytes: int,
    uri: str,
    media_type: str,
    media: dict[str, Any] | None = None,
    asset_id: uuid.UUID | None = None,
    campaign_id: uuid.UUID | None = None,
    audience_id: uuid.UUID | None = None,
) -> tuple[Asset, bool]:
    """The asset for this content, and whether this call created it.

    Content addressing makes re-recording the same bytes a no-op, even under concurrency:
    the unique (tenant, kind, sha256) constraint decides who wins.
    """
    new_id = session.scalar(
        insert(Asset)
        .values(
            id=asset_id or uuid.uuid4(),
            tenant_id=tenant_id,
            kind=kind,
            sha256=sha256,
            size_bytes=size_bytes,
            uri=uri,
            media_type=media_type,
            media=media or {},
            campaign_id=campaign_id,
            audience_id=audience_id,
        )
        .on_conflict_do_nothing(constraint="uq_assets_tenant_kind_sha256")
        .returning(Asset.id)
    )
    asset = find_asset(session, tenant_id=tenant_id, kind=kind, sha256=sha256)
    assert asset is not None
    return asset, new_id is not None


def find_asset(
    session: Session, *, tenant_id: uuid.UUID, kind: AssetKind, sha256: str
) -> Asset | None:
    return session.scalars(
        select(Asset).where(
            Asset.tenant_id == tenant_id, Asset.kind == kind, Asset.sha256 == sha256
        )
    ).one_or_none()


def record_activity(
    session: Session,
    *,
    tenant_id: uuid.UUID,
    stage: str,
    used: Sequence[tuple[Asset, str]] = (),
    generated: Sequence[Asset] = (),
    parameters: dict[str, Any] | None = None,
    model_version: str | None = None,
    flow_run_id: uuid.UUID | str | None = None,
    task_run_id: uuid.UUID | str | None = None,
    started_at: datetime | None = None,
    status: ActivityStatus = ActivityStatus.succeeded,
    error: str | None = None,
) -> Activity:
    """Record one finished stage run with its used/generated edges.

    Every generated asset is derived from every used asset (role kept), which is what
    PROV's derivation means for a stage that reads inputs and writes outputs.
    """
    now = datetime.now(UTC)
    activity = Activity(
        id=uuid.uuid4(),
        tenant_id=tenant_id,
        stage=stage,
        code_version=code_version(),
        parameters=parameters or {},
        model_version=model_version,
        flow_run_id=_as_uuid(flow_run_id),
        task_run_id=_as_uuid(task_run_id),
        status=status,
        started_at=started_at or now,
        ended_at=None if status is ActivityStatus.running else now,
        error=error,
    )
    session.add(activity)
    session.flush()
    if used:
        session.execute(
            insert(Used)
            .values(
                [{"activity_id": activity.id, "asset_id": a.id, "role": role} for a, role in used]
            )
            .on_conflict_do_nothing()
        )
    if generated:
        session.execute(
            insert(Generated)
            .values([{"asset_id": a.id, "activity_id": activity.id} for a in generated])
            .on_conflict_do_nothing()
        )
    derivations = [
        {"asset_id": g.id, "source_id": u.id, "activity_id": activity.id, "role": role}
        for g in generated
        for u, role in used
        if g.id != u.id
    ]
    if derivations:
        session.execute(insert(DerivedFrom).values(derivations).on_conflict_do_nothing())
    return activity


def record_verdict(
    session: Session,
    *,
    tenant_id: uuid.UUID,
    asset: Asset,
    gate: SafetyGate,
    passed: bool,
    policy_version: str,
    category: str | None = None,
    model_version: str | None = None,
    details: dict[str, Any] | None = None,
    activity: Activity | None = None,
) -> SafetyVerdict:
    verdict = SafetyVerdict(
        tenant_id=tenant_id,
        asset_id=asset.id,
        activity_id=activity.id if activity else None,
        gate=gate,
        passed=passed,
        category=category,
        model_version=model_version,
        policy_version=policy_version,
        details=details or {},
    )
    session.add(verdict)
    session.flush()
    return verdict


def mark_published(session: Session, asset: Asset, published_uri: str) -> None:
    """Mark an asset published. PostgreSQL refuses it without a passing safety verdict."""
    session.execute(
        update(Asset)
        .where(Asset.id == asset.id)
        .values(published_uri=published_uri, published_at=datetime.now(UTC))
    )
    session.refresh(asset)


def gpu_seconds() -> ColumnElement[float]:
    """GPU time of a generate activity: the generator's own per-video timing (its share of
    a batch, without the wait for a slot), or the activity's duration where none was kept."""
    return func.coalesce(
        Activity.parameters["timings"]["per_video_s"].astext.cast(Float),
        func.extract("epoch", Activity.ended_at - Activity.started_at),
    )


def gpu_seconds_of_runs(session: Session, flow_run_ids: Sequence[uuid.UUID]) -> float:
    """GPU time of the generations these flow runs made (clips they took from the cache cost
    nothing here: no generate activity of theirs)."""
    if not flow_run_ids:
        return 0.0
    total = session.scalar(
        select(func.coalesce(func.sum(gpu_seconds()), 0)).where(
            Activity.stage == "generate", Activity.flow_run_id.in_(flow_run_ids)
        )
    )
    return round(float(total or 0), 3)


@dataclass(frozen=True)
class LineageNode:
    asset_id: uuid.UUID
    kind: str
    uri: str
    sha256: str
    depth: int
    child_id: uuid.UUID | None  # the asset one step downstream on this path (None: the root)
    role: str | None
    stage: str | None
    activity_id: uuid.UUID | None
    model_version: str | None
    published_uri: str | None
    duration_s: float | None = None  # how long the producing stage ran (started -> ended)
    queue_wait_s: float | None = None  # how long its flow run waited to start
    size_bytes: int | None = None  # small text assets are shown inline (`reelforge lineage`)

    def as_json(self) -> dict[str, Any]:
        return {k: (str(v) if isinstance(v, uuid.UUID) else v) for k, v in asdict(self).items()}


# The stage recorded on a node is the activity that produced it (PROV: wasGeneratedBy).
# Assets are looked up LATERAL, row by row: the planner badly overestimates recursive CTEs
# and would otherwise hash-join the whole assets table (a second at a million assets).
_NODE_COLUMNS = """
    a.id AS asset_id, a.kind, a.uri, a.sha256, w.depth, w.child_id, w.role,
    act.stage, act.id AS activity_id, act.model_version, a.published_uri,
    CAST(extract(epoch FROM act.ended_at - act.started_at) AS float8) AS duration_s,
    CAST(act.parameters->>'queue_wait_s' AS float8) AS queue_wait_s,
    a.size_bytes
"""

_UPSTREAM_SQL = text(f"""
WITH RECURSIVE walk(asset_id, child_id, role, depth) AS (
    SELECT CAST(:root AS uuid), CAST(NULL AS uuid), CAST(NULL AS varchar), 0
  UNION
    SELECT d.source_id, d.asset_id, d.role, w.depth + 1
    FROM walk w JOIN derived_from d ON d.asset_id = w.asset_id
    WHERE w.depth < :max_depth
)
SELECT {_NODE_COLUMNS}
FROM walk w
CROSS JOIN LATERAL (
    SELECT * FROM assets a WHERE a.id = w.asset_id
    AND a.tenant_id = (SELECT tenant_id FROM assets WHERE id = CAST(:root AS uuid))
) a
LEFT JOIN LATERAL (
    SELECT act.* FROM generated g JOIN activities act ON act.id = g.activity_id
    WHERE g.asset_id = a.id ORDER BY act.started_at LIMIT 1
) act ON true
ORDER BY w.depth, a.kind, a.id
""")

_DOWNSTREAM_SQL = text(f"""
WITH RECURSIVE walk(asset_id, child_id, role, depth) AS (
    SELECT id, CAST(NULL AS uuid), CAST(NULL AS varchar), 0 FROM assets WHERE id = ANY(:roots)
  UNION
    SELECT d.asset_id, d.source_id, d.role, w.depth + 1
    FROM walk w JOIN derived_from d ON d.source_id = w.asset_id
    WHERE w.depth < :max_depth
)
SELECT {_NODE_COLUMNS}
FROM walk w
CROSS JOIN LATERAL (SELECT * FROM assets a WHERE a.id = w.asset_id AND a.tenant_id = :tenant) a
LEFT JOIN LATERAL (
    SELECT act.* FROM generated g JOIN activities act ON act.id = g.activity_id
    WHERE g.asset_id = a.id ORDER BY act.started_at LIMIT 1
) act ON true
ORDER BY w.depth, a.kind, a.id
""")

_MODEL_OUTPUTS_SQL = text("""
SELECT DISTINCT g.asset_id FROM activities act JOIN generated g ON g.activity_id = act.id
WHERE act.model_version = :model_version AND act.tenant_id = :tenant
""")

MAX_DEPTH = 64


def _root_tenant(session: Session, asset_id: uuid.UUID) -> uuid.UUID | None:
    return session.scalar(select(Asset.tenant_id).where(Asset.id == asset_id))


def upstream(session: Session, asset_id: uuid.UUID) -> list[LineageNode]:
    """The asset and everything it was derived from, nearest first (empty if unknown).

    One round trip: the tenant filter (lineage never crosses tenants) is inside the query.
    """
    rows = session.execute(_UPSTREAM_SQL, {"root": asset_id, "max_depth": MAX_DEPTH})
    return [LineageNode(**row._mapping) for row in rows]


@dataclass(frozen=True)
class FailedActivity:
    """A stage run that failed in the making of a lineage (a retry may have made it since)."""

    activity_id: uuid.UUID
    stage: str
    error: str | None
    flow_run_id: uuid.UUID | None
    started_at: datetime

    def as_json(self) -> dict[str, Any]:
        return {
            "activity_id": str(self.activity_id),
            "stage": self.stage,
            "error": self.error,
            "flow_run_id": str(self.flow_run_id) if self.flow_run_id else None,
            "started_at": self.started_at.isoformat(),
        }


def failed_activities(session: Session, asset_ids: Sequence[uuid.UUID]) -> list[FailedActivity]:
    """The failed stage runs of a lineage, oldest first: those that used any of these assets,
    and those of the flow runs that made them (a failure has no outputs, and not every
    failed stage could name its inputs). Never another tenant's: the assets' tenant only."""
    if not asset_ids:
        return []
    made_by = (
        select(Activity.flow_run_id)
        .join(Generated, Generated.activity_id == Activity.id)
        .where(Generated.asset_id.in_(asset_ids), Activity.flow_run_id.is_not(None))
    )
    used = select(Used.activity_id).where(Used.asset_id.in_(asset_ids))
    tenant = select(Asset.tenant_id).where(Asset.id == asset_ids[0]).scalar_subquery()
    rows = session.scalars(
        select(Activity)
        .where(
            Activity.tenant_id == tenant,
            Activity.status == ActivityStatus.failed,
            or_(Activity.id.in_(used), Activity.flow_run_id.in_(made_by)),
        )
        .order_by(Activity.started_at, Activity.id)
    )
    return [FailedActivity(a.id, a.stage, a.error, a.flow_run_id, a.started_at) for a in rows]


@dataclass(frozen=True)
class Decision:
    """A review's decision in the making of a lineage: who chose which take among which."""

    activity_id: uuid.UUID
    decision: str
    agent: str | None
    note: str | None
    chosen: uuid.UUID
    considered: list[uuid.UUID]
    decided_at: datetime

    def as_json(self) -> dict[str, Any]:
        return {
            "activity_id": str(self.activity_id),
            "decision": self.decision,
            "agent": self.agent,
            "note": self.note,
            "chosen": str(self.chosen),
            "considered": [str(c) for c in self.considered],
            "decided_at": self.decided_at.isoformat(),
        }


def decisions(session: Session, asset_ids: Sequence[uuid.UUID]) -> list[Decision]:
    """The review decisions that chose one of these assets (``review_decision`` activities,
    tasks/review/decision.py), with every take they considered."""
    if not asset_ids:
        return []
    chosen = (
        select(Used.activity_id, Used.asset_id)
        .where(Used.asset_id.in_(asset_ids), Used.role == "chosen")
        .subquery()
    )
    rows = session.execute(
        select(Activity, chosen.c.asset_id)
        .join(chosen, chosen.c.activity_id == Activity.id)
        .where(Activity.stage == "review_decision")
        .order_by(Activity.started_at)
    ).all()
    found = []
    for activity, asset_id in rows:
        considered = session.scalars(
            select(Used.asset_id)
            .join(Asset, Asset.id == Used.asset_id)
            .where(Used.activity_id == activity.id, Used.role == "considered")
            .order_by(Asset.created_at, Asset.id)
        ).all()
        p = activity.parameters
        found.append(Decision(activity.id, p.get("decision", ""), p.get("agent"), p.get("note"),
                              asset_id, list(considered), activity.started_at))  # fmt: skip
    return found


@dataclass(frozen=True)
class PublishedVideo:
    """A published rendition and the flow run that made it."""

    asset_id: uuid.UUID
    uri: str
    published_uri: str
    published_at: datetime
    sha256: str
    media: dict[str, Any]
    flow_run_id: uuid.UUID | None
    campaign_id: uuid.UUID | None


def published_videos(session: Session, tenant_id: uuid.UUID, limit: int = 50) -> list[PublishedVideo]:  # fmt: skip
    """The tenant's published renditions, newest first, however their runs were started."""
    made_by = (
        select(Activity.flow_run_id)
        .join(Generated, Generated.activity_id == Activity.id)
        .where(Generated.asset_id == Asset.id)
        .order_by(Activity.started_at)
        .limit(1)
        .scalar_subquery()
    )
    rows = session.execute(
        select(Asset, made_by)
        .where(
            Asset.tenant_id == tenant_id,
            Asset.kind == AssetKind.rendition,
            Asset.published_uri.is_not(None),
        )
        .order_by(Asset.published_at.desc(), Asset.id)
        .limit(limit)
    )
    return [
        PublishedVideo(
            asset_id=a.id,
            uri=a.uri,
            published_uri=a.published_uri or "",
            published_at=a.published_at or a.created_at,
            sha256=a.sha256,
            media=a.media or {},
            flow_run_id=flow_run_id,
            campaign_id=a.campaign_id,
        )
        for a, flow_run_id in rows
    ]


def downstream(session: Session, asset_id: uuid.UUID) -> list[LineageNode]:
    """The asset and everything derived from it: "what did LUT v3 touch?"."""
    tenant = _root_tenant(session, asset_id)
    if tenant is None:
        return []
    rows = session.execute(
        _DOWNSTREAM_SQL, {"roots": [asset_id], "tenant": tenant, "max_depth": MAX_DEPTH}
    )
    return [LineageNode(**row._mapping) for row in rows]


def downstream_of_model(
    session: Session, tenant_id: uuid.UUID, model_version: str
) -> list[LineageNode]:
    """Everything made by a model version and everything derived from that."""
    roots = list(
        session.scalars(_MODEL_OUTPUTS_SQL, {"model_version": model_version, "tenant": tenant_id})
    )
    if not roots:
        return []
    rows = session.execute(
        _DOWNSTREAM_SQL, {"roots": roots, "tenant": tenant_id, "max_depth": MAX_DEPTH}
    )
    return [LineageNode(**row._mapping) for row in rows]


def _as_uuid(value: uuid.UUID | str | None) -> uuid.UUID | None:
    if value is None or isinstance(value, uuid.UUID):
        return value
    return uuid.UUID(str(value))
