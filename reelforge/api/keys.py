"""Per-tenant API keys: ``rf_<prefix>_<secret>``, shown once, stored as a SHA-256.

Keys carry 256 bits of randomness, so a plain SHA-256 is as strong as a slow password
hash here and keeps authentication to one indexed lookup (the load goal is p95 < 50 ms).
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

from sqlalchemy import select
from sqlalchemy.orm import Session

from db.lineage import ensure_tenant
from db.models import ApiKey, Tenant
from reelforge.core.errors import InvalidInput

_KEY = re.compile(r"^rf_([0-9a-f]{12})_([A-Za-z0-9_-]{43})$")
TENANT_SLUG = re.compile(r"^[a-z0-9][a-z0-9-]{0,63}$")
CACHE_SECONDS = 10.0  # a revoked key stops working within this long


@dataclass(frozen=True)
class Principal:
    """Who is calling: every query the API makes is scoped to this tenant."""

    tenant_id: uuid.UUID
    tenant: str
    key_id: uuid.UUID


def hash_key(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def create_key(session: Session, tenant: str, name: str | None = None) -> tuple[str, ApiKey]:
    """A new key for ``tenant`` (created if missing); the plain key is returned only here."""
    if not TENANT_SLUG.match(tenant):
        raise InvalidInput(f"bad tenant {tenant!r}: use a-z, 0-9 and '-', at most 64 characters")
    row = ensure_tenant(session, tenant)
    prefix = secrets.token_hex(6)
    key = f"rf_{prefix}_{secrets.token_urlsafe(32)}"
    record = ApiKey(tenant_id=row.id, prefix=prefix, key_hash=hash_key(key), name=name)
    session.add(record)
    session.flush()
    return key, record


def revoke_key(session: Session, prefix: str) -> bool:
    from datetime import UTC, datetime

    record = session.scalars(select(ApiKey).where(ApiKey.prefix == prefix)).one_or_none()
    if record is None or record.revoked_at is not None:
        return False
    record.revoked_at = datetime.now(UTC)
    _cache.clear()
    return True


_cache: dict[str, tuple[float, str, Principal]] = {}
_cache_lock = threading.Lock()


def authenticate(session: Session, key: str | None) -> Principal | None:
    """The principal of a valid, unrevoked key; None for anything else."""
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
    if cached is not None and cached[0] > now:
        return cached[2] if hmac.compare_digest(cached[1], digest) else None
    row = session.execute(
        select(ApiKey.id, ApiKey.key_hash, Tenant.id, Tenant.slug)
        .join(Tenant, Tenant.id == ApiKey.tenant_id)
        .where(ApiKey.prefix == prefix, ApiKey.revoked_at.is_(None))
    ).one_or_none()
    if row is None:
        return None
    key_id, stored, tenant_id, slug = row
    principal = Principal(tenant_id=tenant_id, tenant=slug, key_id=key_id)
    with _cache_lock:
        if len(_cache) > 10_000:
            _cache.clear()
        _cache[prefix] = (now + CACHE_SECONDS, stored, principal)
    return principal if hmac.compare_digest(stored, digest) else None


def principal_of_key_id(session: Session, key_id: uuid.UUID) -> Principal | None:
    """The principal of a dashboard session (the key it logged in with must still be valid)."""
    row = session.execute(
        select(ApiKey.id, Tenant.id, Tenant.slug)
        .join(Tenant, Tenant.id == ApiKey.tenant_id)
        .where(ApiKey.id == key_id, ApiKey.revoked_at.is_(None))
    ).one_or_none()
    if row is None:
        return None
    return Principal(tenant_id=row[1], tenant=row[2], key_id=row[0])
