"""Which API key submitted a job: the dashboard and `GET /v1/videos/{id}` say who made a
video. Deleting a key keeps its jobs (the column is emptied).

Revision ID: 0009
Revises: 0008
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0009"
down_revision: str | Sequence[str] | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("video_jobs", sa.Column("key_id", sa.UUID(), nullable=True))
    op.create_foreign_key(
        op.f("fk_video_jobs_key_id_api_keys"),
        "video_jobs",
        "api_keys",
        ["key_id"],
        ["id"],
        ondelete="SET NULL",
    )


def downgrade() -> None:
    op.drop_constraint(op.f("fk_video_jobs_key_id_api_keys"), "video_jobs", type_="foreignkey")
    op.drop_column("video_jobs", "key_id")
