"""Webhooks: registration refuses bad input (exit 2), deliveries are signed per the Standard
Webhooks spec, logged, retried with backoff, never follow redirects, and redeliver on demand."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime, timedelta

import pytest
from standardwebhooks import Webhook
from typer.testing import CliRunner

from db.models import OutboxStatus, WebhookDelivery, WebhookOutbox
from db.session import session_scope
from db.webhooks import enqueue_event
from reelforge.cli.app import app
from reelforge.core.settings import get_settings
from reelforge.ops.webhooks import deliver_due, recent_deliveries, redeliver
from tests.loopback import Receiver

runner = CliRunner()


@pytest.fixture
def allow_private(monkeypatch):
    monkeypatch.setenv("REELFORGE_WEBHOOK_ALLOW_PRIVATE", "true")
    get_settings.cache_clear()
    yield
    monkeypatch.undo()
    get_settings.cache_clear()


def _cli(*args: str) -> tuple[int, dict]:
    result = runner.invoke(app, [*args, "--json"], catch_exceptions=False)
    return result.exit_code, json.loads(result.stdout.strip().splitlines()[-1])


def _add(url: str, tenant: str, events: str = "video.completed,video.failed") -> dict:
    code, payload = _cli("webhook", "add", url, "--tenant", tenant, "--events", events)
    assert code == 0, payload
    return payload


def _queue(tenant: str, event: str = "video.completed", **data) -> int:
    from db.lineage import ensure_tenant

    with session_scope() as session:
        return enqueue_event(session, ensure_tenant(session, tenant).id, event, data)


def _row(event_id: uuid.UUID) -> WebhookOutbox:
    with session_scope() as session:
        return session.get_one(WebhookOutbox, event_id)


@pytest.mark.parametrize(
    ("url", "events", "expected"),
    [
        ("ftp://example.com/hook", "video.completed", "is not http(s)"),
        ("http://127.0.0.1:9/hook", "video.completed", "private, loopback"),
        ("http://169.254.169.254/latest", "video.completed", "private, loopback"),
        ("https://example.com/hook", "video.done", "unknown webhook event video.done"),
    ],
)
def test_bad_registrations_exit_2_with_one_line(stack, url, events, expected):
    code, payload = _cli("webhook", "add", url, "--tenant", "wh-bad", "--events", events)
    assert code == 2
    assert payload["ok"] is False
    assert expected in payload["error"]


def test_a_delivery_is_signed_logged_and_sent_once(stack, allow_private):
    tenant = f"wh-{uuid.uuid4().hex[:8]}"
    with Receiver() as receiver:
        endpoint = _add(f"{receiver.url}/hooks", tenant)
        assert endpoint["secret"].startswith("whsec_")
        assert _queue(tenant, "video.blocked") == 0  # not subscribed
        assert _queue(tenant, asset_id="a1") == 1
        deliver_due()
        deliver_due()  # delivered rows are not sent again
    (request,) = receiver.requests
    body = Webhook(endpoint["secret"]).verify(request.body, request.headers)
    assert body["type"] == "video.completed"
    assert body["data"] == {"asset_id": "a1"}
    event_id = uuid.UUID(request.headers["webhook-id"])
    assert _row(event_id).status == OutboxStatus.delivered
    (shown,) = recent_deliveries(tenant)
    assert (shown.event_id, shown.status, shown.last_status_code) == (event_id, "delivered", 204)
    code, listed = _cli("webhook", "list", "--tenant", tenant)
    assert code == 0
    assert [e["url"] for e in listed["endpoints"]] == [f"{receiver.url}/hooks"]
    assert "secret" not in listed["endpoints"][0]


def test_a_failed_delivery_backs_off_then_redeliver_sends_it(stack, allow_private):
    tenant = f"wh-{uuid.uuid4().hex[:8]}"
    with Receiver(status=500) as receiver:
        _add(receiver.url, tenant)
        _queue(tenant, asset_id="a2")
        before = datetime.now(UTC)
        deliver_due()
        event_id = uuid.UUID(receiver.requests[0].headers["webhook-id"])
        row = _row(event_id)
        assert (row.status, row.attempts) == (OutboxStatus.pending, 1)
        base = get_settings().webhook_retry_base_seconds
        assert row.next_attempt_at >= before + timedelta(seconds=base)
        deliver_due()  # not due yet: nothing sent
        assert len(receiver.requests) == 1
        receiver.status = 200
        code, payload = _cli("webhook", "redeliver", str(event_id))
        assert code == 0 and payload["delivered"] >= 1, payload
    assert [r.headers["webhook-id"] for r in receiver.requests] == [str(event_id)] * 2
    assert _row(event_id).status == OutboxStatus.delivered
    with session_scope() as session:
        attempts = session.query(WebhookDelivery).filter_by(outbox_id=event_id).all()
    assert sorted(a.succeeded for a in attempts) == [False, True]
    assert {a.status_code for a in attempts} == {500, 200}


def test_redirects_are_not_followed(stack, allow_private):
    tenant = f"wh-{uuid.uuid4().hex[:8]}"
    with Receiver() as target, Receiver(status=302) as redirecting:
        redirecting.location = f"{target.url}/stolen"
        _add(redirecting.url, tenant)
        _queue(tenant, asset_id="a3")
        deliver_due()
    assert len(redirecting.requests) == 1
    assert target.requests == []
    (shown,) = recent_deliveries(tenant)
    assert shown.status == "pending"
    assert "redirect" in (shown.last_error or "")


def test_unknown_event_ids_are_refused(stack):
    code, payload = _cli("webhook", "redeliver", str(uuid.uuid4()))
    assert code == 2 and "no webhook event" in payload["error"]
    code, payload = _cli("webhook", "remove", "not-a-uuid")
    assert code == 2 and "is not a UUID" in payload["error"]
    with pytest.raises(ValueError, match="unknown webhook event"):
        _queue("wh-bad", "video.exploded")
    with pytest.raises(Exception, match="no webhook event"):
        redeliver(uuid.uuid4(), tenant="nobody")
