"""POST /v1/ads: a storyboard is validated before 202 (problems by field, nothing queued) and
queued as one job the ad flow can run."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from db.models import JobRecord
from db.session import session_scope
from reelforge.campaigns.storyboard import AdSpec

AD = {
    "name": "spring-ad",
    "shots": [
        {"prompt": "a red circle moves from left to right", "duration": 3, "transition": "fade"},
        {"prompt": "a blue square moves up", "duration": 4, "grade": "cool"},
    ],
    "end_card": {"headline": "Aurora", "price": "-20%", "cta": "Shop now", "duration": 3},
    "captions": ["Summer starts now", "Light as air"],
    "lut": "warm",
}


def _jobs(tenant_id) -> list[JobRecord]:
    with session_scope() as session:
        rows = session.scalars(select(JobRecord).where(JobRecord.tenant_id == tenant_id)).all()
        session.expunge_all()
        return list(rows)


def test_a_storyboard_is_accepted_and_queued_as_one_ad_job(client, make_tenant):
    tenant = make_tenant()
    res = client.post("/v1/ads", json=AD, headers=tenant.headers)
    assert res.status_code == 202, res.text
    body = res.json()
    assert (body["name"], body["shots"], body["duration_s"]) == ("spring-ad", 2, 10.0)
    (job,) = _jobs(tenant.tenant_id)
    assert job.kind == "ad" and str(job.id) == body["id"]
    ad = AdSpec.model_validate(job.request)  # what the dispatcher hands the ad flow
    assert ad.tenant == tenant.slug and ad.brand.lut == "warm"
    assert [s.prompt for s in ad.shots] == [s["prompt"] for s in AD["shots"]]
    assert ad.starts() == [0.0, 3.0, 7.0]


def test_a_bad_storyboard_is_422_with_its_field_and_queues_nothing(client, make_tenant):
    tenant = make_tenant()
    too_long = {**AD, "shots": [{**AD["shots"][0], "duration": 58}, AD["shots"][1]]}
    res = client.post("/v1/ads", json=too_long, headers=tenant.headers)
    assert res.status_code == 422, res.text
    assert "request: shots: the ad is 65 s" in res.json()["error"]
    bad_transition = {**AD, "shots": [{**AD["shots"][0], "transition": "spiral"}, AD["shots"][1]]}
    res = client.post("/v1/ads", json=bad_transition, headers=tenant.headers)
    assert res.status_code == 422 and "shots[0].transition" in res.json()["error"]
    assert _jobs(tenant.tenant_id) == []


def test_the_dispatcher_hands_an_ad_job_to_the_ad_deployment(client, make_tenant, api_settings):
    from prefect import get_client
    from prefect.states import Failed

    from reelforge.api.dispatcher import Dispatcher

    tenant = make_tenant()
    job_id = client.post("/v1/ads", json=AD, headers=tenant.headers).json()["id"]
    dispatcher = Dispatcher(api_settings.model_copy(update={"api_executor": "pool"}))
    try:
        dispatcher.tick()
    finally:
        dispatcher.stop()
    (job,) = _jobs(tenant.tenant_id)
    assert str(job.id) == job_id and job.status.value == "submitted"
    with get_client(sync_client=True) as prefect:
        run = prefect.read_flow_run(job.flow_run_id)
        deployment = prefect.read_deployment(run.deployment_id)
        assert deployment.name.startswith("ads-") and run.parameters["ad"]["name"] == "spring-ad"
        assert AdSpec.model_validate(run.parameters["ad"]).tenant == tenant.slug
        prefect.set_flow_run_state(run.id, Failed(message="cleanup (test)"), force=True)


@pytest.mark.slow
def test_a_finished_ad_job_gives_each_rendition_with_its_captions(client, make_tenant):
    """GET /v1/ads/{id}: the job's status and, once the ad flow has published, each rendition
    with the WebVTT and SRT published beside it (found through lineage, presigned now)."""
    import httpx

    from db.models import JobStatus
    from reelforge.ops.run import run_here

    tenant = make_tenant()
    # Shots no other test generates (the generator keeps recent clips in memory, which would
    # change the batch another test's ad is made in), with a seed the visual gate passes (it
    # flags some abstract clips of the small model).
    shots = [{**AD["shots"][0], "prompt": "a green circle moves to the right"},
             {**AD["shots"][1], "prompt": "a blue triangle moves to the left"}]  # fmt: skip
    ad = {**AD, "shots": shots, "generation": {"seed": 1, "speed": "fast"}}
    job_id = client.post("/v1/ads", json=ad, headers=tenant.headers).json()["id"]
    queued = client.get(f"/v1/ads/{job_id}", headers=tenant.headers)
    assert queued.status_code == 200 and queued.json()["status"] == "queued"
    assert queued.json()["videos"] == []

    (job,) = _jobs(tenant.tenant_id)
    result = run_here("ad", {"ad": AdSpec.model_validate(job.request)}, tenant=tenant.slug)
    with session_scope() as session:  # what the dispatcher records when the run completes
        row = session.get(JobRecord, job.id)
        row.status, row.flow_run_id = JobStatus.completed, result.flow_run_id
        row.result = result.model_dump(mode="json")

    done = client.get(f"/v1/ads/{job_id}", headers=tenant.headers)
    assert done.status_code == 200, done.text
    (video,) = done.json()["videos"]
    assert video["asset_id"] == str(result.videos[0].asset_id)
    assert (video["width"], video["height"]) == (720, 1280)
    assert set(video["captions"]) == {"vtt", "srt"}
    vtt = httpx.get(video["captions"]["vtt"], timeout=30)
    assert vtt.status_code == 200 and vtt.text.startswith("WEBVTT")
    assert "Summer starts now" in vtt.text
    assert httpx.get(video["url"], timeout=30).status_code == 200

    other = make_tenant()
    assert client.get(f"/v1/ads/{job_id}", headers=other.headers).status_code == 404
