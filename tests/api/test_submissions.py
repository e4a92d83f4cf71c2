"""Submissions that cannot half-happen: campaigns written only after the queue check, in the
request's own transaction (one connection per request); a campaign's videos count against
the tenant's limit; Idempotency-Key; every input checked before 202; fair dispatch."""

from __future__ import annotations

import uuid
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta

import pytest


@pytest.fixture(scope="module")
def small_client(api_settings):
    from fastapi.testclient import TestClient

    from reelforge.api import create_app

    settings = api_settings.model_copy(update={"api_max_queued": 4})
    with TestClient(create_app(settings, dispatch=False)) as test_client:
        yield test_client


def _campaign(name: str, products: int = 1, renditions: int = 1, prompt: str = "a ball") -> dict:
    aspects = ["16:9", "9:16", "1:1"]
    return {
        "name": name,
        "prompt": prompt,
        "products": [{"sku": f"s{i}", "name": f"P{i}"} for i in range(products)],
        "renditions": [{"aspect": aspects[i % 3]} for i in range(renditions)],
    }


def _campaign_rows(tenant_id: uuid.UUID) -> dict[str, dict]:
    from sqlalchemy import select

    from db.models import Campaign
    from db.session import session_scope

    with session_scope() as session:
        rows = session.scalars(select(Campaign).where(Campaign.tenant_id == tenant_id))
        return {row.name: row.spec for row in rows}


def _jobs(tenant_id: uuid.UUID) -> int:
    from sqlalchemy import func, select

    from db.models import JobRecord
    from db.session import session_scope

    with session_scope() as session:
        query = select(func.count()).select_from(JobRecord).where(JobRecord.tenant_id == tenant_id)
        return session.scalar(query)


def test_ten_concurrent_campaigns_answer_202_or_429_and_refused_ones_leave_no_row(
    small_client, make_tenant
):
    tenant = make_tenant("sub")
    with ThreadPoolExecutor(10) as pool:
        answers = list(pool.map(lambda i: small_client.post("/v1/campaigns", json=_campaign(f"c{i}"), headers=tenant.headers), range(10)))  # fmt: skip
    codes = sorted(a.status_code for a in answers)
    assert codes == [202] * 4 + [429] * 6, [a.text for a in answers]
    accepted = {a.json()["name"] for a in answers if a.status_code == 202}
    assert set(_campaign_rows(tenant.tenant_id)) == accepted  # refused: no campaigns row
    assert _jobs(tenant.tenant_id) == 4


def test_a_refused_campaign_does_not_touch_the_row_of_an_accepted_one(small_client, make_tenant):
    tenant = make_tenant("sub")
    assert small_client.post("/v1/campaigns", json=_campaign("spring", prompt="first"), headers=tenant.headers).status_code == 202  # fmt: skip
    for i in range(3):
        assert small_client.post("/v1/videos", json={"prompt": f"p{i}"}, headers=tenant.headers).status_code == 202  # fmt: skip
    again = small_client.post("/v1/campaigns", json=_campaign("spring", prompt="second"), headers=tenant.headers)  # fmt: skip
    assert again.status_code == 429, again.text
    assert _campaign_rows(tenant.tenant_id)["spring"]["prompt"] == "first"


def test_a_campaigns_videos_count_against_the_limit(small_client, make_tenant):
    tenant = make_tenant("sub")
    four = small_client.post("/v1/campaigns", json=_campaign("big", products=2, renditions=2), headers=tenant.headers)  # fmt: skip
    assert four.status_code == 202 and four.json()["videos"] == 4, four.text
    busy = small_client.post("/v1/videos", json={"prompt": "one more"}, headers=tenant.headers)
    assert busy.status_code == 429 and "4 videos in waiting jobs (limit 4)" in busy.json()["error"]

    other = make_tenant("sub")
    huge = small_client.post("/v1/campaigns", json=_campaign("huge", products=5), headers=other.headers)  # fmt: skip
    assert huge.status_code == 422 and "makes 5 videos, more than the 4" in huge.json()["error"]
    assert _campaign_rows(other.tenant_id) == {} and _jobs(other.tenant_id) == 0


def test_one_idempotency_key_makes_one_job(client, make_tenant):
    tenant = make_tenant("idem")
    headers = {**tenant.headers, "Idempotency-Key": "order-7f3a"}
    body = {"prompt": "a red ball bounces", "seed": 4}
    with ThreadPoolExecutor(10) as pool:
        answers = list(pool.map(lambda _: client.post("/v1/videos", json=body, headers=headers), range(20)))  # fmt: skip
    assert {a.status_code for a in answers} == {202}, [a.text for a in answers]
    assert len({a.json()["id"] for a in answers}) == 1
    assert _jobs(tenant.tenant_id) == 1

    changed = client.post("/v1/videos", json={**body, "seed": 5}, headers=headers)
    assert changed.status_code == 422 and "Idempotency-Key" in changed.json()["error"]
    elsewhere = client.post("/v1/campaigns", json=_campaign("k"), headers=headers)
    assert elsewhere.status_code == 422 and "POST /v1/videos" in elsewhere.json()["error"]
    assert _jobs(tenant.tenant_id) == 1 and _campaign_rows(tenant.tenant_id) == {}

    other = make_tenant("idem")  # keys are per tenant
    theirs = client.post("/v1/videos", json=body, headers={**other.headers, "Idempotency-Key": "order-7f3a"})  # fmt: skip
    assert theirs.status_code == 202 and theirs.json()["id"] != answers[0].json()["id"]


def test_a_refused_submission_keeps_its_idempotency_key_free(small_client, make_tenant):
    tenant = make_tenant("idem")
    for i in range(4):
        small_client.post("/v1/videos", json={"prompt": f"p{i}"}, headers=tenant.headers)
    headers = {**tenant.headers, "Idempotency-Key": "retry-me"}
    assert small_client.post("/v1/campaigns", json=_campaign("late"), headers=headers).status_code == 429  # fmt: skip
    from tests.api.conftest import fail_job

    fail_job(small_client.get("/v1/videos", headers=tenant.headers).json()["videos"][0]["id"])
    accepted = small_client.post("/v1/campaigns", json=_campaign("late"), headers=headers)
    assert accepted.status_code == 202, accepted.text
    replay = small_client.post("/v1/campaigns", json=_campaign("late"), headers=headers)
    assert replay.status_code == 202 and replay.json() == accepted.json()


def test_a_bad_idempotency_key_is_422(client, make_tenant):
    tenant = make_tenant("idem")
    bad = client.post("/v1/videos", json={"prompt": "p"}, headers={**tenant.headers, "Idempotency-Key": "has space"})  # fmt: skip
    assert bad.status_code == 422 and "Idempotency-Key" in bad.json()["error"]
    assert _jobs(tenant.tenant_id) == 0


def test_an_unknown_product_field_is_refused_before_202(client, make_tenant):
    tenant = make_tenant("sub")
    bad = client.post("/v1/videos", json={"prompt": "a lamp", "product": {"name": "Lamp", "colur": "red"}}, headers=tenant.headers)  # fmt: skip
    assert bad.status_code == 422, bad.text
    assert (
        "unknown product field 'colur'" in bad.json()["error"] and "colour" in bad.json()["error"]
    )
    good = client.post("/v1/videos", json={"prompt": "a lamp", "product": {"name": "Lamp", "colour": "red", "price": "$9"}}, headers=tenant.headers)  # fmt: skip
    assert good.status_code == 202, good.text
    assert _jobs(tenant.tenant_id) == 1


def test_dispatch_takes_tenants_in_turn(db):
    """A tenant with a backlog does not hold up another tenant's job submitted later."""
    from db import lineage
    from db.models import JobRecord, JobStatus
    from reelforge.api.dispatcher import _next_jobs

    start = datetime.now(UTC) - timedelta(days=3650)  # older than anything else waiting
    busy = lineage.ensure_tenant(db, f"fair-{uuid.uuid4().hex[:8]}")
    quiet = lineage.ensure_tenant(db, f"fair-{uuid.uuid4().hex[:8]}")
    order = [busy] * 5 + [quiet]
    rows = [
        JobRecord(
            id=uuid.uuid4(),
            tenant_id=t.id,
            kind="video",
            status=JobStatus.queued,
            executor="local",
            request={"prompt": "p"},
            created_at=start + timedelta(seconds=i),
        )
        for i, t in enumerate(order)
    ]
    db.add_all(rows)
    db.flush()
    picked = [job.id for job in _next_jobs(db, 2)]
    assert picked == [rows[0].id, rows[5].id]  # the busy tenant's oldest, then the quiet one


def test_a_run_failed_by_an_s3_outage_reads_as_one_line(stack):
    """S3 stopped mid-stage: the job's error names S3 and the fix, not the raw client error
    Prefect's state message carries."""
    from prefect import flow, get_client
    from urllib3.exceptions import MaxRetryError, NewConnectionError

    from reelforge.api.dispatcher import failure_of
    from reelforge.core.orchestration import RESULTS_BLOCK, ready

    ready(stack)

    @flow(name="s3-outage-probe", persist_result=True, result_storage=RESULTS_BLOCK)
    def probe() -> None:
        refused = NewConnectionError(None, "Failed to establish a new connection: [Errno 111]")
        raise MaxRetryError(None, "/reelforge-private/clip.mp4", reason=refused)

    state = probe(return_state=True)
    with get_client(sync_client=True) as client:
        run = client.read_flow_run(state.state_details.flow_run_id)
    assert "MaxRetryError" in (run.state.message or "")  # what a job's error said before
    error = failure_of(run)
    assert error.startswith(f"S3 at {stack.s3_address} is unreachable"), error
    assert "reelforge up" in error and "MaxRetryError" not in error and "\n" not in error


def test_a_queued_video_is_cancelled_at_once_and_never_dispatched(small_client, make_tenant):
    from db.models import JobRecord, JobStatus
    from db.session import session_scope
    from reelforge.api.dispatcher import _next_jobs

    tenant = make_tenant("cancel")
    made = small_client.post("/v1/videos", json={"prompt": "a lamp"}, headers=tenant.headers)
    assert made.status_code == 202, made.text
    job_id = made.json()["id"]
    other = make_tenant("cancel")
    assert small_client.post(f"/v1/videos/{job_id}/cancel", headers=other.headers).status_code == 404  # fmt: skip

    cancelled = small_client.post(f"/v1/videos/{job_id}/cancel", headers=tenant.headers)
    assert cancelled.status_code == 202, cancelled.text
    assert cancelled.json()["status"] == "cancelled"
    with session_scope() as session:
        job = session.get(JobRecord, uuid.UUID(job_id))
        assert job.status == JobStatus.cancelled and job.flow_run_id is None
        assert job.finished_at is not None
        assert uuid.UUID(job_id) not in {j.id for j in _next_jobs(session, 1000)}
    again = small_client.post(f"/v1/videos/{job_id}/cancel", headers=tenant.headers)
    assert again.status_code == 409 and "nothing to cancel" in again.json()["error"]
    # a cancelled job frees its place in the queue (the limit is 4 here)
    for i in range(4):
        assert small_client.post("/v1/videos", json={"prompt": f"p{i}"}, headers=tenant.headers).status_code == 202  # fmt: skip


def test_a_video_says_which_api_key_submitted_it(client, make_tenant):
    from db.session import session_scope
    from reelforge.api.keys import create_key

    tenant = make_tenant("who")  # its jobs are deleted afterwards
    with session_scope() as session:
        named, _ = create_key(session, tenant.slug, name="shop-backend")
    prefix = tenant.key.split("_")[1]  # an unnamed key is shown by its prefix
    for key, label in ((named, "shop-backend"), (tenant.key, prefix)):
        headers = {"Authorization": f"Bearer {key}"}
        made = client.post("/v1/videos", json={"prompt": "a lamp"}, headers=headers)
        assert made.status_code == 202, made.text
        video = client.get(f"/v1/videos/{made.json()['id']}", headers=headers).json()
        assert video["submitted_by"] == label
