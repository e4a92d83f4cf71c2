"""Tenant B can never read, list, retry or presign tenant A's things, even with A's ids: 404."""

from __future__ import annotations

import pytest

from tests.api.conftest import complete_job, fail_job


@pytest.fixture
def two(make_tenant, committed_chain, client):
    a, b = make_tenant("iso-a"), make_tenant("iso-b")
    chain = committed_chain(a)
    done = client.post("/v1/videos", json={"prompt": "a red ball"}, headers=a.headers).json()["id"]
    failed = client.post("/v1/videos", json={"prompt": "a blue ball"}, headers=a.headers).json()["id"]  # fmt: skip
    complete_job(done, chain["rendition"])
    fail_job(failed)
    return a, b, chain, done, failed


def test_owner_sees_its_things(client, two):
    a, _, chain, done, failed = two
    video = client.get(f"/v1/videos/{done}", headers=a.headers).json()
    assert video["status"] == "completed" and video["renditions"][0]["asset_id"] == str(chain["rendition"])  # fmt: skip
    assert video["renditions"][0]["url"].startswith("http")
    assert [v["passed"] for v in video["verdicts"]] == [True]
    content = client.get(f"/v1/videos/{done}/content", headers=a.headers, follow_redirects=False)
    assert content.status_code == 307 and "reelforge-published" in content.headers["location"]
    listed = {v["id"] for v in client.get("/v1/videos", headers=a.headers).json()["videos"]}
    assert {done, failed} <= listed
    lineage = client.get(f"/v1/assets/{chain['rendition']}/lineage", headers=a.headers).json()
    assert {"prompt", "enhanced_prompt", "raw_clip", "lut", "rendition"} <= {n["kind"] for n in lineage["nodes"]}  # fmt: skip
    assert client.post(f"/v1/runs/{failed}/retry", headers=a.headers).status_code == 202


def test_other_tenant_gets_404_everywhere(client, two):
    a, b, chain, done, failed = two
    h = b.headers
    assert client.get(f"/v1/videos/{done}", headers=h).status_code == 404
    assert client.get(f"/v1/videos/{done}/content", headers=h, follow_redirects=False).status_code == 404  # fmt: skip
    assert client.get("/v1/videos", headers=h).json() == {"videos": [], "count": 0}
    for asset in chain.values():
        for direction in ("upstream", "downstream"):
            r = client.get(f"/v1/assets/{asset}/lineage?direction={direction}", headers=h)
            assert r.status_code == 404
    assert client.post(f"/v1/runs/{failed}/retry", headers=h).status_code == 404
    # and nothing changed for the owner
    assert client.get(f"/v1/videos/{failed}", headers=a.headers).json()["status"] == "failed"


def test_retry_by_flow_run_id_is_scoped_too(client, two):
    import uuid

    from db.models import JobRecord
    from db.session import session_scope

    a, b, _, _, failed = two
    run_id = uuid.uuid4()
    with session_scope() as session:
        session.get_one(JobRecord, uuid.UUID(failed)).flow_run_id = run_id
    assert client.post(f"/v1/runs/{run_id}/retry", headers=b.headers).status_code == 404
    accepted = client.post(f"/v1/runs/{run_id}/retry", headers=a.headers)
    assert accepted.status_code == 202 and accepted.json()["status"] == "retrying"
    again = client.post(f"/v1/runs/{run_id}/retry", headers=a.headers)
    assert again.status_code == 409


def test_campaigns_and_personalisations_are_scoped(client, make_tenant):
    a, b = make_tenant("iso-a"), make_tenant("iso-b")
    body = {
        "name": "spring",
        "prompt": "a {colour} ball",
        "products": [{"sku": "ball-1", "name": "Ball", "colour": "red"}],
        "personalisation": {"text": "Hi {first_name}!"},
    }
    created = client.post("/v1/campaigns", json=body, headers=a.headers)
    assert created.status_code == 202, created.text
    campaign_id = created.json()["campaign_id"]
    assert client.get(f"/v1/campaigns/{campaign_id}", headers=a.headers).status_code == 200
    assert client.get(f"/v1/campaigns/{campaign_id}", headers=b.headers).status_code == 404
    users = {"campaign": "spring", "users": [{"user_id": "u1", "sku": "ball-1", "fields": {"first_name": "Ana"}}]}  # fmt: skip
    assert client.post("/v1/personalisations", json=users, headers=b.headers).status_code == 404
    mine = client.post("/v1/personalisations", json=users, headers=a.headers)
    assert mine.status_code == 202 and mine.json()["count"] == 1
    job_id = mine.json()["ids"][0]
    assert client.get(f"/v1/videos/{job_id}", headers=b.headers).status_code == 404
    assert client.get(f"/v1/videos/{job_id}", headers=a.headers).json()["prompt"] == "a red ball"


def test_campaign_cannot_name_server_files(client, make_tenant):
    a = make_tenant()
    body = {"name": "x", "products": [{"sku": "a", "name": "A", "prompt": "p"}], "brand": {"logo": "/etc/passwd"}}  # fmt: skip
    assert client.post("/v1/campaigns", json=body, headers=a.headers).status_code == 422
    body = {"name": "x", "products": [{"sku": "a", "name": "A", "prompt": "p"}], "lut": "../../etc/passwd"}  # fmt: skip
    assert client.post("/v1/campaigns", json=body, headers=a.headers).status_code == 422
