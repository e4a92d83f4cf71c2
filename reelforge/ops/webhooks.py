"""Webhook endpoints and delivery: the outbox (``db/webhooks.py``) drained over HTTP.

Delivery follows the Standard Webhooks spec (``standardwebhooks`` signs: ``webhook-id`` is
the outbox row id, so receivers dedupe on it), at least once: a row is leased, POSTed, and
only then marked delivered; a crash in between delivers it again after the lease. Failed
attempts back off exponentially (``REELFORGE_WEBHOOK_RETRY_*``) until the retry window
ends. Every attempt is logged in ``webhook_deliveries``.

URLs must be http(s) and resolve to public addresses (private, loopback, link-local and
reserved ones are refused unless ``REELFORGE_WEBHOOK_ALLOW_PRIVATE``), checked when an
endpoint is added and again before each delivery (DNS can change); redirects are not followed.
"""

from __future__ import annotations

import base64
import ipaddress
import json
import logging
import secrets
import socket
import time
import uuid
from datetime import UTC, datetime, timedelta
from urllib.parse import urlsplit

import httpx
from pydantic import BaseModel
from sqlalchemy import delete, select, true, update
from sqlalchemy.orm import Session
from standardwebhooks import Webhook

from db import lineage
from db.models import OutboxStatus, Tenant, WebhookDelivery, WebhookEndpoint, WebhookOutbox
from db.session import session_scope
from db.webhooks import WEBHOOK_EVENTS
from reelforge.core.errors import InvalidInput
from reelforge.core.settings import Settings, get_settings

log = logging.getLogger("reelforge.webhooks")


class EndpointInfo(BaseModel):
    id: uuid.UUID
    tenant: str
    url: str
    events: list[str]
    created_at: datetime


class DeliveryInfo(BaseModel):
    """An outbox row and how its last delivery attempt went."""

    event_id: uuid.UUID
    tenant: str
    endpoint_id: uuid.UUID
    url: str
    event_type: str
    status: str
    attempts: int
    created_at: datetime
    next_attempt_at: datetime | None
    delivered_at: datetime | None
    last_status_code: int | None = None
    last_error: str | None = None


class DeliveryRound(BaseModel):
    attempted: int = 0
    delivered: int = 0
    failed: int = 0


# --- endpoints ---------------------------------------------------------------------------


def parse_events(text: str) -> list[str]:
    """``video.completed,video.failed`` -> the names, refusing unknown ones."""
    events = list(dict.fromkeys(name.strip() for name in text.split(",") if name.strip()))
    unknown = [name for name in events if name not in WEBHOOK_EVENTS]
    if unknown or not events:
        raise InvalidInput(
            f"unknown webhook event {', '.join(unknown) or '(none given)'}: "
            f"use a comma-separated list of {', '.join(WEBHOOK_EVENTS)}"
        )
    return events


def check_url(url: str, settings: Settings | None = None) -> None:
    """Refuse URLs that are not http(s) or that resolve to a non-public address."""
    settings = settings or get_settings()
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise InvalidInput(f"webhook URL {url!r} is not http(s): give http(s)://host/path")
    if settings.webhook_allow_private:
        return
    try:
        infos = socket.getaddrinfo(parts.hostname, parts.port or 443, proto=socket.IPPROTO_TCP)
    except (socket.gaierror, UnicodeError) as exc:
        raise InvalidInput(f"webhook host {parts.hostname!r} does not resolve: {exc}") from exc
    for info in infos:
        address = ipaddress.ip_address(info[4][0])
        if not address.is_global or address.is_multicast:
            raise InvalidInput(
                f"webhook URL {url!r} resolves to {address}, a private, loopback, link-local "
                "or reserved address: use a public URL (REELFORGE_WEBHOOK_ALLOW_PRIVATE=true "
                "allows it for local use)"
            )


def new_secret() -> str:
    """A Standard Webhooks signing secret: ``whsec_`` and 32 random bytes in base64."""
    return "whsec_" + base64.b64encode(secrets.token_bytes(32)).decode()


def add_endpoint(tenant: str, url: str, events: list[str]) -> tuple[EndpointInfo, str]:
    """Register ``url`` for ``events``; returns the endpoint and its secret (shown once)."""
    check_url(url)
    secret = new_secret()
    with session_scope() as session:
        row = lineage.ensure_tenant(session, tenant)
        endpoint = WebhookEndpoint(tenant_id=row.id, url=url, events=events, secret=secret)
        session.add(endpoint)
        session.flush()
        return _endpoint_info(endpoint, tenant), secret


def list_endpoints(tenant: str | None = None) -> list[EndpointInfo]:
    with session_scope() as session:
        query = (
            select(WebhookEndpoint, Tenant.slug)
            .join(Tenant, Tenant.id == WebhookEndpoint.tenant_id)
            .where(WebhookEndpoint.disabled_at.is_(None))
            .order_by(WebhookEndpoint.created_at)
        )
        if tenant is not None:
            query = query.where(Tenant.slug == tenant)
        return [_endpoint_info(row, slug) for row, slug in session.execute(query)]


def remove_endpoint(endpoint_id: uuid.UUID, tenant: str | None = None) -> None:
    """Delete an endpoint (its queued events and delivery log go with it)."""
    with session_scope() as session:
        query = delete(WebhookEndpoint).where(WebhookEndpoint.id == endpoint_id)
        if tenant is not None:
            query = query.where(WebhookEndpoint.tenant_id == _tenant_id(session, tenant))
        if session.execute(query).rowcount == 0:
            raise InvalidInput(f"no webhook endpoint {endpoint_id}: see `reelforge webhook list`")


def _endpoint_info(row: WebhookEndpoint, tenant: str) -> EndpointInfo:
    return EndpointInfo(
        id=row.id, tenant=tenant, url=row.url, events=row.events, created_at=row.created_at
    )


def _tenant_id(session: Session, tenant: str) -> uuid.UUID | None:
    return session.scalars(select(Tenant.id).where(Tenant.slug == tenant)).first()


# --- delivery ----------------------------------------------------------------------------


def deliver_due(limit: int = 50, settings: Settings | None = None) -> DeliveryRound:
    """Deliver up to ``limit`` due outbox rows once each; safe to run in several processes."""
    settings = settings or get_settings()
    round_ = DeliveryRound()
    leased = _lease(limit, settings)
    if not leased:
        return round_
    with httpx.Client(timeout=settings.webhook_timeout_seconds, follow_redirects=False) as client:
        for event_id, url, secret, body in leased:
            status_code, error, took_ms = _post(client, event_id, url, secret, body, settings)
            delivered = error is None
            _record_attempt(event_id, status_code, error, took_ms, delivered, settings)
            round_.attempted += 1
            round_.delivered += delivered
            round_.failed += not delivered
    return round_


def deliver_soon(limit: int = 20) -> None:
    """One delivery round after a CLI run, never failing it: what is not delivered now
    stays in the outbox for `reelforge webhook deliver` or the API's dispatcher."""
    try:
        deliver_due(limit)
    except Exception as exc:
        log.warning("webhook delivery after the run failed: %s", " ".join(str(exc).split()))


def _lease(limit: int, settings: Settings) -> list[tuple[uuid.UUID, str, str, str]]:
    """Claim due rows (SKIP LOCKED: concurrent deliverers take different rows) by moving
    their next attempt past the time a delivery can take; commit, then deliver."""
    lease = timedelta(seconds=settings.webhook_timeout_seconds * 2 + 30)
    with session_scope() as session:
        query = (
            select(
                WebhookOutbox.id, WebhookOutbox.payload, WebhookEndpoint.url, WebhookEndpoint.secret
            )
            .join(WebhookEndpoint, WebhookEndpoint.id == WebhookOutbox.endpoint_id)
            .where(
                WebhookOutbox.status == OutboxStatus.pending,
                WebhookOutbox.next_attempt_at <= datetime.now(UTC),
            )
            .order_by(WebhookOutbox.next_attempt_at)
            .limit(limit)
            .with_for_update(of=WebhookOutbox, skip_locked=True)
        )
        rows = session.execute(query).all()
        if not rows:
            return []
        ids = [row.id for row in rows]
        session.execute(
            update(WebhookOutbox)
            .where(WebhookOutbox.id.in_(ids))
            .values(next_attempt_at=datetime.now(UTC) + lease)
        )
        return [
            (row.id, row.url, row.secret, json.dumps(row.payload, separators=(",", ":")))
            for row in rows
        ]


def _post(
    client: httpx.Client,
    event_id: uuid.UUID,
    url: str,
    secret: str,
    body: str,
    settings: Settings,
) -> tuple[int | None, str | None, int]:
    """POST one signed event; (status code, error or None on a 2xx, milliseconds)."""
    started = time.monotonic()
    try:
        check_url(url, settings)
        now = datetime.now(UTC)
        msg_id = str(event_id)
        headers = {
            "content-type": "application/json",
            "webhook-id": msg_id,
            "webhook-timestamp": str(int(now.timestamp())),
            "webhook-signature": Webhook(secret).sign(msg_id, now, body),
        }
        response = client.post(url, content=body.encode(), headers=headers)
    except (InvalidInput, httpx.HTTPError) as exc:
        error = " ".join(f"{type(exc).__name__}: {exc}".split())[:500]
        return None, error, round((time.monotonic() - started) * 1000)
    took = round((time.monotonic() - started) * 1000)
    if response.is_success:
        return response.status_code, None, took
    error = f"HTTP {response.status_code}"
    if response.is_redirect:
        error += " (a redirect: not followed)"
    return response.status_code, error, took


def _record_attempt(
    event_id: uuid.UUID,
    status_code: int | None,
    error: str | None,
    took_ms: int,
    delivered: bool,
    settings: Settings,
) -> None:
    now = datetime.now(UTC)
    with session_scope() as session:
        row = session.get_one(WebhookOutbox, event_id, with_for_update=True)
        session.add(
            WebhookDelivery(
                outbox_id=event_id,
                status_code=status_code,
                error=error,
                duration_ms=took_ms,
                succeeded=delivered,
            )
        )
        row.attempts += 1
        if delivered:
            row.status, row.delivered_at = OutboxStatus.delivered, now
            return
        delay = min(
            settings.webhook_retry_base_seconds * 2 ** (row.attempts - 1),
            settings.webhook_retry_max_seconds,
        )
        row.next_attempt_at = now + timedelta(seconds=delay)
        window = timedelta(hours=settings.webhook_retry_window_hours)
        if row.next_attempt_at - row.created_at > window:
            row.status = OutboxStatus.failed
            log.warning("webhook %s to endpoint %s: gave up (%s)", event_id, row.endpoint_id, error)


def redeliver(event_id: uuid.UUID, tenant: str | None = None) -> None:
    """Queue an event again now, whatever its state (same ``webhook-id``: receivers that
    already have it drop it)."""
    with session_scope() as session:
        query = (
            update(WebhookOutbox)
            .where(WebhookOutbox.id == event_id)
            .values(
                status=OutboxStatus.pending, delivered_at=None, next_attempt_at=datetime.now(UTC)
            )
        )
        if tenant is not None:
            query = query.where(WebhookOutbox.tenant_id == _tenant_id(session, tenant))
        if session.execute(query).rowcount == 0:
            raise InvalidInput(f"no webhook event {event_id}: see `reelforge webhook deliveries`")


def recent_deliveries(tenant: str | None = None, limit: int = 100) -> list[DeliveryInfo]:
    """The newest outbox rows with the outcome of their last attempt."""
    with session_scope() as session:
        last = (
            select(WebhookDelivery.status_code, WebhookDelivery.error)
            .where(WebhookDelivery.outbox_id == WebhookOutbox.id)
            .order_by(WebhookDelivery.attempted_at.desc())
            .limit(1)
            .lateral()
        )
        query = (
            select(
                WebhookOutbox, WebhookEndpoint.url, Tenant.slug, last.c.status_code, last.c.error
            )
            .join(WebhookEndpoint, WebhookEndpoint.id == WebhookOutbox.endpoint_id)
            .join(Tenant, Tenant.id == WebhookOutbox.tenant_id)
            .outerjoin(last, true())
            .order_by(WebhookOutbox.created_at.desc())
            .limit(limit)
        )
        if tenant is not None:
            query = query.where(Tenant.slug == tenant)
        return [
            DeliveryInfo(
                event_id=row.id,
                tenant=slug,
                endpoint_id=row.endpoint_id,
                url=url,
                event_type=row.event_type,
                status=row.status.value,
                attempts=row.attempts,
                created_at=row.created_at,
                next_attempt_at=row.next_attempt_at if row.status == OutboxStatus.pending else None,
                delivered_at=row.delivered_at,
                last_status_code=code,
                last_error=error,
            )
            for row, url, slug, code, error in session.execute(query)
        ]
