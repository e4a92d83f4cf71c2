"""Reviews over HTTP: the tenant's own only (another tenant's is 404), decisions validated
before the answer (pick out of range 422, a second decision 409), and the dashboard's review
page approving a take in a real Chromium (the small model makes the takes)."""

from __future__ import annotations

import json
import uuid

import pytest

from tests.api.test_browser import CHROMIUM, MODEL, SHOTS, _login, _serve, _stop


def _review_row(tenant, clip_id: uuid.UUID, takes: int = 2) -> str:
    """A waiting review whose takes are a committed clip (what a versions run stores)."""
    from db.models import Asset, Review, ReviewStatus
    from db.session import session_scope
    from tasks.record import AssetRef

    with session_scope() as session:
        clip = AssetRef.of(session.get_one(Asset, clip_id)).model_dump(mode="json")
        row = Review(
            tenant_id=tenant.tenant_id,
            status=ReviewStatus.awaiting_review,
            job={"tenant": tenant.slug, "prompt": "a red ball rolls"},
            takes=[
                {
                    "take": k,
                    "seed": k - 1,
                    "clip": clip,
                    "enhanced": clip,
                    "enhanced_prompt": "a red ball rolls",
                    "generation_cached": False,
                    "passed": True,
                    "score": 0.5 * k,
                }
                for k in range(1, takes + 1)
            ],
        )
        session.add(row)
        session.flush()
        return str(row.id)


def test_reviews_are_the_tenants_own_and_decisions_are_checked(
    client, make_tenant, committed_chain
):
    tenant, other = make_tenant("rv"), make_tenant("rv-other")
    review = _review_row(tenant, committed_chain(tenant)["clip"])

    listed = client.get("/v1/reviews", headers=tenant.headers).json()
    assert [r["review_id"] for r in listed["reviews"]] == [review] and listed["count"] == 1
    shown = client.get(f"/v1/reviews/{review}", headers=tenant.headers).json()
    assert [t["score"] for t in shown["takes"]] == [0.5, 1.0]
    assert client.get("/v1/reviews", headers=other.headers).json()["count"] == 0
    for path in (f"/v1/reviews/{review}", f"/v1/reviews/{uuid.uuid4()}"):
        assert client.get(path, headers=other.headers).status_code == 404

    decision = f"/v1/reviews/{review}/decision"
    stolen = client.post(decision, json={"decision": "approve", "pick": 1}, headers=other.headers)
    assert stolen.status_code == 404
    wide = client.post(decision, json={"decision": "approve", "pick": 3}, headers=tenant.headers)
    assert wide.status_code == 422 and "out of range" in json.dumps(wide.json())
    no_pick = client.post(decision, json={"decision": "approve"}, headers=tenant.headers)
    assert no_pick.status_code == 422

    rejected = client.post(decision, json={"decision": "reject", "note": "off brand"},
                           headers=tenant.headers)  # fmt: skip
    assert rejected.status_code == 202, rejected.text
    body = rejected.json()
    assert body["status"] == "rejected" and body["note"] == "off brand"
    assert body["decided_by"].startswith("key:")
    again = client.post(decision, json={"decision": "approve", "pick": 1}, headers=tenant.headers)
    assert again.status_code == 409


@pytest.mark.slow
@pytest.mark.skipif(not CHROMIUM.exists(), reason="needs Debian's chromium")
@pytest.mark.skipif(not MODEL.exists(), reason="needs the small model (models/tiny)")
def test_dashboard_approves_a_take_in_chromium(tmp_path, make_tenant):
    from playwright.sync_api import sync_playwright
    from typer.testing import CliRunner

    from reelforge.cli.app import app

    tenant = make_tenant("rv-ui")
    res = CliRunner().invoke(app, ["generate", "a blue circle moves up", "--versions", "2",
                                   "--review", "--seed", "7", "--tenant", tenant.slug, "--json"])  # fmt: skip
    assert res.exit_code == 0, res.stdout
    review = json.loads(res.stdout.strip().splitlines()[-1])["review_id"]
    proc, url = _serve(tmp_path, dispatch=False, env={})
    SHOTS.mkdir(parents=True, exist_ok=True)
    try:
        with sync_playwright() as pw:
            browser = pw.chromium.launch(executable_path=str(CHROMIUM), headless=True,
                                         args=["--no-sandbox", "--disable-gpu"])  # fmt: skip
            page = browser.new_page(viewport={"width": 1400, "height": 900})
            _login(page, url, tenant.key)
            page.click("#nav-reviews")
            row = page.locator(f"tr.review[data-review='{review}']")
            assert row.get_attribute("data-status") == "awaiting_review"
            row.locator("a").click()
            page.wait_for_selector("section.take")
            assert page.locator("section.take").count() == 2
            assert page.locator("section.take img.preview").count() == 2  # side by side
            page.screenshot(path=str(SHOTS / "review.png"), full_page=True)
            take = page.locator("section.take[data-take='2']")
            take.locator("input[name=note]").fill("the bluer one")
            take.locator("button.approve").click()
            page.wait_for_selector("#message")
            assert "approve recorded" in page.inner_text("#message")
            for _ in range(240):  # published in the API process's background
                page.goto(f"{url}/dashboard/reviews/{review}")
                if page.get_attribute("#review-status", "data-status") == "published":
                    break
                page.wait_for_timeout(1000)
            assert page.get_attribute("#review-status", "data-status") == "published"
            assert "the bluer one" in page.inner_text("#decided-by")
            page.screenshot(path=str(SHOTS / "review-published.png"), full_page=True)
            browser.close()
    finally:
        _stop(proc)
    from sqlalchemy import select

    from db.models import Asset
    from db.session import session_scope

    with session_scope() as session:
        published = session.scalars(
            select(Asset.kind).where(
                Asset.tenant_id == tenant.tenant_id, Asset.published_uri.is_not(None)
            )
        ).all()
    assert sorted(published) == ["rendition", "thumbnail"]


@pytest.mark.slow
def test_a_video_job_with_review_ends_in_a_review_and_publishes_nothing(
    client, make_tenant, api_settings
):
    """POST /v1/videos with versions and review: the dispatcher runs the versions flow, the
    job completes with its review's id, and nothing is published until a decision."""
    import time

    from reelforge.api.dispatcher import Dispatcher

    tenant = make_tenant("rv-api")
    body = {"prompt": "a red circle moves from left to right", "seed": 1, "speed": "fast",
            "aspect": "9:16"}  # fmt: skip
    unreviewed = client.post("/v1/videos", json={**body, "versions": 3}, headers=tenant.headers)
    assert unreviewed.status_code == 422 and '"review": true' in unreviewed.json()["error"]
    too_many = client.post("/v1/videos", json={**body, "versions": 99, "review": True},
                           headers=tenant.headers)  # fmt: skip
    assert too_many.status_code == 422 and "REELFORGE_MAX_VERSIONS" in too_many.json()["error"]

    made = client.post("/v1/videos", json={**body, "versions": 2, "review": True},
                       headers=tenant.headers)  # fmt: skip
    assert made.status_code == 202, made.text
    job_id = made.json()["id"]
    dispatcher = Dispatcher(api_settings.model_copy(update={"api_executor": "local"}))
    deadline = time.monotonic() + 600
    try:
        while True:
            dispatcher.tick()
            video = client.get(f"/v1/videos/{job_id}", headers=tenant.headers).json()
            if video["status"] in ("completed", "failed", "cancelled"):
                break
            assert time.monotonic() < deadline, video
            time.sleep(1)
    finally:
        dispatcher.stop()
    assert video["status"] == "completed", video
    assert (video["review"], video["versions"]) == (True, 2)
    assert video["renditions"] == []  # nothing published before a decision
    review = client.get(f"/v1/reviews/{video['review_id']}", headers=tenant.headers).json()
    assert review["status"] == "awaiting_review"
    assert [t["seed"] for t in review["takes"]] == [1, 2]
