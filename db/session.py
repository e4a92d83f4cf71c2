"""Engine and sessions, built from settings (embedded PostgreSQL or REELFORGE_DATABASE_URL)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from functools import lru_cache

from sqlalchemy import Engine, create_engine
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session, sessionmaker

from reelforge.core.errors import ServiceUnavailable
from reelforge.core.settings import get_settings


@lru_cache(maxsize=4)
def engine_for(url: str) -> Engine:
    return create_engine(url, pool_pre_ping=True, pool_size=5, max_overflow=5)


def get_engine() -> Engine:
    return engine_for(get_settings().sqlalchemy_url)


@contextmanager
def session_scope() -> Iterator[Session]:
    """One transaction: committed when the block ends, rolled back on any error."""
    factory = sessionmaker(get_engine(), expire_on_commit=False)
    try:
        with factory.begin() as session:
            yield session
    except OperationalError as exc:
        raise ServiceUnavailable(
            "PostgreSQL is unreachable: run `reelforge up` or check REELFORGE_DATABASE_URL"
        ) from exc
