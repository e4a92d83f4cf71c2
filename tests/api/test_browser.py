"""The dashboard in a real headless Chromium (Debian's package, driven by Playwright).

Screenshots of every page land in test-artifacts/screenshots/ for review. The end-to-end
part (a real video fails at publish through a failpoint, is retried from the button and
completes) needs the small generation model (models/tiny/model_index.json).
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
CHROMIUM = Path("/usr/bin/chromium")
SHOTS = REPO / "test-artifacts" / "screenshots"
MODEL = REPO / "models" / "tiny" / "model_index.json"
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
        "--disable-component-update", "--disable-sync", "--no-first-run"]  # fmt: skip

pytestmark = pytest.mark.skipif(
    not CHROMIUM.exists(), reason="needs Debian's chromium (apt-get install chromium)"
)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _serve(tmp: Path, *, dispatch: bool, env: dict[str, str]):
    import httpx

    port = _free_port()
    log = (tmp / f"serve-{port}.log").open("wb")
    proc = subprocess.Popen(
        [
            str(Path(sys.executable).parent / "reelforge"),
            "serve",
            "--port",
            str(port),
            "--dispatch" if dispatch else "--no-dispatch",
        ],
        stdout=log,
        stderr=subprocess.STDOUT,
        cwd=REPO,
        env={**os.environ, "REELFORGE_API_SESSION_SECRET": uuid.uuid4().hex, **env},
        start_new_session=True,
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 90
    while True:
        try:
            if httpx.get(f"{url}/healthz", timeout=1).status_code == 200:
                return proc, url
        except httpx.HTTPError:
            pass
        assert proc.poll() is None, (tmp / f"serve-{port}.log").read_text()[-2000:]
        assert time.monotonic() < deadline, "the API did not start"
        time.sleep(0.5)


def _stop(proc: subprocess.Popen) -> None:
    import signal

    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGINT)
        try:
            proc.wait(20)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(10)


@pytest.fixture
def browser():
    from playwright.sync_api import sync_playwright

    SHOTS.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as pw:
        chromium = pw.chromium.launch(executable_path=str(CHROMIUM), args=ARGS, headless=True)
        try:
            yield chromium
        finally:
            chromium.close()


def _login(page, url: str, key: str) -> None:
    page.goto(f"{url}/dashboard/login")
    page.fill("#api-key", key)
    page.click("#login-button")
    page.wait_for_url(f"{url}/dashboard/runs")


def test_pages_login_submit_lineage(browser, tmp_path, make_tenant, committed_chain, client):
    from tests.api.conftest import complete_job, fail_job

    tenant = make_tenant("ui")
    chain = committed_chain(tenant)
    done = client.post("/v1/videos", json={"prompt": "a red ball rolls"}, headers=tenant.headers).json()["id"]  # fmt: skip
    complete_job(done, chain["rendition"])
    broken = client.post("/v1/videos", json={"prompt": "a blue ball"}, headers=tenant.headers).json()["id"]  # fmt: skip
    fail_job(broken, "FailpointError: failpoint publish fired (1 of 1)")
    campaign = {"name": "spring", "prompt": "a {colour} ball", "products": [{"sku": "b-1", "name": "Ball", "colour": "red"}]}  # fmt: skip
    assert client.post("/v1/campaigns", json=campaign, headers=tenant.headers).status_code == 202
    proc, url = _serve(tmp_path, dispatch=False, env={})
    try:
        page = browser.new_page(viewport={"width": 1400, "height": 900})
        page.goto(f"{url}/dashboard/runs")
        assert page.url.endswith("/dashboard/login")  # not logged in: sent to the login page
        page.fill("#api-key", "rf_000000000000_" + "A" * 43)
        page.click("#login-button")
        assert "not valid" in page.inner_text("#login-error")
        page.screenshot(path=str(SHOTS / "login.png"))
        _login(page, url, tenant.key)
        assert page.inner_text("#tenant") == tenant.slug

        page.fill("#prompt", "a green cube slides left")
        page.fill("#seed", "5")
        page.click("#submit-button")
        page.wait_for_selector("#message")
        assert "submitted" in page.inner_text("#message")
        row = page.locator("tr.run", has_text="a green cube slides left")
        assert row.get_attribute("data-status") == "queued"
        failed_row = page.locator(f"tr.run[data-job='{broken}']")
        assert "failpoint publish fired" in failed_row.inner_text()
        assert failed_row.locator("button.retry").count() == 1
        page.screenshot(path=str(SHOTS / "runs.png"), full_page=True)
        failed_row.locator("button.retry").click()
        page.wait_for_selector("#message")
        assert "retrying" in page.inner_text("#message")
        # it never had a flow run (failed by hand here), so it is queued afresh
        status = page.locator(f"tr.run[data-job='{broken}']").get_attribute("data-status")
        assert status in ("queued", "retrying")

        page.click("#nav-videos")
        card = page.locator(f"section.card[data-video='{done}']")
        assert card.locator("video.player").count() == 1
        assert "reelforge-published" in card.locator("video.player").get_attribute("src")
        page.screenshot(path=str(SHOTS / "videos.png"), full_page=True)

        card.locator("a.lineage").click()
        page.wait_for_selector("svg#lineage")
        kinds = set(page.locator("svg#lineage a.node").evaluate_all("els => els.map(e => e.getAttribute('class'))"))  # fmt: skip
        for kind in ("prompt", "enhanced_prompt", "raw_clip", "lut", "rendition", "published"):
            assert f"node kind-{kind}" in kinds
        assert "seed 7" in page.locator("svg#lineage").text_content()
        page.screenshot(path=str(SHOTS / "lineage.png"), full_page=True)
        page.locator("svg#lineage a.kind-prompt").first.click()
        page.wait_for_url(f"**/dashboard/assets/{chain['prompt']}/lineage")

        page.click("#nav-campaigns")
        assert "spring" in page.inner_text("table.campaigns")
        page.screenshot(path=str(SHOTS / "campaigns.png"), full_page=True)

        other = make_tenant("ui-other")
        page2 = browser.new_page()
        _login(page2, url, other.key)
        page2.goto(f"{url}/dashboard/assets/{chain['rendition']}/lineage")
        assert "Not found" in page2.content()
        assert broken not in page2.content()
    finally:
        _stop(proc)


@pytest.mark.skipif(
    not MODEL.exists(), reason="needs the small model (models/tiny/model_index.json)"
)
def test_video_fails_at_publish_then_retry_completes(browser, tmp_path, make_tenant):
    tenant = make_tenant("e2e-ui")
    failpoints = f"publish:1,ui-{uuid.uuid4().hex[:8]}:0"  # a fresh counter: fails exactly once
    env = {"REELFORGE_API_EXECUTOR": "local", "REELFORGE_FAILPOINTS": failpoints}
    proc, url = _serve(tmp_path, dispatch=True, env=env)
    try:
        page = browser.new_page(viewport={"width": 1400, "height": 900})
        _login(page, url, tenant.key)
        page.fill("#prompt", "a red circle moves from left to right")
        page.fill("#seed", "3")
        page.click("#submit-button")
        page.wait_for_selector("#message")
        job_id = page.inner_text("#message").split()[-1]
        row = f"tr.run[data-job='{job_id}']"
        page.wait_for_selector(f"{row}[data-status='running']", timeout=120_000)
        page.screenshot(path=str(SHOTS / "e2e-running.png"), full_page=True)
        page.wait_for_selector(f"{row}[data-status='failed']", timeout=480_000)
        assert "failpoint publish fired" in page.inner_text(row)
        page.screenshot(path=str(SHOTS / "e2e-failed.png"), full_page=True)
        page.locator(row).locator("button.retry").click()
        page.wait_for_selector(f"{row}[data-status='completed']", timeout=300_000)
        page.screenshot(path=str(SHOTS / "e2e-completed.png"), full_page=True)
        page.locator(row).locator("a.lineage").click()
        page.wait_for_selector("svg#lineage")
        classes = " ".join(page.locator("svg#lineage a.node").evaluate_all("els => els.map(e => e.getAttribute('class'))"))  # fmt: skip
        for kind in ("prompt", "enhanced_prompt", "raw_clip", "rendition", "published"):
            assert f"kind-{kind}" in classes
        page.screenshot(path=str(SHOTS / "e2e-lineage.png"), full_page=True)
        page.click("#nav-videos")
        assert page.locator("video.player").count() >= 1
        page.screenshot(path=str(SHOTS / "e2e-videos.png"), full_page=True)
    finally:
        _stop(proc)
    from db.models import Activity, JobRecord
    from db.session import session_scope

    with session_scope() as session:
        job = session.get_one(JobRecord, uuid.UUID(job_id))
        generations = (
            session.query(Activity)
            .filter(Activity.flow_run_id == job.flow_run_id, Activity.stage == "generate")
            .count()
        )
    assert job.attempts == 2 and generations <= 1  # the retry did not generate again
