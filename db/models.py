"""Lineage schema, modelled on W3C PROV: assets are entities, activities are stage runs.

Edges: ``used`` (activity <- asset), ``generated`` (asset <- activity) and ``derived_from``
(asset <- asset). The rules that matter (uniqueness per tenant/kind/content, no publication
without a passing safety verdict) are held by PostgreSQL itself, see the initial migration.
"""

from __future__ import annotations

import enum
import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import (
    BigInteger,
    Boolean,
    CheckConstraint,
    DateTime,
    Enum,
    ForeignKey,
    Index,
    MetaData,
    String,
    Text,
    UniqueConstraint,
    func,
    text,
)
from sqlalchemy.dialects.postgresql import ARRAY, JSONB, UUID
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship

NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)
    type_annotation_map = {dict[str, Any]: JSONB, uuid.UUID: UUID(as_uuid=True)}


class AssetKind(enum.StrEnum):
    prompt = "prompt"
    enhanced_prompt = "enhanced_prompt"
    model_checkpoint = "model_checkpoint"
    latents = "latents"
    raw_clip = "raw_clip"
    rendition = "rendition"
    thumbnail = "thumbnail"
    preview = "preview"
    logo = "logo"
    music = "music"
    lut = "lut"
    overlay_image = "overlay_image"
    overlay_text = "overlay_text"
    frame_sample = "frame_sample"
    style_lora = "style_lora"
    captions = "captions"  # an ad's WebVTT and SRT


class ActivityStatus(enum.StrEnum):
    running = "running"
    succeeded = "succeeded"
    failed = "failed"


class SafetyGate(enum.StrEnum):
    text = "text"
    visual = "visual"


def _enum(cls: type[enum.Enum], name: str) -> Enum:
    # Stored as text with a CHECK constraint: adding a kind is a one-line migration,
    # not an ALTER TYPE dance.
    return Enum(
        cls,
        name=name,
        native_enum=False,
        create_constraint=True,
        length=32,
        values_callable=lambda e: [m.value for m in e],
    )


def _uuid_pk() -> Mapped[uuid.UUID]:
    return mapped_column(
        primary_key=True, default=uuid.uuid4, server_default=text("gen_random_uuid()")
    )


def _created_at() -> Mapped[datetime]:
    return mapped_column(DateTime(timezone=True), server_default=func.now())


class Tenant(Base):
    __tablename__ = "tenants"

    id: Mapped[uuid.UUID] = _uuid_pk()
    slug: Mapped[str] = mapped_column(String(64), unique=True)
    name: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = _created_at()

    __table_args__ = (CheckConstraint(r"slug ~ '^[a-z0-9][a-z0-9-]{0,63}$'", name="slug_format"),)


class Audience(Base):
    """An end user a personalised video is made for."""

    __tablename__ = "audiences"

    id: Mapped[uuid.UUID] = _uuid_pk()
    tenant_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("tenants.id", ondelete="RESTRICT"))
    external_id: Mapped[str] = mapped_column(String(200))
    attributes: Mapped[dict[str, Any]] = mapped_column(server_default=text("'{}'::jsonb"))
    created_at: Mapped[datetime] = _created_at()

    __table_args__ = (UniqueConstraint("tenant_id", "external_id"),)


class Campaign(Base):
    __tablename__ = "campaigns"

    id: Mapped[uuid.UUID] = _uuid_pk()
    tenant_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("tenants.id", ondelete="RESTRICT"))
    name: Mapped[str] = mapped_column(String(200))
    spec: Mapped[dict[str, Any]] = mapped_column(server_default=text("'{}'::jsonb"))
    schedule_cron: Mapped[str | None] = mapped_column(String(100))
    timezone: Mapped[str | None] = mapped_column(String(64))
    created_at: Mapped[datetime] = _created_at()

    __table_args__ = (UniqueConstraint("tenant_id", "name"),)


class Asset(Base):
    """An entity: a prompt, a checkpoint, a clip, a rendition, a LUT, a logo..."""

    __tablename__ = "assets"

    id: Mapped[uuid.UUID] = _uuid_pk()
    tenant_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("tenants.id", ondelete="RESTRICT"))
    kind: Mapped[AssetKind] = mapped_column(_enum(AssetKind, "asset_kind"))
    sha256: Mapped[str] = mapped_column(String(64))
    size_bytes: Mapped[int] = mapped_column(BigInteger)
    uri: Mapped[str] = mapped_column(Text)
    media_type: Mapped[str] = mapped_column(String(100))
    media: Mapped[dict[str, Any]] = mapped_column(server_default=text("'{}'::jsonb"))
    campaign_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("campaigns.id", ondelete="SET NULL")
    )
    audience_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("audiences.id", ondelete="SET NULL")
    )
    published_uri: Mapped[str | None] = mapped_column(Text)
    published_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    created_at: Mapped[datetime] = _created_at()

    verdicts: Mapped[list[SafetyVerdict]] = relationship(back_populates="asset")

    __table_args__ = (
        UniqueConstraint("tenant_id", "kind", "sha256", name="uq_assets_tenant_kind_sha256"),
        CheckConstraint("sha256 ~ '^[0-9a-f]{64}$'", name="sha256_hex"),
        CheckConstraint("size_bytes >= 0", name="size_nonnegative"),
        CheckConstraint("(published_at IS NULL) = (published_uri IS NULL)", name="published_pair"),
        Index(
            "ix_assets_published_at",
            "published_at",
            postgresql_where=text("published_at IS NOT NULL"),
        ),
        Index(
            "ix_assets_campaign_id", "campaign_id", postgresql_where=text("campaign_id IS NOT NULL")
        ),
        # Generation cache lookups: the same request is never generated twice.
        Index("ix_assets_cache_key", "tenant_id", "kind", text("(media ->> 'cache_key')")),
    )


class Activity(Base):
    """A stage run: what ran, with which code, model and parameters, and how it ended."""

    __tablename__ = "activities"

    id: Mapped[uuid.UUID] = _uuid_pk()
    tenant_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("tenants.id", ondelete="RESTRICT"))
    stage: Mapped[str] = mapped_column(String(64))
    code_version: Mapped[str] = mapped_column(String(64))
    parameters: Mapped[dict[str, Any]] = mapped_column(server_default=text("'{}'::jsonb"))
    model_version: Mapped[str | None] = mapped_column(String(200))
    flow_run_id: Mapped[uuid.UUID | None]
    task_run_id: Mapped[uuid.UUID | None]
    status: Mapped[ActivityStatus] = mapped_column(_enum(ActivityStatus, "activity_status"))
    started_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    ended_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    error: Mapped[str | None] = mapped_column(Text)

    __table_args__ = (
        Index("ix_activities_model_version", "model_version"),
        Index("ix_activities_flow_run_id", "flow_run_id"),
        Index("ix_activities_stage_started", "stage", "started_at"),
        CheckConstraint("(status = 'running') = (ended_at IS NULL)", name="ended_when_finished"),
    )


class Used(Base):
    """activity <- asset: the activity read this asset (role: 'input', 'lut', 'logo', ...)."""

    __tablename__ = "used"

    activity_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("activities.id", ondelete="CASCADE"), primary_key=True
    )
    asset_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("assets.id", ondelete="RESTRICT"), primary_key=True
    )
    role: Mapped[str] = mapped_column(String(64), primary_key=True)

    __table_args__ = (Index("ix_used_asset_id", "asset_id"),)


class Generated(Base):
    """asset <- activity: the activity produced this asset."""

    __tablename__ = "generated"

    asset_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("assets.id", ondelete="CASCADE"), primary_key=True
    )
    activity_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("activities.id", ondelete="CASCADE"), primary_key=True
    )

    __table_args__ = (Index("ix_generated_activity_id", "activity_id"),)


class DerivedFrom(Base):
    """asset <- asset, through the activity that made one from the other."""

    __tablename__ = "derived_from"

    asset_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("assets.id", ondelete="CASCADE"), primary_key=True
    )
    source_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("assets.id", ondelete="RESTRICT"), primary_key=True
    )
    activity_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("activities.id", ondelete="SET NULL")
    )
    role: Mapped[str] = mapped_column(String(64), server_default="input")

    __table_args__ = (
        Index("ix_derived_from_source_id", "source_id", "asset_id"),
        CheckConstraint("asset_id <> source_id", name="no_self_derivation"),
    )


class Style(Base):
    """A tenant's brand style by name: the LoRA file is an asset (kind ``style_lora``), so
    videos made with it keep it in their lineage after the name is removed or re-registered."""

    __tablename__ = "styles"

    tenant_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("tenants.id", ondelete="CASCADE"), primary_key=True
    )
    name: Mapped[str] = mapped_column(String(64), primary_key=True)
    asset_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("assets.id", ondelete="RESTRICT"))
    created_at: Mapped[datetime] = _created_at()

    __table_args__ = (CheckConstraint("name ~ '^[a-z0-9][a-z0-9-]{0,63}$'", name="name_format"),)


class SafetyVerdict(Base):
    __tablename__ = "safety_verdicts"

    id: Mapped[uuid.UUID] = _uuid_pk()
    tenant_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("tenants.id", ondelete="RESTRICT"))
    asset_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("assets.id", ondelete="CASCADE"))
    activity_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("activities.id", ondelete="SET NULL")
    )
    gate: Mapped[SafetyGate] = mapped_column(_enum(SafetyGate, "safety_gate"))
    passed: Mapped[bool] = mapped_column(Boolean)
    category: Mapped[str | None] = mapped_column(String(64))
    model_version: Mapped[str | None] = mapped_column(String(200))
    policy_version: Mapped[str] = mapped_column(String(64))
    details: Mapped[dict[str, Any]] = mapped_column(server_default=text("'{}'::jsonb"))
    created_at: Mapped[datetime] = _created_at()

    asset: Mapped[Asset] = relationship(back_populates="verdicts")

    __table_args__ = (Index("ix_safety_verdicts_asset_id", "asset_id", "passed"),)


# --- HTTP API (reelforge/api) ---------------------------------------------------------------


class ApiKey(Base):
    """A tenant's API key: only a SHA-256 of the key is stored (keys are 256-bit random)."""

    __tablename__ = "api_keys"

    id: Mapped[uuid.UUID] = _uuid_pk()
    tenant_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("tenants.id", ondelete="CASCADE"))
    prefix: Mapped[str] = mapped_column(String(16), unique=True)
    key_hash: Mapped[str] = mapped_column(String(64))
    name: Mapped[str | None] = mapped_column(String(200))
    created_at: Mapped[datetime] = _created_at()
    revoked_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    expires_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    # operators also see Prefect (the UI links); tenants see only what the API shows
    operator: Mapped[bool] = mapped_column(Boolean, server_default=text("false"))

    __table_args__ = (
        CheckConstraint("key_hash ~ '^[0-9a-f]{64}$'", name="key_hash_hex"),
        Index("ix_api_keys_tenant_id", "tenant_id"),
    )


class DashboardSession(Base):
    """A dashboard login, held here so that logout and key revocation end it at once (the
    cookie only names the row)."""

    __tablename__ = "dashboard_sessions"

    id: Mapped[uuid.UUID] = _uuid_pk()
    key_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("api_keys.id", ondelete="CASCADE"))
    created_at: Mapped[datetime] = _created_at()
    expires_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))

    __table_args__ = (Index("ix_dashboard_sessions_key_id", "key_id"),)


class IdempotencyKey(Base):
    """An ``Idempotency-Key`` a tenant sent with a POST and the answer it got: the same key
    with the same request answers the same again (no new job); with another request, 422."""

    __tablename__ = "idempotency_keys"

    tenant_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("tenants.id", ondelete="CASCADE"), primary_key=True
    )
    key: Mapped[str] = mapped_column(String(255), primary_key=True)
    endpoint: Mapped[str] = mapped_column(String(64))
    request_sha256: Mapped[str] = mapped_column(String(64))
    response: Mapped[dict[str, Any]]
    created_at: Mapped[datetime] = _created_at()


class JobStatus(enum.StrEnum):
    queued = "queued"  # accepted, not yet handed to Prefect
    retrying = "retrying"  # a retry was asked for, not yet handed to Prefect
    submitted = "submitted"  # a flow run exists, not yet running
    running = "running"
    completed = "completed"
    failed = "failed"
    cancelled = "cancelled"


class JobRecord(Base):
    """A job submitted over HTTP (a video or a campaign) and where its flow run stands."""

    __tablename__ = "video_jobs"

    id: Mapped[uuid.UUID] = _uuid_pk()
    tenant_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("tenants.id", ondelete="RESTRICT"))
    kind: Mapped[str] = mapped_column(String(16))
    status: Mapped[JobStatus] = mapped_column(_enum(JobStatus, "job_status"))
    executor: Mapped[str] = mapped_column(String(16))
    stage: Mapped[str | None] = mapped_column(String(64))
    stages_done: Mapped[int] = mapped_column(server_default=text("0"))
    stages_total: Mapped[int] = mapped_column(server_default=text("0"))
    flow_run_id: Mapped[uuid.UUID | None]
    # a video job held for review runs the versions flow: its takes, then a review
    review: Mapped[bool] = mapped_column(Boolean, server_default=text("false"))
    versions: Mapped[int] = mapped_column(server_default=text("1"))
    # the API key that submitted the job (emptied if the key is deleted)
    key_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("api_keys.id", ondelete="SET NULL"))
    campaign_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("campaigns.id", ondelete="SET NULL")
    )
    request: Mapped[dict[str, Any]] = mapped_column(server_default=text("'{}'::jsonb"))
    result: Mapped[dict[str, Any] | None] = mapped_column(JSONB)
    error: Mapped[str | None] = mapped_column(Text)
    attempts: Mapped[int] = mapped_column(server_default=text("0"))
    created_at: Mapped[datetime] = _created_at()
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    finished_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))

    __table_args__ = (
        CheckConstraint("kind IN ('video', 'campaign', 'ad')", name="kind_known"),
        Index("ix_video_jobs_tenant_status", "tenant_id", "status"),
        Index("ix_video_jobs_tenant_created", "tenant_id", "created_at"),
        Index("ix_video_jobs_flow_run_id", "flow_run_id"),
        Index(
            "ix_video_jobs_pending",
            "created_at",
            postgresql_where=text("status IN ('queued', 'retrying', 'submitted', 'running')"),
        ),
    )


# --- Webhooks (tenant endpoints, the outbox written with each state change, deliveries) -----


class WebhookEndpoint(Base):
    """A URL a tenant wants events POSTed to, signed with its own Standard Webhooks secret."""

    __tablename__ = "webhook_endpoints"

    id: Mapped[uuid.UUID] = _uuid_pk()
    tenant_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("tenants.id", ondelete="CASCADE"))
    url: Mapped[str] = mapped_column(Text)
    events: Mapped[list[str]] = mapped_column(ARRAY(String(64)))
    # The signing key must be readable to sign with (HMAC), so it cannot be stored hashed.
    secret: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = _created_at()
    disabled_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))

    __table_args__ = (
        CheckConstraint("cardinality(events) > 0", name="events_nonempty"),
        Index("ix_webhook_endpoints_tenant_id", "tenant_id"),
    )


class OutboxStatus(enum.StrEnum):
    pending = "pending"
    delivered = "delivered"
    failed = "failed"  # gave up after the retry window


class WebhookOutbox(Base):
    """One event for one endpoint, written in the transaction of the state change it reports.

    Its id is the ``webhook-id`` header: receivers dedupe on it (delivery is at least once).
    """

    __tablename__ = "webhook_outbox"

    id: Mapped[uuid.UUID] = _uuid_pk()
    tenant_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("tenants.id", ondelete="CASCADE"))
    endpoint_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("webhook_endpoints.id", ondelete="CASCADE")
    )
    event_type: Mapped[str] = mapped_column(String(64))
    payload: Mapped[dict[str, Any]] = mapped_column(server_default=text("'{}'::jsonb"))
    status: Mapped[OutboxStatus] = mapped_column(_enum(OutboxStatus, "outbox_status"))
    attempts: Mapped[int] = mapped_column(server_default=text("0"))
    next_attempt_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), server_default=func.now()
    )
    created_at: Mapped[datetime] = _created_at()
    delivered_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))

    __table_args__ = (
        CheckConstraint(
            "(status = 'delivered') = (delivered_at IS NOT NULL)", name="delivered_when_done"
        ),
        Index(
            "ix_webhook_outbox_due", "next_attempt_at", postgresql_where=text("status = 'pending'")
        ),
        Index("ix_webhook_outbox_tenant_created", "tenant_id", "created_at"),
    )


class WebhookDelivery(Base):
    """One attempt to deliver an outbox row: the delivery log the dashboard shows."""

    __tablename__ = "webhook_deliveries"

    id: Mapped[uuid.UUID] = _uuid_pk()
    outbox_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("webhook_outbox.id", ondelete="CASCADE")
    )
    attempted_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), server_default=func.now()
    )
    status_code: Mapped[int | None]
    error: Mapped[str | None] = mapped_column(Text)
    duration_ms: Mapped[int]
    succeeded: Mapped[bool] = mapped_column(Boolean)

    __table_args__ = (Index("ix_webhook_deliveries_outbox_id", "outbox_id", "attempted_at"),)


# --- Versions and review (flows/versions.py, flows/review.py, reelforge/ops/reviews.py) -----


class ReviewStatus(enum.StrEnum):
    awaiting_review = "awaiting_review"  # the takes and their previews are ready: pick one
    approved = "approved"  # a take was picked; its publishing run has not finished yet
    published = "published"  # the chosen take is published (``result``)
    rejected = "rejected"  # nothing is published; the takes stay private


class Review(Base):
    """A job's takes waiting for a person's decision. No process waits for it: the versions
    run ended after the previews, and the decision starts the publishing run."""

    __tablename__ = "reviews"

    id: Mapped[uuid.UUID] = _uuid_pk()
    tenant_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("tenants.id", ondelete="RESTRICT"))
    status: Mapped[ReviewStatus] = mapped_column(_enum(ReviewStatus, "review_status"))
    job: Mapped[dict[str, Any]]  # the VideoJob of take 1 (take k: seed + k - 1)
    # what the versions run recorded for the publishing run: prompt, overlay, brand kit refs
    inputs: Mapped[dict[str, Any]] = mapped_column(server_default=text("'{}'::jsonb"))
    # one object per take, in order: number, seed, clip, preview, score, passed
    takes: Mapped[list[dict[str, Any]]] = mapped_column(JSONB, server_default=text("'[]'::jsonb"))
    flow_run_id: Mapped[uuid.UUID | None]  # the versions run that made the takes
    campaign_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("campaigns.id", ondelete="SET NULL")
    )
    on_timeout: Mapped[str] = mapped_column(String(32), server_default="reject")
    expires_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    pick: Mapped[int | None]  # the chosen take's number (1-based)
    decided_by: Mapped[str | None] = mapped_column(String(200))  # key id, operator, `system`
    note: Mapped[str | None] = mapped_column(Text)  # the approval's note or the rejection's reason
    decided_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    decision_flow_run_id: Mapped[uuid.UUID | None]  # the publishing run
    result: Mapped[dict[str, Any] | None] = mapped_column(JSONB)  # what `generate --json` prints
    created_at: Mapped[datetime] = _created_at()

    __table_args__ = (
        CheckConstraint(
            "(status = 'awaiting_review') = (decided_at IS NULL)", name="decided_when_not_waiting"
        ),
        CheckConstraint(
            "(status IN ('approved', 'published')) = (pick IS NOT NULL)", name="pick_when_approved"
        ),
        CheckConstraint(
            "(status = 'published') = (result IS NOT NULL)", name="result_when_published"
        ),
        Index("ix_reviews_tenant_status", "tenant_id", "status", "created_at"),
        Index(
            "ix_reviews_expiring", "expires_at", postgresql_where=text("status = 'awaiting_review'")
        ),
    )
