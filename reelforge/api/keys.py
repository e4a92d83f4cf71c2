"""Per-tenant API keys: ``rf_<prefix>_<secret>``, shown once, stored as a SHA-256; and the
dashboard sessions opened with them.

Keys carry 256 bits of randomness, so a plain SHA-256 is as strong as a slow password
hash here and keeps authentication to one indexed lookup (the load goal is p95 < 50 ms).
A key may expire; an operator key also sees Prefect (the dashboard's Prefect UI links).
Dashboard sessions are rows (``dashboard_sessions``): logout deletes the row, revoking or
expiring the key ends every session opened with it, at once.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
import threading
import time
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import delete, or_, select
from sqlalchemy.orm import Session

from db.lineage import ensure_tenant
from db.models import ApiKey, DashboardSession, Tenant
from reelforge.core.errors import InvalidInput

_KEY = re.compile(r"^rf_([0-9a-f]{12})_([A-Za-z0-9_-]{43})$")
_DURATION = re.compile(r"^([1-9][0-9]{0,5})([hdw])$")
_UNITS = {"h": "hours", "d": "days", "w": "weeks"}
TENANT_SLUG = re.compile(r"^[a-z0-9][a-z0-9-]{0,63}$")
CACHE_SECONDS = 10.0  # a key revoked from another process stops working within this long


@dataclass(frozen=True)
class Principal:
    """Who is calling: every query the API makes is scoped to this tenant."""

    tenant_id: uuid.UUID
    tenant: str
    key_id: uuid.UUID
    operator: bool = False


class KeyExpired(InvalidInput):
    """A valid key past its expiry: the caller must create a new one."""

    def __init__(self, prefix: str, tenant: str, expired_at: datetime) -> None:
        super().__init__(
            f"API key rf_{prefix}_... expired at {expired_at:%Y-%m-%d %H:%M} UTC: create a new "
            f"one (`reelforge api-key create {tenant}`) and use it instead"
        )


def hash_key(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def parse_duration(text: str) -> timedelta:
    """``12h``, ``30d`` or ``8w`` as a timedelta."""
    match = _DURATION.match(text.strip())
    if match is None:
        raise InvalidInput(
            f"bad duration {text!r}: write a whole number and h, d or w (e.g. 12h, 30d, 8w)"
        )
    return timedelta(**{_UNITS[match.group(2)]: int(match.group(1))})


def create_key(
    session: Session,
    tenant: str,
    name: str | None = None,
    *,
    expires_in: timedelta | None = None,
    operator: bool = False,
) -> tuple[str, ApiKey]:
    """A new key for ``tenant`` (created if missing); the plain key is returned only here."""
    if not TENANT_SLUG.match(tenant):
        raise InvalidInput(f"bad tenant {tenant!r}: use a-z, 0-9 and '-', at most 64 characters")
    row = ensure_tenant(session, tenant)
    prefix = secrets.token_hex(6)
    key = f"rf_{prefix}_{secrets.token_urlsafe(32)}"
    record = ApiKey(
        tenant_id=row.id,
        prefix=prefix,
        key_hash=hash_key(key),
        name=name,
        expires_at=datetime.now(UTC) + expires_in if expires_in is not None else None,
        operator=operator,
    )
    session.add(record)
    session.flush()
    return key, record


def list_keys(session: Session, tenant: str | None = None) -> list[dict[str, Any]]:
    """Every key (of ``tenant``), newest first, as the CLI shows it: never the key itself."""
    query = (
        select(ApiKey, Tenant.slug)
        .join(Tenant, Tenant.id == ApiKey.tenant_id)
        .order_by(ApiKey.created_at.desc())
    )
    if tenant is not None:
        query = query.where(Tenant.slug == tenant)
    now = datetime.now(UTC)
    out = []
    for key, slug in session.execute(query):
        state = "active"
        if key.revoked_at is not None:
            state = "revoked"
        elif key.expires_at is not None and key.expires_at <= now:
            state = "expired"
        out.append(
            {
                "id": str(key.id),
                "prefix": key.prefix,
                "tenant": slug,
                "name": key.name,
                "operator": key.operator,
                "state": state,
                "created_at": key.created_at.isoformat(),
                "expires_at": key.expires_at.isoformat() if key.expires_at else None,
                "revoked_at": key.revoked_at.isoformat() if key.revoked_at else None,
            }
        )
    return out


def key_labels(session: Session, key_ids: list[uuid.UUID]) -> dict[uuid.UUID, str]:
    """How a key is shown as the one that made something: its name, else its prefix."""
    if not key_ids:
        return {}
    rows = session.execute(
        select(ApiKey.id, ApiKey.name, ApiKey.prefix).where(ApiKey.id.in_(set(key_ids)))
    )
    return {key_id: name or prefix for key_id, name, prefix in rows}


def revoke_key(session: Session, ident: str) -> ApiKey | None:
    """Revoke the active key with this id or prefix and end its dashboard sessions; None if
    there is no such active key."""
    try:
        match = ApiKey.id == uuid.UUID(ident)
    except ValueError:
        match = ApiKey.prefix == ident
    record = session.scalars(select(ApiKey).where(match)).one_or_none()
    if record is None or record.revoked_at is not None:
        return None
    record.revoked_at = datetime.now(UTC)
    session.execute(delete(DashboardSession).where(DashboardSession.key_id == record.id))
    with _cache_lock:
        _cache.clear()
    return record


@dataclass(frozen=True)
class _Cached:
    until: float
    key_hash: str
    principal: Principal
    expires_at: datetime | None


_cache: dict[str, _Cached] = {}
_cache_lock = threading.Lock()


def authenticate(session: Session, key: str | None) -> Principal | None:
    """The principal of a valid, unrevoked key; None for anything else. A right key past its
    expiry raises :class:`KeyExpired` (only after the secret matched)."""
    if not key:
        return None
    match = _KEY.match(key)
    if match is None:
        return None
    prefix = match.group(1)
    digest = hash_key(key)
    now = time.monotonic()
    with _cache_lock:
        cached = _cache.get(prefix)
    if cached is None or cached.until <= now:
        row = session.execute(
            select(
                ApiKey.id,
                ApiKey.key_hash,
                ApiKey.expires_at,
                ApiKey.operator,
                Tenant.id,
                Tenant.slug,
            )
            .join(Tenant, Tenant.id == ApiKey.tenant_id)
            .where(ApiKey.prefix == prefix, ApiKey.revoked_at.is_(None))
        ).one_or_none()
        if row is None:
            return None
        key_id, stored, expires_at, operator, tenant_id, slug = row
        principal = Principal(tenant_id=tenant_id, tenant=slug, key_id=key_id, operator=operator)
        cached = _Cached(now + CACHE_SECONDS, stored, principal, expires_at)
        with _cache_lock:
            if len(_cache) > 10_000:
                _cache.clear()
            _cache[prefix] = cached
    if not hmac.compare_digest(cached.key_hash, digest):
        return None
    if cached.expires_at is not None and cached.expires_at <= datetime.now(UTC):
        raise KeyExpired(prefix, cached.principal.tenant, cached.expires_at)
    return cached.principal


def _usable_key() -> Any:
    return (
        ApiKey.revoked_at.is_(None),
        or_(ApiKey.expires_at.is_(None), ApiKey.expires_at > datetime.now(UTC)),
    )


def open_session(session: Session, principal: Principal, lifetime: timedelta) -> uuid.UUID:
    """A dashboard session for the principal's key; its id goes into the signed cookie."""
    row = DashboardSession(key_id=principal.key_id, expires_at=datetime.now(UTC) + lifetime)
    session.add(row)
    session.flush()
    return row.id


def session_principal(session: Session, session_id: uuid.UUID) -> Principal | None:
    """The principal of a live dashboard session (not logged out or expired, and the key it
    was opened with neither revoked nor expired)."""
    row = session.execute(
        select(ApiKey.id, ApiKey.operator, Tenant.id, Tenant.slug)
        .select_from(DashboardSession)
        .join(ApiKey, ApiKey.id == DashboardSession.key_id)
        .join(Tenant, Tenant.id == ApiKey.tenant_id)
        .where(
            DashboardSession.id == session_id,
            DashboardSession.expires_at > datetime.now(UTC),
            *_usable_key(),
        )
    ).one_or_none()
    if row is None:
        return None
    key_id, operator, tenant_id, slug = row
    return Principal(tenant_id=tenant_id, tenant=slug, key_id=key_id, operator=operator)


def close_session(session: Session, session_id: uuid.UUID) -> None:
    """Logout: the session's row goes, so its cookie is worthless from now on."""
    session.execute(delete(DashboardSession).where(DashboardSession.id == session_id))
