"""Work done once: 20 identical video jobs in flight at once, through the API with the local
executor on the real stack, generate once, render once and publish once (the stages' claims
on their cache keys); every job still completes with the same published video."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
HAS_MODEL = (REPO / "models" / "tiny" / "model_index.json").is_file()
JOBS = 20  # as in the issue
# the tiny model's fastest settings
BODY = {"prompt": "a red circle moves from left to right", "seed": 23, "speed": "fast", "aspect": "1:1"}  # fmt: skip


@pytest.fixture
def local_api(stack):
    from fastapi.testclient import TestClient

    from reelforge.api import create_app

    settings = stack.model_copy(update={"api_executor": "local", "api_local_concurrency": 4})
    with TestClient(create_app(settings, dispatch=True)) as client:
        yield client


@pytest.fixture
def api_tenant(stack, tenant_slug):
    from db.session import session_scope
    from reelforge.api.keys import create_key
    from tests.api.conftest import delete_tenant_jobs

    with session_scope() as session:
        key, record = create_key(session, tenant_slug)
    yield {"Authorization": f"Bearer {key}"}, record.tenant_id
    delete_tenant_jobs([record.tenant_id])


@pytest.mark.skipif(not HAS_MODEL, reason="the tiny model (models/tiny) is not trained yet")
@pytest.mark.slow
def test_identical_jobs_in_flight_generate_render_and_publish_once(
    local_api, api_tenant, tenant_slug, committed
):
    headers, _ = api_tenant
    ids = []
    for _ in range(JOBS):
        accepted = local_api.post("/v1/videos", json=BODY, headers=headers)
        assert accepted.status_code == 202, accepted.text
        ids.append(accepted.json()["id"])

    deadline = time.monotonic() + 1500
    while True:
        videos = local_api.get(f"/v1/videos?limit={JOBS}", headers=headers).json()["videos"]
        if all(v["status"] in ("completed", "failed", "cancelled") for v in videos):
            break
        assert time.monotonic() < deadline, [v["status"] for v in videos]
        time.sleep(2)
    assert sorted(v["id"] for v in videos) == sorted(ids)
    assert [v["status"] for v in videos] == ["completed"] * JOBS, [v["error"] for v in videos]
    renditions = {r["asset_id"] for v in videos for r in v["renditions"]}
    assert len(renditions) == 1 and all(v["renditions"][0]["url"] for v in videos)

    stages = committed(
        "SELECT a.stage, count(*) AS n FROM activities a JOIN tenants t ON t.id = a.tenant_id "
        "WHERE t.slug = :slug AND a.status = 'succeeded' GROUP BY a.stage",
        slug=tenant_slug,
    )
    made = {row.stage: row.n for row in stages}
    assert (made.get("generate"), made.get("postprocess"), made.get("publish")) == (1, 1, 1), made
    published = committed(
        "SELECT s.kind, count(*) AS n FROM assets s JOIN tenants t ON t.id = s.tenant_id "
        "WHERE t.slug = :slug AND s.published_uri IS NOT NULL GROUP BY s.kind",
        slug=tenant_slug,
    )
    assert {row.kind: row.n for row in published} == {"rendition": 1, "thumbnail": 1}
