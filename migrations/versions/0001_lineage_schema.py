"""Lineage schema: tenants, assets, activities, PROV edges, safety verdicts.

The publication rule lives in PostgreSQL (a trigger), so no code path, raw SQL
included, can publish an asset without a passing safety verdict.

Revision ID: 0001
Revises:
Create Date: 2026-11-24 00:36:40.665541

"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

# revision identifiers, used by Alembic.
revision: str = "0001"
down_revision: str | Sequence[str] | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


PUBLISH_RULE = """
CREATE FUNCTION reelforge_assert_publishable() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF NEW.published_at IS NOT NULL AND (
        TG_OP = 'INSERT'
        OR OLD.published_at IS NULL
        OR OLD.published_uri IS DISTINCT FROM NEW.published_uri
    ) THEN
        IF NOT EXISTS (
            SELECT 1 FROM safety_verdicts v WHERE v.asset_id = NEW.id AND v.passed
        ) THEN
            RAISE EXCEPTION 'asset % cannot be published without a passing safety verdict', NEW.id
                USING ERRCODE = 'check_violation';
        END IF;
        IF EXISTS (
            SELECT 1 FROM safety_verdicts v WHERE v.asset_id = NEW.id AND NOT v.passed
        ) THEN
            RAISE EXCEPTION 'asset % has a failing safety verdict and cannot be published', NEW.id
                USING ERRCODE = 'check_violation';
        END IF;
    END IF;
    RETURN NEW;
END
$$;
CREATE TRIGGER assets_publishable
    BEFORE INSERT OR UPDATE OF published_at, published_uri ON assets
    FOR EACH ROW EXECUTE FUNCTION reelforge_assert_publishable();
"""

# Verdicts are evidence: they can be added, never rewritten.
APPEND_ONLY_VERDICTS = """
CREATE FUNCTION reelforge_verdicts_append_only() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'safety verdicts are append-only' USING ERRCODE = 'check_violation';
END
$$;
CREATE TRIGGER safety_verdicts_append_only
    BEFORE UPDATE ON safety_verdicts
    FOR EACH ROW EXECUTE FUNCTION reelforge_verdicts_append_only();
"""


def upgrade() -> None:
    """Upgrade schema."""
    op.create_table(
        "tenants",
        sa.Column("id", sa.UUID(), server_default=sa.text("gen_random_uuid()"), nullable=False),
        sa.Column("slug", sa.String(length=64), nullable=False),
        sa.Column("name", sa.Text(), nullable=False),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.CheckConstraint(
            "slug ~ '^[a-z0-9][a-z0-9-]{0,63}$'", name=op.f("ck_tenants_slug_format")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_tenants")),
        sa.UniqueConstraint("slug", name=op.f("uq_tenants_slug")),
    )
    op.create_table(
        "activities",
        sa.Column("id", sa.UUID(), server_default=sa.text("gen_random_uuid()"), nullable=False),
        sa.Column("tenant_id", sa.UUID(), nullable=False),
        sa.Column("stage", sa.String(length=64), nullable=False),
        sa.Column("code_version", sa.String(length=64), nullable=False),
        sa.Column(
            "parameters",
            postgresql.JSONB(astext_type=sa.Text()),
            server_default=sa.text("'{}'::jsonb"),
            nullable=False,
        ),
        sa.Column("model_version", sa.String(length=200), nullable=True),
        sa.Column("flow_run_id", sa.UUID(), nullable=True),
        sa.Column("task_run_id", sa.UUID(), nullable=True),
        sa.Column(
            "status",
            sa.Enum(
                "running",
                "succeeded",
                "failed",
                name="activity_status",
                native_enum=False,
                create_constraint=True,
                length=32,
            ),
            nullable=False,
        ),
        sa.Column(
            "started_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.Column("ended_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("error", sa.Text(), nullable=True),
        sa.CheckConstraint(
            "(status = 'running') = (ended_at IS NULL)",
            name=op.f("ck_activities_ended_when_finished"),
        ),
        sa.ForeignKeyConstraint(
            ["tenant_id"],
            ["tenants.id"],
            name=op.f("fk_activities_tenant_id_tenants"),
            ondelete="RESTRICT",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_activities")),
    )
    op.create_index("ix_activities_flow_run_id", "activities", ["flow_run_id"], unique=False)
    op.create_index("ix_activities_model_version", "activities", ["model_version"], unique=False)
    op.create_index(
        "ix_activities_stage_started", "activities", ["stage", "started_at"], unique=False
    )
    op.create_table(
        "audiences",
        sa.Column("id", sa.UUID(), server_default=sa.text("gen_random_uuid()"), nullable=False),
        sa.Column("tenant_id", sa.UUID(), nullable=False),
        sa.Column("external_id", sa.String(length=200), nullable=False),
        sa.Column(
            "attributes",
            postgresql.JSONB(astext_type=sa.Text()),
            server_default=sa.text("'{}'::jsonb"),
            nullable=False,
        ),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.ForeignKeyConstraint(
            ["tenant_id"],
            ["tenants.id"],
            name=op.f("fk_audiences_tenant_id_tenants"),
            ondelete="RESTRICT",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_audiences")),
        sa.UniqueConstraint("tenant_id", "external_id", name=op.f("uq_audiences_tenant_id")),
    )
    op.create_table(
        "campaigns",
        sa.Column("id", sa.UUID(), server_default=sa.text("gen_random_uuid()"), nullable=False),
        sa.Column("tenant_id", sa.UUID(), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column(
            "spec",
            postgresql.JSONB(astext_type=sa.Text()),
            server_default=sa.text("'{}'::jsonb"),
            nullable=False,
        ),
        sa.Column("schedule_cron", sa.String(length=100), nullable=True),
        sa.Column("timezone", sa.String(length=64), nullable=True),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.ForeignKeyConstraint(
            ["tenant_id"],
            ["tenants.id"],
            name=op.f("fk_campaigns_tenant_id_tenants"),
            ondelete="RESTRICT",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_campaigns")),
        sa.UniqueConstraint("tenant_id", "name", name=op.f("uq_campaigns_tenant_id")),
    )
    op.create_table(
        "assets",
        sa.Column("id", sa.UUID(), server_default=sa.text("gen_random_uuid()"), nullable=False),
        sa.Column("tenant_id", sa.UUID(), nullable=False),
        sa.Column(
            "kind",
            sa.Enum(
                "prompt",
                "enhanced_prompt",
                "model_checkpoint",
                "latents",
                "raw_clip",
                "rendition",
                "thumbnail",
                "preview",
                "logo",
                "music",
                "lut",
                "overlay_image",
                "overlay_text",
                "frame_sample",
                name="asset_kind",
                native_enum=False,
                create_constraint=True,
                length=32,
            ),
            nullable=False,
        ),
        sa.Column("sha256", sa.String(length=64), nullable=False),
        sa.Column("size_bytes", sa.BigInteger(), nullable=False),
        sa.Column("uri", sa.Text(), nullable=False),
        sa.Column("media_type", sa.String(length=100), nullable=False),
        sa.Column(
            "media",
            postgresql.JSONB(astext_type=sa.Text()),
            server_default=sa.text("'{}'::jsonb"),
            nullable=False,
        ),
        sa.Column("campaign_id", sa.UUID(), nullable=True),
        sa.Column("audience_id", sa.UUID(), nullable=True),
        sa.Column("published_uri", sa.Text(), nullable=True),
        sa.Column("published_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.CheckConstraint("sha256 ~ '^[0-9a-f]{64}$'", name=op.f("ck_assets_sha256_hex")),
        sa.CheckConstraint(
            "(published_at IS NULL) = (published_uri IS NULL)",
            name=op.f("ck_assets_published_pair"),
        ),
        sa.CheckConstraint("size_bytes >= 0", name=op.f("ck_assets_size_nonnegative")),
        sa.ForeignKeyConstraint(
            ["audience_id"],
            ["audiences.id"],
            name=op.f("fk_assets_audience_id_audiences"),
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["campaign_id"],
            ["campaigns.id"],
            name=op.f("fk_assets_campaign_id_campaigns"),
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["tenant_id"],
            ["tenants.id"],
            name=op.f("fk_assets_tenant_id_tenants"),
            ondelete="RESTRICT",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_assets")),
        sa.UniqueConstraint("tenant_id", "kind", "sha256", name="uq_assets_tenant_kind_sha256"),
    )
    op.create_index(
        "ix_assets_campaign_id",
        "assets",
        ["campaign_id"],
        unique=False,
        postgresql_where=sa.text("campaign_id IS NOT NULL"),
    )
    op.create_index(
        "ix_assets_published_at",
        "assets",
        ["published_at"],
        unique=False,
        postgresql_where=sa.text("published_at IS NOT NULL"),
    )
    op.create_table(
        "derived_from",
        sa.Column("asset_id", sa.UUID(), nullable=False),
        sa.Column("source_id", sa.UUID(), nullable=False),
        sa.Column("activity_id", sa.UUID(), nullable=True),
        sa.Column("role", sa.String(length=64), server_default="input", nullable=False),
        sa.CheckConstraint(
            "asset_id <> source_id", name=op.f("ck_derived_from_no_self_derivation")
        ),
        sa.ForeignKeyConstraint(
            ["activity_id"],
            ["activities.id"],
            name=op.f("fk_derived_from_activity_id_activities"),
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["asset_id"],
            ["assets.id"],
            name=op.f("fk_derived_from_asset_id_assets"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["source_id"],
            ["assets.id"],
            name=op.f("fk_derived_from_source_id_assets"),
            ondelete="RESTRICT",
        ),
        sa.PrimaryKeyConstraint("asset_id", "source_id", name=op.f("pk_derived_from")),
    )
    op.create_index(
        "ix_derived_from_source_id", "derived_from", ["source_id", "asset_id"], unique=False
    )
    op.create_table(
        "generated",
        sa.Column("asset_id", sa.UUID(), nullable=False),
        sa.Column("activity_id", sa.UUID(), nullable=False),
        sa.ForeignKeyConstraint(
            ["activity_id"],
            ["activities.id"],
            name=op.f("fk_generated_activity_id_activities"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["asset_id"],
            ["assets.id"],
            name=op.f("fk_generated_asset_id_assets"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("asset_id", "activity_id", name=op.f("pk_generated")),
    )
    op.create_index("ix_generated_activity_id", "generated", ["activity_id"], unique=False)
    op.create_table(
        "safety_verdicts",
        sa.Column("id", sa.UUID(), server_default=sa.text("gen_random_uuid()"), nullable=False),
        sa.Column("tenant_id", sa.UUID(), nullable=False),
        sa.Column("asset_id", sa.UUID(), nullable=False),
        sa.Column("activity_id", sa.UUID(), nullable=True),
        sa.Column(
            "gate",
            sa.Enum(
                "text",
                "visual",
                name="safety_gate",
                native_enum=False,
                create_constraint=True,
                length=32,
            ),
            nullable=False,
        ),
        sa.Column("passed", sa.Boolean(), nullable=False),
        sa.Column("category", sa.String(length=64), nullable=True),
        sa.Column("model_version", sa.String(length=200), nullable=True),
        sa.Column("policy_version", sa.String(length=64), nullable=False),
        sa.Column(
            "details",
            postgresql.JSONB(astext_type=sa.Text()),
            server_default=sa.text("'{}'::jsonb"),
            nullable=False,
        ),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.ForeignKeyConstraint(
            ["activity_id"],
            ["activities.id"],
            name=op.f("fk_safety_verdicts_activity_id_activities"),
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["asset_id"],
            ["assets.id"],
            name=op.f("fk_safety_verdicts_asset_id_assets"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["tenant_id"],
            ["tenants.id"],
            name=op.f("fk_safety_verdicts_tenant_id_tenants"),
            ondelete="RESTRICT",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_safety_verdicts")),
    )
    op.create_index(
        "ix_safety_verdicts_asset_id", "safety_verdicts", ["asset_id", "passed"], unique=False
    )
    op.create_table(
        "used",
        sa.Column("activity_id", sa.UUID(), nullable=False),
        sa.Column("asset_id", sa.UUID(), nullable=False),
        sa.Column("role", sa.String(length=64), nullable=False),
        sa.ForeignKeyConstraint(
            ["activity_id"],
            ["activities.id"],
            name=op.f("fk_used_activity_id_activities"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["asset_id"], ["assets.id"], name=op.f("fk_used_asset_id_assets"), ondelete="RESTRICT"
        ),
        sa.PrimaryKeyConstraint("activity_id", "asset_id", "role", name=op.f("pk_used")),
    )
    op.create_index("ix_used_asset_id", "used", ["asset_id"], unique=False)
    op.execute(PUBLISH_RULE)
    op.execute(APPEND_ONLY_VERDICTS)


def downgrade() -> None:
    """Downgrade schema."""
    op.execute("DROP TRIGGER IF EXISTS safety_verdicts_append_only ON safety_verdicts")
    op.execute("DROP FUNCTION IF EXISTS reelforge_verdicts_append_only()")
    op.execute("DROP TRIGGER IF EXISTS assets_publishable ON assets")
    op.execute("DROP FUNCTION IF EXISTS reelforge_assert_publishable()")
    op.drop_index("ix_used_asset_id", table_name="used")
    op.drop_table("used")
    op.drop_index("ix_safety_verdicts_asset_id", table_name="safety_verdicts")
    op.drop_table("safety_verdicts")
    op.drop_index("ix_generated_activity_id", table_name="generated")
    op.drop_table("generated")
    op.drop_index("ix_derived_from_source_id", table_name="derived_from")
    op.drop_table("derived_from")
    op.drop_index(
        "ix_assets_published_at",
        table_name="assets",
        postgresql_where=sa.text("published_at IS NOT NULL"),
    )
    op.drop_index(
        "ix_assets_campaign_id",
        table_name="assets",
        postgresql_where=sa.text("campaign_id IS NOT NULL"),
    )
    op.drop_table("assets")
    op.drop_table("campaigns")
    op.drop_table("audiences")
    op.drop_index("ix_activities_stage_started", table_name="activities")
    op.drop_index("ix_activities_model_version", table_name="activities")
    op.drop_index("ix_activities_flow_run_id", table_name="activities")
    op.drop_table("activities")
    op.drop_table("tenants")
