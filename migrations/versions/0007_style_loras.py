"""Brand styles: a tenant's style LoRAs, registered by name (the file is a `style_lora` asset).

Revision ID: 0007
Revises: 0006
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0007"
down_revision: str | Sequence[str] | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

KINDS = (
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
)


def _asset_kinds(kinds: Sequence[str]) -> None:
    op.drop_constraint(op.f("ck_assets_asset_kind"), "assets", type_="check")
    listed = ", ".join(f"'{k}'" for k in kinds)
    op.create_check_constraint(op.f("ck_assets_asset_kind"), "assets", f"kind IN ({listed})")


def upgrade() -> None:
    _asset_kinds((*KINDS, "style_lora"))
    op.create_table(
        "styles",
        sa.Column("tenant_id", sa.UUID(), nullable=False),
        sa.Column("name", sa.String(length=64), nullable=False),
        sa.Column("asset_id", sa.UUID(), nullable=False),
        sa.Column(
            "created_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False
        ),
        sa.CheckConstraint(
            "name ~ '^[a-z0-9][a-z0-9-]{0,63}$'", name=op.f("ck_styles_name_format")
        ),
        sa.ForeignKeyConstraint(
            ["tenant_id"],
            ["tenants.id"],
            name=op.f("fk_styles_tenant_id_tenants"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["asset_id"],
            ["assets.id"],
            name=op.f("fk_styles_asset_id_assets"),
            ondelete="RESTRICT",
        ),
        sa.PrimaryKeyConstraint("tenant_id", "name", name=op.f("pk_styles")),
    )


def downgrade() -> None:
    op.drop_table("styles")
    op.execute(
        "DELETE FROM used WHERE asset_id IN (SELECT id FROM assets WHERE kind = 'style_lora')"
    )
    op.execute("DELETE FROM assets WHERE kind = 'style_lora'")
    _asset_kinds(KINDS)
