"""An API video job with a review: its takes (versions) go to the versions flow, which ends
with a review (docs/review.md) instead of a published video.

Revision ID: 0011
Revises: 0010
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0011"
down_revision: str | Sequence[str] | None = "0010"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column(
        "video_jobs", sa.Column("review", sa.Boolean(), server_default=sa.false(), nullable=False)
    )
    op.add_column(
        "video_jobs",
        sa.Column("versions", sa.Integer(), server_default=sa.text("1"), nullable=False),
    )


def downgrade() -> None:
    op.drop_column("video_jobs", "versions")
    op.drop_column("video_jobs", "review")
