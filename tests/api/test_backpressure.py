"""Past the bound of waiting jobs per tenant: 429 with Retry-After; other tenants unaffected."""

from __future__ import annotations

import pytest


@pytest.fixture(scope="module")
def small_client(api_settings):
    from fastapi.testclient import TestClient

    from reelforge.api import create_app

    settings = api_settings.model_copy(update={"api_max_queued": 3, "api_retry_after_seconds": 7})
    with TestClient(create_app(settings, dispatch=False)) as test_client:
        yield test_client


def test_429_past_the_bound(small_client, make_tenant):
    a, b = make_tenant(), make_tenant()
    codes = [small_client.post("/v1/videos", json={"prompt": f"p{i}"}, headers=a.headers).status_code for i in range(5)]  # fmt: skip
    assert codes == [202, 202, 202, 429, 429]
    busy = small_client.post("/v1/videos", json={"prompt": "x"}, headers=a.headers)
    assert busy.headers["retry-after"] == "7" and "limit 3" in busy.json()["error"]
    assert small_client.post("/v1/videos", json={"prompt": "x"}, headers=b.headers).status_code == 202  # fmt: skip
    listed = small_client.get("/v1/videos", headers=a.headers).json()
    assert listed["count"] == 3  # nothing half-accepted


def test_finished_jobs_free_the_queue(small_client, make_tenant):
    from tests.api.conftest import fail_job

    a = make_tenant()
    ids = [small_client.post("/v1/videos", json={"prompt": "p"}, headers=a.headers).json()["id"] for _ in range(3)]  # fmt: skip
    assert small_client.post("/v1/videos", json={"prompt": "p"}, headers=a.headers).status_code == 429  # fmt: skip
    fail_job(ids[0])
    assert small_client.post("/v1/videos", json={"prompt": "p"}, headers=a.headers).status_code == 202  # fmt: skip


def test_concurrent_submissions_respect_the_bound(small_client, make_tenant):
    from concurrent.futures import ThreadPoolExecutor

    a = make_tenant()
    with ThreadPoolExecutor(8) as pool:
        codes = list(pool.map(lambda i: small_client.post("/v1/videos", json={"prompt": f"p{i}"}, headers=a.headers).status_code, range(12)))  # fmt: skip
    assert sorted(codes) == [202] * 3 + [429] * 9


def test_bulk_personalisation_is_all_or_nothing(small_client, make_tenant):
    a = make_tenant()
    body = {"name": "bulk", "prompt": "a ball", "products": [{"sku": "b", "name": "B"}], "personalisation": {"text": "Hi {first_name}"}}  # fmt: skip
    assert small_client.post("/v1/campaigns", json=body, headers=a.headers).status_code == 202
    users = {"campaign": "bulk", "users": [{"user_id": f"u{i}", "sku": "b", "fields": {"first_name": "A"}} for i in range(3)]}  # fmt: skip
    assert small_client.post("/v1/personalisations", json=users, headers=a.headers).status_code == 429  # fmt: skip
    assert small_client.get("/v1/videos", headers=a.headers).json()["count"] == 0
