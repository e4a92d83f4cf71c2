"""Versions and review: a job's takes wait in `reviews` for a person's decision (no process
waits for it); the decision starts the run that publishes the chosen take.

Revision ID: 0010
Revises: 0009
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0010"
down_revision: str | Sequence[str] | None = "0009"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

STATUSES = ("awaiting_review", "approved", "published", "rejected")


def upgrade() -> None:
    listed = ", ".join(f"'{s}'" for s in STATUSES)
    op.create_table(
        "reviews",
        sa.Column("id", sa.UUID(), server_default=sa.text("gen_random_uuid()"), nullable=False),
        sa.Column("tenant_id", sa.UUID(), nullable=False),
        sa.Column("status", sa.String(length=32), nullable=False),
        sa.Column("job", postgresql.JSONB(astext_type=sa.Text()), nullable=False),
        sa.Column(
            "inputs",
            postgresql.JSONB(astext_type=sa.Text()),
            server_default=sa.text("'{}'::jsonb"),
            nullable=False,
        ),
        sa.Column(
            "takes",
            postgresql.JSONB(astext_type=sa.Text()),
            server_default=sa.text("'[]'::jsonb"),
            nullable=False,
        ),
        sa.Column("flow_run_id", sa.UUID(), nullable=True),
        sa.Column("campaign_id", sa.UUID(), nullable=True),
        sa.Column("on_timeout", sa.String(length=32), server_default="reject", nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("pick", sa.Integer(), nullable=True),
        sa.Column("decided_by", sa.String(length=200), nullable=True),
        sa.Column("note", sa.Text(), nullable=True),
        sa.Column("decided_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("decision_flow_run_id", sa.UUID(), nullable=True),
        sa.Column("result", postgresql.JSONB(astext_type=sa.Text()), nullable=True),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.CheckConstraint(f"status IN ({listed})", name=op.f("ck_reviews_review_status")),
        sa.CheckConstraint(
            "(status = 'awaiting_review') = (decided_at IS NULL)",
            name=op.f("ck_reviews_decided_when_not_waiting"),
        ),
        sa.CheckConstraint(
            "(status IN ('approved', 'published')) = (pick IS NOT NULL)",
            name=op.f("ck_reviews_pick_when_approved"),
        ),
        sa.CheckConstraint(
            "(status = 'published') = (result IS NOT NULL)",
            name=op.f("ck_reviews_result_when_published"),
        ),
        sa.ForeignKeyConstraint(
            ["tenant_id"],
            ["tenants.id"],
            name=op.f("fk_reviews_tenant_id_tenants"),
            ondelete="RESTRICT",
        ),
        sa.ForeignKeyConstraint(
            ["campaign_id"],
            ["campaigns.id"],
            name=op.f("fk_reviews_campaign_id_campaigns"),
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_reviews")),
    )
    op.create_index(
        "ix_reviews_tenant_status", "reviews", ["tenant_id", "status", "created_at"], unique=False
    )
    op.create_index(
        "ix_reviews_expiring",
        "reviews",
        ["expires_at"],
        unique=False,
        postgresql_where=sa.text("status = 'awaiting_review'"),
    )


def downgrade() -> None:
    op.drop_index("ix_reviews_expiring", table_name="reviews")
    op.drop_index("ix_reviews_tenant_status", table_name="reviews")
    op.drop_table("reviews")
