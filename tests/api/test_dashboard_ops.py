"""The ops view in a real Chromium: every run of a tenant, however it was started.

`reelforge generate`, a `generate` that fails at publish (failpoint) and a `campaign run`,
all from the CLI, show on the tenant's Runs page (with origin, progress, the failed stage
and its error), another tenant's run does not, and the Retry button on the failed CLI run
completes it in the API process (that test needs Debian's chromium and the small model).
Another tenant's runs can be neither seen, nor retried, nor cancelled.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid
from pathlib import Path

import pytest

from tests.api.test_browser import CHROMIUM, MODEL, SHOTS, _login, _serve, _stop

needs_chromium = pytest.mark.skipif(not CHROMIUM.exists(), reason="needs Debian's chromium")
needs_model = pytest.mark.skipif(not MODEL.exists(), reason="needs the small model (models/tiny)")
REELFORGE = str(Path(sys.executable).parent / "reelforge")


def _cli(*args: str, env: dict[str, str] | None = None) -> tuple[int, dict]:
    done = subprocess.run(
        [REELFORGE, *args, "--json"],
        capture_output=True,
        text=True,
        env={**os.environ, **(env or {})},
        timeout=600,
    )
    return done.returncode, json.loads(done.stdout.strip().splitlines()[-1])


def _tagged_run(slug: str) -> uuid.UUID:
    """A flow run of a tenant, made in-process elsewhere (tagged, never started)."""
    from prefect import get_client

    from flows import load_flow

    parameters = {"job": {"tenant": slug, "prompt": "another tenant's secret prompt"}}
    with get_client(sync_client=True) as client:
        run = client.create_flow_run(
            load_flow("video"), parameters=parameters, tags=[f"tenant:{slug}"]
        )
    return run.id


def _cancel(run_id: uuid.UUID) -> None:
    from prefect import get_client
    from prefect.states import Cancelled

    with get_client(sync_client=True) as client:
        client.set_flow_run_state(run_id, Cancelled(), force=True)


@pytest.fixture
def browser():
    from playwright.sync_api import sync_playwright

    from tests.api.test_browser import ARGS

    SHOTS.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as pw:
        chromium = pw.chromium.launch(executable_path=str(CHROMIUM), args=ARGS, headless=True)
        try:
            yield chromium
        finally:
            chromium.close()


def test_another_tenants_run_cannot_be_seen_retried_or_cancelled(app, make_tenant):
    from reelforge.ops.runs import get_run
    from tests.api.test_sessions import _csrf, _login

    owner, intruder = make_tenant("ops-own"), make_tenant("ops-in")
    run_id = _tagged_run(owner.slug)
    waiting = get_run(run_id).state
    try:
        own, _ = _login(app, owner.key)
        runs = own.get("/dashboard/runs")
        assert f'data-run="{run_id}"' in runs.text
        assert "another tenant&#39;s secret prompt" in runs.text
        assert "Stages" in own.get(f"/dashboard/runs/{run_id}").text

        other, _ = _login(app, intruder.key)
        page = other.get("/dashboard/runs")
        assert str(run_id) not in page.text
        assert other.get(f"/dashboard/runs/{run_id}").status_code == 404
        for action in ("retry", "cancel"):
            refused = other.post(
                f"/dashboard/runs/{run_id}/{action}",
                data={"csrf": _csrf(page.text)},
                follow_redirects=False,
            )
            assert refused.status_code == 404
        assert get_run(run_id).state == waiting == "PENDING"  # untouched

        cancelled = own.post(
            f"/dashboard/runs/{run_id}/cancel",
            data={"csrf": _csrf(runs.text)},
            follow_redirects=False,
        )
        assert cancelled.status_code == 303 and "cancelling" in cancelled.headers["location"]
        assert get_run(run_id).state == "CANCELLED"
        assert own.get("/", follow_redirects=False).headers["location"] == "/dashboard/runs"
    finally:
        _cancel(run_id)


@needs_chromium
@needs_model
def test_cli_runs_listed_and_failed_cli_run_retried(browser, tmp_path, make_tenant):
    tenant = make_tenant("ops")
    other = make_tenant("ops-other")
    code, made = _cli("generate", "a red circle moves from left to right", "--seed", "4",
                      "--tenant", tenant.slug)  # fmt: skip
    assert code == 0, made
    failpoints = f"publish:1,ops-{uuid.uuid4().hex[:8]}:0"  # a fresh counter: fails once
    code, failed = _cli("generate", "a blue square moves from right to left", "--seed", "4",
                        "--tenant", tenant.slug, env={"REELFORGE_FAILPOINTS": failpoints})  # fmt: skip
    assert code != 0 and "failpoint publish" in failed["error"], failed
    spec = tmp_path / "campaign.yaml"
    spec.write_text(
        f"name: ops-{uuid.uuid4().hex[:6]}\ntenant: {tenant.slug}\n"
        "prompt: a {colour} circle moves from left to right\n"
        "products:\n  - {sku: c-1, name: Circle, colour: green}\n"
        'renditions: ["16:9"]\ngeneration: {seed: 4}\n'
    )
    code, campaign = _cli("campaign", "run", str(spec))
    assert code == 0, campaign
    hidden = _tagged_run(other.slug)

    proc, url = _serve(tmp_path, dispatch=False, env={})
    try:
        page = browser.new_page(viewport={"width": 1500, "height": 900})
        page.goto(url)  # the root is the dashboard (its login page first)
        assert page.url.endswith("/dashboard/login")
        _login(page, url, tenant.key)
        made_row = page.locator(f"tr.run[data-run='{made['flow_run_id']}']")
        assert made_row.get_attribute("data-status") == "completed"
        assert made_row.get_attribute("data-origin") == "CLI"
        assert "8/8" in made_row.locator("td.progress").inner_text()
        assert made_row.locator("td.duration").inner_text().endswith(" s")
        failed_row = f"tr.run[data-run='{failed['flow_run_id']}']"
        assert page.locator(failed_row).get_attribute("data-status") == "failed"
        error = page.locator(failed_row).locator(".run-error").inner_text()
        assert "publish" in error and "failpoint publish fired" in error
        campaign_row = page.locator(f"tr.run[data-run='{campaign['flow_run_id']}']")
        assert campaign_row.get_attribute("data-status") == "completed"
        assert "campaign" in campaign_row.inner_text()
        assert str(hidden) not in page.content()
        assert "another tenant's secret prompt" not in page.content()
        page.screenshot(path=str(SHOTS / "ops-runs.png"), full_page=True)

        page.locator(failed_row).locator("a.details").click()  # the run, from lineage
        failed_stage = page.locator("#stages tr.status-failed")
        assert "publish" in failed_stage.inner_text()
        assert "failpoint publish fired" in failed_stage.inner_text()
        assert page.inner_text("#run-origin") == "CLI"
        page.screenshot(path=str(SHOTS / "ops-failed-run.png"), full_page=True)
        page.click("#nav-runs")
        page.locator(failed_row).locator("button.retry").click()
        page.wait_for_selector("#message")
        assert "retrying" in page.inner_text("#message")
        page.wait_for_selector(f"{failed_row}[data-status='completed']", timeout=300_000)
        page.screenshot(path=str(SHOTS / "ops-retried.png"), full_page=True)

        page.click("#nav-videos")
        card = page.locator(f"section.card[data-asset='{made['asset_id']}']")
        assert "CLI" in card.locator(".made-by").inner_text()
        assert card.locator("video.player").count() == 1
        assert page.locator("section.card").count() == 3  # generate, the retried one, campaign
        page.screenshot(path=str(SHOTS / "ops-videos.png"), full_page=True)

        seen_by_other = browser.new_page()
        _login(seen_by_other, url, other.key)
        assert seen_by_other.locator(f"tr.run[data-run='{hidden}']").count() == 1
        assert made["flow_run_id"] not in seen_by_other.content()
    finally:
        _stop(proc)
        _cancel(hidden)

    # the retried run's video: its lineage shows the prompt's text and the failed publish
    from reelforge.ops.runs import get_run

    assert get_run(failed["flow_run_id"]).state == "COMPLETED"
    from sqlalchemy import select

    from db.models import Activity, Asset, AssetKind, Generated
    from db.session import session_scope

    with session_scope() as session:
        page_asset = session.scalar(
            select(Asset.id)
            .join(Generated, Generated.asset_id == Asset.id)
            .join(Activity, Activity.id == Generated.activity_id)
            .where(
                Activity.flow_run_id == uuid.UUID(failed["flow_run_id"]),
                Asset.kind == AssetKind.rendition,
            )
        )
    assert page_asset is not None
    code, retried = _cli("lineage", str(page_asset))
    assert code == 0, retried
    texts = {n["kind"]: n["text"] for n in retried["nodes"] if n["text"] is not None}
    assert texts["prompt"] == "a blue square moves from right to left"
    assert texts["enhanced_prompt"]
    assert [f["stage"] for f in retried["failed_activities"]] == ["publish"]
    assert "failpoint publish fired" in retried["failed_activities"][0]["error"]
