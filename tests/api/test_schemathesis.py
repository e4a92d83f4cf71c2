"""Property-based tests from the OpenAPI spec: no input makes the API answer 500."""

from __future__ import annotations

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings

OPERATIONS = [
    ("POST", "/v1/videos"), ("GET", "/v1/videos"), ("GET", "/v1/videos/{video_id}"),
    ("GET", "/v1/videos/{video_id}/content"), ("POST", "/v1/campaigns"),
    ("GET", "/v1/campaigns/{campaign_id}"), ("POST", "/v1/personalisations"),
    ("GET", "/v1/assets/{asset_id}/lineage"), ("POST", "/v1/runs/{run_id}/retry"),
    ("GET", "/healthz"), ("GET", "/readyz"), ("GET", "/metrics"),
    ("POST", "/v1/webhooks"), ("GET", "/v1/webhooks"), ("DELETE", "/v1/webhooks/{endpoint_id}"),
    ("GET", "/v1/webhooks/deliveries"), ("POST", "/v1/webhooks/deliveries/{event_id}/redeliver"),
    ("POST", "/v1/styles"), ("GET", "/v1/styles"), ("DELETE", "/v1/styles/{name}"),
    ("POST", "/v1/ads"), ("POST", "/v1/videos/{video_id}/cancel"),
    ("GET", "/v1/ads/{ad_id}"),
    ("GET", "/v1/reviews"), ("GET", "/v1/reviews/{review_id}"),
    ("POST", "/v1/reviews/{review_id}/decision"),
]  # fmt: skip


@pytest.fixture(scope="module")
def api_schema(app):
    return schemathesis.openapi.from_asgi("/openapi.json", app)


def test_every_operation_is_covered(api_schema):
    found = {(r.ok().method.upper(), r.ok().path) for r in api_schema.get_all_operations()}
    assert found == set(OPERATIONS)


@pytest.fixture(scope="module")
def fuzz_tenant(stack):
    import uuid

    from db.session import session_scope
    from reelforge.api.keys import create_key
    from tests.api.conftest import delete_tenant_jobs

    with session_scope() as session:
        key, record = create_key(session, f"fuzz-{uuid.uuid4().hex[:10]}")
        tenant_id = record.tenant_id
    yield key
    delete_tenant_jobs([tenant_id])


@pytest.mark.parametrize(("method", "path"), OPERATIONS)
def test_no_500_for_any_input(api_schema, fuzz_tenant, method, path):
    operation = api_schema[path][method]
    headers = {"Authorization": f"Bearer {fuzz_tenant}"}

    @given(case=operation.as_strategy())
    @settings(
        max_examples=25 if method == "POST" else 12,
        deadline=None,
        suppress_health_check=list(HealthCheck),
        derandomize=True,
        database=None,
    )
    def check(case) -> None:
        response = case.call(headers=headers)
        assert response.status_code < 500 or (path == "/readyz" and response.status_code == 503), (
            f"{method} {path}: {response.status_code} {response.text[:300]}"
        )
        if response.status_code >= 400 and "json" in response.headers.get("content-type", ""):
            error = response.json().get("error")
            assert isinstance(error, str) and "\n" not in error

    check()
