"""The webhook outbox: events written in the transaction of the state change they report.

``enqueue_event`` adds one outbox row per endpoint of the tenant that subscribed to the
event, in the caller's session: the event commits with the change or not at all, so a
crash between the commit and the delivery loses nothing (``reelforge/ops/webhooks.py``
delivers the rows, at least once).
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import String, cast, literal, select
from sqlalchemy.dialects.postgresql import ARRAY, insert
from sqlalchemy.orm import Session

from db.models import OutboxStatus, WebhookEndpoint, WebhookOutbox

# review.waiting is reserved for the review step (not emitted yet): endpoints may subscribe.
WEBHOOK_EVENTS = (
    "video.completed",
    "video.failed",
    "video.blocked",
    "review.waiting",
    "campaign.completed",
)


def enqueue_event(
    session: Session, tenant_id: uuid.UUID, event_type: str, data: dict[str, Any]
) -> int:
    """Queue ``event_type`` for every active endpoint of the tenant subscribed to it.

    The body follows the Standard Webhooks shape: ``{"type", "timestamp", "data"}``.
    Returns how many rows were queued (0 when nobody listens).
    """
    if event_type not in WEBHOOK_EVENTS:
        raise ValueError(f"unknown webhook event {event_type!r}")
    payload = {"type": event_type, "timestamp": datetime.now(UTC).isoformat(), "data": data}
    subscribed = select(
        WebhookEndpoint.tenant_id,
        WebhookEndpoint.id,
        literal(event_type, String(64)),
        literal(payload, WebhookOutbox.payload.type),
        literal(OutboxStatus.pending.value, String(32)),
    ).where(
        WebhookEndpoint.tenant_id == tenant_id,
        WebhookEndpoint.disabled_at.is_(None),
        WebhookEndpoint.events.contains(cast([event_type], ARRAY(String(64)))),
    )
    queued = session.execute(
        insert(WebhookOutbox)
        .from_select(["tenant_id", "endpoint_id", "event_type", "payload", "status"], subscribed)
        .returning(WebhookOutbox.id)
    )
    return len(queued.all())
