from __future__ import annotations

from alembic import context
from sqlalchemy import create_engine, pool

from db.models import Base
from reelforge.core.settings import get_settings

# Prefect keeps its own alembic_version table; ours must not collide with it when both
# live in one database.
VERSION_TABLE = "reelforge_alembic_version"


def _url() -> str:
    return context.config.attributes.get("url") or get_settings().sqlalchemy_url


def run_migrations_offline() -> None:
    context.configure(
        url=_url(),
        target_metadata=Base.metadata,
        literal_binds=True,
        version_table=VERSION_TABLE,
    )
    with context.begin_transaction():
        context.run_migrations()


def run_migrations_online() -> None:
    engine = create_engine(_url(), poolclass=pool.NullPool)
    with engine.connect() as connection:
        context.configure(
            connection=connection,
            target_metadata=Base.metadata,
            version_table=VERSION_TABLE,
            compare_type=True,
        )
        with context.begin_transaction():
            context.run_migrations()


if context.is_offline_mode():
    run_migrations_offline()
else:
    run_migrations_online()
