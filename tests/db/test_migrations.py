"""Migrations build the schema from nothing, tear it down, and match the models exactly."""

from __future__ import annotations

import uuid

import psycopg
import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import create_engine, inspect
from sqlalchemy.engine import make_url

from db.migrate import downgrade_base, upgrade_head
from db.models import Base


@pytest.fixture
def empty_database(stack):
    """A brand-new database on the same server, dropped afterwards."""
    url = make_url(stack.sqlalchemy_url)
    name = f"mig_{uuid.uuid4().hex[:10]}"
    admin = dict(host=url.host, port=url.port, user=url.username, password=url.password)
    with psycopg.connect(**admin, dbname="postgres", autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    yield url.set(database=name).render_as_string(hide_password=False)
    with psycopg.connect(**admin, dbname="postgres", autocommit=True) as conn:
        conn.execute(f'DROP DATABASE "{name}" WITH (FORCE)')


def _tables(url: str) -> set[str]:
    engine = create_engine(url)
    try:
        return set(inspect(engine).get_table_names())
    finally:
        engine.dispose()


def test_upgrade_from_empty_then_downgrade_to_base(empty_database):
    upgrade_head(empty_database)
    assert {"assets", "activities", "used", "generated", "derived_from", "safety_verdicts"} <= (
        _tables(empty_database)
    )
    downgrade_base(empty_database)
    assert _tables(empty_database) <= {"reelforge_alembic_version"}


def test_autogenerate_finds_no_drift(empty_database):
    upgrade_head(empty_database)
    engine = create_engine(empty_database)
    try:
        with engine.connect() as conn:
            context = MigrationContext.configure(
                conn, opts={"compare_type": True, "version_table": "reelforge_alembic_version"}
            )
            diff = compare_metadata(context, Base.metadata)
    finally:
        engine.dispose()
    assert diff == []
