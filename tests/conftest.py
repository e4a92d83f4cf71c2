"""Shared fixtures: a real local stack (PostgreSQL, S3, Prefect) for the whole session.

Unless the environment points elsewhere, tests run their own stack under
``.reelforge-test/`` on ports that do not collide with a developer's `reelforge up`.
External services are used as-is when REELFORGE_DATABASE_URL / REELFORGE_S3_ENDPOINT /
PREFECT_API_URL are set.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent

TEST_DEFAULTS = {
    "REELFORGE_HOME": str(REPO / ".reelforge-test"),
    "REELFORGE_PG_PORT": "25432",
    "REELFORGE_S3_PORT": "28333",
    "REELFORGE_PREFECT_PORT": "24200",
}


def pytest_configure(config: pytest.Config) -> None:
    for key, value in TEST_DEFAULTS.items():
        os.environ.setdefault(key, value)


@pytest.fixture(autouse=True)
def _no_clips_from_other_tests() -> Iterator[None]:
    """Every test starts without the clips earlier tests left in the resident generator's
    memory: a clip made in another test's batch (other batch, other pixels) must not stand in
    for one this test generates, or one test's outcome would depend on which ran before."""
    import sys

    service = sys.modules.get("models.service")
    if service is not None and service._SERVICE is not None:
        service._SERVICE._results.clear()
    yield


@pytest.fixture(scope="session")
def settings():
    from reelforge.core.settings import get_settings

    get_settings.cache_clear()
    return get_settings()


@pytest.fixture(scope="session")
def stack(settings) -> Iterator[object]:
    """The running stack; started if needed, stopped at the end only if we started it."""
    from reelforge.core.orchestration import configure_prefect
    from reelforge.ops import stack as local_stack

    was_healthy = all(s.healthy for s in local_stack.status(settings).values())
    local_stack.up(settings)
    configure_prefect(settings)
    yield settings
    if not was_healthy and os.environ.get("REELFORGE_TEST_KEEP_STACK") != "1":
        local_stack.down(settings)


@pytest.fixture
def db(stack):
    """A session in a transaction that is rolled back: tests leave no rows behind."""
    from sqlalchemy.orm import Session

    from db.session import get_engine

    connection = get_engine().connect()
    transaction = connection.begin()
    session = Session(bind=connection, join_transaction_mode="create_savepoint")
    try:
        yield session
    finally:
        session.close()
        transaction.rollback()
        connection.close()


@pytest.fixture
def tenant(db):
    from db.lineage import ensure_tenant

    return ensure_tenant(db, f"t-{uuid.uuid4().hex[:12]}")


@pytest.fixture
def store(stack):
    from reelforge.core.storage import ObjectStore

    return ObjectStore(stack)


@pytest.fixture
def make_asset(db, tenant):
    """Create an asset of a kind with unique content; returns the ORM object."""
    import hashlib

    from db.lineage import get_or_create_asset
    from db.models import AssetKind

    def make(kind: str = "prompt", content: bytes | None = None, **media):
        data = content if content is not None else uuid.uuid4().bytes
        sha = hashlib.sha256(data).hexdigest()
        asset, _ = get_or_create_asset(
            db,
            tenant_id=tenant.id,
            kind=AssetKind(kind),
            sha256=sha,
            size_bytes=len(data),
            uri=f"s3://test/{sha}",
            media_type="application/octet-stream",
            media=media,
        )
        return asset

    return make
