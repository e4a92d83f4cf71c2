"""/v1/webhooks: a tenant registers endpoints (secret shown once), sees its deliveries and
redelivers them, only its own; the dashboard lists deliveries with a redeliver button."""

from __future__ import annotations

import re
import uuid

import pytest
from fastapi.testclient import TestClient

from db.session import session_scope
from db.webhooks import enqueue_event
from reelforge.core.settings import get_settings
from reelforge.ops.webhooks import deliver_due
from tests.loopback import Receiver


@pytest.fixture
def allow_private(monkeypatch):
    monkeypatch.setenv("REELFORGE_WEBHOOK_ALLOW_PRIVATE", "true")
    get_settings.cache_clear()
    yield
    monkeypatch.undo()
    get_settings.cache_clear()


def _queue(tenant_id: uuid.UUID) -> None:
    with session_scope() as session:
        enqueue_event(session, tenant_id, "video.completed", {"asset_id": "x"})


def test_bad_webhooks_are_refused_with_4xx(client, make_tenant):
    tenant = make_tenant("wh")
    for body in (
        {"url": "ftp://example.com/x", "events": ["video.completed"]},
        {"url": "http://10.0.0.5/x", "events": ["video.completed"]},
        {"url": "https://example.com/x", "events": ["video.unknown"]},
        {"url": "https://example.com/x", "events": []},
    ):
        answer = client.post("/v1/webhooks", json=body, headers=tenant.headers)
        assert answer.status_code == 422, (body, answer.text)
        assert answer.json()["error"]


def test_register_list_deliver_redeliver_delete(client, make_tenant, allow_private):
    tenant, other = make_tenant("wh"), make_tenant("wh")
    with Receiver() as receiver:
        body = {"url": f"{receiver.url}/in", "events": ["video.completed", "review.waiting"]}
        created = client.post("/v1/webhooks", json=body, headers=tenant.headers)
        assert created.status_code == 201, created.text
        endpoint = created.json()
        assert endpoint["secret"].startswith("whsec_")
        listed = client.get("/v1/webhooks", headers=tenant.headers).json()["endpoints"]
        assert [e["id"] for e in listed] == [endpoint["id"]] and "secret" not in listed[0]
        assert client.get("/v1/webhooks", headers=other.headers).json()["endpoints"] == []

        _queue(tenant.tenant_id)
        deliver_due()
        (shown,) = client.get("/v1/webhooks/deliveries", headers=tenant.headers).json()[
            "deliveries"
        ]
        assert shown["status"] == "delivered" and shown["last_status_code"] == 204
        event = shown["event_id"]
        path = f"/v1/webhooks/deliveries/{event}/redeliver"
        assert client.post(path, headers=other.headers).status_code == 404  # not theirs
        assert client.post(path, headers=tenant.headers).status_code == 202
        deliver_due()
    assert [r.headers["webhook-id"] for r in receiver.requests] == [event, event]
    gone = client.delete(f"/v1/webhooks/{endpoint['id']}", headers=other.headers)
    assert gone.status_code == 404
    assert (
        client.delete(f"/v1/webhooks/{endpoint['id']}", headers=tenant.headers).status_code == 204
    )
    assert client.get("/v1/webhooks/deliveries", headers=tenant.headers).json()["deliveries"] == []


def _csrf(html: str) -> str:
    match = re.search(r'name="csrf" value="([^"]+)"', html)
    assert match is not None, html[:500]
    return match.group(1)


def test_dashboard_lists_deliveries_and_redelivers(app, make_tenant, allow_private):
    tenant = make_tenant("wh")
    with Receiver(status=500) as receiver:
        client = TestClient(app)
        page = client.get("/dashboard/login")
        client.post("/dashboard/login", data={"csrf": _csrf(page.text), "api_key": tenant.key})
        from reelforge.ops.webhooks import add_endpoint

        add_endpoint(tenant.slug, receiver.url, ["video.completed"])
        _queue(tenant.tenant_id)
        deliver_due()
        html = client.get("/dashboard/webhooks").text
        (event,) = re.findall(r'data-event="([^"]+)"', html)
        assert "HTTP 500" in html and "Redeliver" in html
        answer = client.post(
            f"/dashboard/webhooks/{event}/redeliver",
            data={"csrf": _csrf(html)},
            follow_redirects=False,
        )
        assert answer.status_code == 303
        assert "queued" in client.get(answer.headers["location"]).text
        forged = client.post(f"/dashboard/webhooks/{event}/redeliver", data={"csrf": "x"})
        assert forged.status_code == 403
        receiver.status = 200
        deliver_due()
    assert [r.headers["webhook-id"] for r in receiver.requests] == [event, event]
