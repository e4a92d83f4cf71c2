"""Engine and sessions, built from settings (embedded PostgreSQL or REELFORGE_DATABASE_URL)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from functools import lru_cache

from sqlalchemy import Engine, create_engine
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session, sessionmaker

from reelforge.core.errors import InvalidInput, ServiceUnavailable
from reelforge.core.settings import PG_PASSWORD_SECRET, Settings, get_settings

# What PostgreSQL (libpq) says when the password is wrong or missing.
_REFUSED = ("password authentication failed", "no password supplied")


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
        refused = password_refused(get_settings(), exc)
        if refused is not None:
            raise refused from exc
        raise ServiceUnavailable(
            "PostgreSQL is unreachable: run `reelforge up` or check REELFORGE_DATABASE_URL"
        ) from exc


def password_source(settings: Settings) -> str:
    """Where the database password in use comes from: the secret to fix when refused."""
    if not settings.uses_embedded_postgres:
        return "REELFORGE_DATABASE_URL"
    if settings.pg_password is not None:
        return "REELFORGE_PG_PASSWORD"
    return f"{settings.secrets_dir / PG_PASSWORD_SECRET} (or REELFORGE_PG_PASSWORD)"


def password_refused(settings: Settings, exc: BaseException) -> InvalidInput | None:
    """The one-line error for a connection PostgreSQL refused for its password; None when
    ``exc`` is anything else."""
    if not any(reason in str(exc) for reason in _REFUSED):
        return None
    return InvalidInput(f"PostgreSQL refused the password: fix {password_source(settings)}")
