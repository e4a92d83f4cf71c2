"""Index raw clips by generation cache key, so a repeated request is found in O(log n).

Revision ID: 0002
Revises: 0001
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: str | Sequence[str] | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_index(
        "ix_assets_cache_key",
        "assets",
        ["tenant_id", "kind", sa.text("(media ->> 'cache_key')")],
    )


def downgrade() -> None:
    op.drop_index("ix_assets_cache_key", table_name="assets")
