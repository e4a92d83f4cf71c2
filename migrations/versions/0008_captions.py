"""Storyboard ads: their captions (WebVTT and SRT) are assets of kind `captions`, and an ad
submitted over the HTTP API is a job of kind `ad`.

Revision ID: 0008
Revises: 0007
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0008"
down_revision: str | Sequence[str] | None = "0007"
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
    "style_lora",
)


def _asset_kinds(kinds: Sequence[str]) -> None:
    op.drop_constraint(op.f("ck_assets_asset_kind"), "assets", type_="check")
    listed = ", ".join(f"'{k}'" for k in kinds)
    op.create_check_constraint(op.f("ck_assets_asset_kind"), "assets", f"kind IN ({listed})")


def _job_kinds(kinds: Sequence[str]) -> None:
    op.drop_constraint(op.f("ck_video_jobs_kind_known"), "video_jobs", type_="check")
    listed = ", ".join(f"'{k}'" for k in kinds)
    op.create_check_constraint(
        op.f("ck_video_jobs_kind_known"), "video_jobs", f"kind IN ({listed})"
    )


def upgrade() -> None:
    _asset_kinds((*KINDS, "captions"))
    _job_kinds(("video", "campaign", "ad"))


def downgrade() -> None:
    op.execute("DELETE FROM used WHERE asset_id IN (SELECT id FROM assets WHERE kind = 'captions')")
    op.execute("DELETE FROM assets WHERE kind = 'captions'")
    _asset_kinds(KINDS)
    op.execute("DELETE FROM video_jobs WHERE kind = 'ad'")
    _job_kinds(("video", "campaign"))
