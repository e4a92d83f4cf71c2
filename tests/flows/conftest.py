from __future__ import annotations

import uuid

import pytest

from tests.flows.pools import pools  # noqa: F401  (fixture: work pools of a test's own)


@pytest.fixture
def tenant_slug() -> str:
    return f"e2e-{uuid.uuid4().hex[:10]}"


@pytest.fixture
def committed():
    """Read committed lineage in a fresh transaction."""
    from db.session import session_scope

    def query(sql: str, **params):
        from sqlalchemy import text

        with session_scope() as session:
            return session.execute(text(sql), params).all()

    return query
