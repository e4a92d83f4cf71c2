"""Dependencies: the settings, a DB session per request, the caller (401 without a valid key)."""

from __future__ import annotations

from collections.abc import Iterator

from fastapi import Depends, Header, HTTPException, Request
from fastapi.security import APIKeyHeader, HTTPAuthorizationCredentials, HTTPBearer
from sqlalchemy.orm import Session

from db.session import session_scope
from reelforge.api.keys import KeyExpired, Principal, authenticate
from reelforge.core.settings import Settings
from reelforge.core.storage import ObjectStore

bearer = HTTPBearer(auto_error=False, description="The tenant's API key: `Bearer rf_...`.")
api_key_header = APIKeyHeader(name="X-API-Key", auto_error=False)


def get_settings_dep(request: Request) -> Settings:
    return request.app.state.settings


def get_store(request: Request) -> ObjectStore:
    return request.app.state.objects


def get_session() -> Iterator[Session]:
    with session_scope() as session:
        yield session


def get_principal(
    session: Session = Depends(get_session),
    credentials: HTTPAuthorizationCredentials | None = Depends(bearer),
    header_key: str | None = Depends(api_key_header),
) -> Principal:
    key = credentials.credentials if credentials is not None else header_key
    try:
        principal = authenticate(session, key)
    except KeyExpired as exc:
        raise _unauthorised(str(exc)) from None
    if principal is None:
        raise _unauthorised("missing or invalid API key: send Authorization: Bearer rf_...")
    return principal


def get_idempotency_key(
    key: str | None = Header(
        default=None,
        alias="Idempotency-Key",
        min_length=1,
        max_length=255,
        pattern=r"^[!-~]+$",
        description="Send the same key again (same request) to get the same answer and no "
        "new job; 1-255 printable ASCII characters, no spaces.",
    ),
) -> str | None:
    return key


def _unauthorised(message: str) -> HTTPException:
    return HTTPException(status_code=401, detail=message, headers={"WWW-Authenticate": "Bearer"})
