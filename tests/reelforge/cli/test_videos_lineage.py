"""`reelforge videos` lists published videos; `reelforge lineage` shows small texts inline
and the failed stage runs (real PostgreSQL and S3)."""

from __future__ import annotations

import hashlib
import json
import uuid
from pathlib import Path

from typer.testing import CliRunner

from db.session import session_scope
from reelforge.cli.app import app

runner = CliRunner()


def _invoke(*args: str):
    return runner.invoke(app, list(args), catch_exceptions=False)


def _published_video(store, tmp_path: Path) -> dict[str, str]:
    """prompt (stored in S3) -> rendition (published), and a publish that failed first."""
    from db.lineage import (
        ensure_tenant,
        get_or_create_asset,
        mark_published,
        record_activity,
        record_verdict,
    )
    from db.models import ActivityStatus, AssetKind, SafetyGate

    slug = f"cli-{uuid.uuid4().hex[:8]}"
    prompt_text = f"a red circle moves from left to right {uuid.uuid4().hex[:6]}"
    prompt_file = tmp_path / "prompt.txt"
    prompt_file.write_text(prompt_text)
    run_id = uuid.uuid4()
    with session_scope() as session:
        tenant = ensure_tenant(session, slug)
        prompt_id = uuid.uuid4()
        stored = store.put_file(prompt_file, tenant=slug, kind="prompt", asset_id=prompt_id)
        prompt, _ = get_or_create_asset(
            session, tenant_id=tenant.id, kind=AssetKind.prompt, sha256=stored.sha256,
            size_bytes=stored.size_bytes, uri=stored.uri, media_type="text/plain", asset_id=prompt_id,
        )  # fmt: skip
        big_sha = hashlib.sha256(uuid.uuid4().bytes).hexdigest()
        big, _ = get_or_create_asset(
            session, tenant_id=tenant.id, kind=AssetKind.overlay_text, sha256=big_sha,
            size_bytes=50_000, uri=f"s3://nowhere/{big_sha}", media_type="text/plain",
        )  # fmt: skip
        sha = hashlib.sha256(uuid.uuid4().bytes).hexdigest()
        rendition, _ = get_or_create_asset(
            session, tenant_id=tenant.id, kind=AssetKind.rendition, sha256=sha, size_bytes=10,
            uri=f"s3://reelforge-private/{slug}/r.mp4", media_type="video/mp4",
            media={"width": 320, "height": 180, "duration": 1.5},
        )  # fmt: skip
        record_activity(
            session, tenant_id=tenant.id, stage="publish", used=[(prompt, "input")],
            flow_run_id=run_id, status=ActivityStatus.failed,
            error="FailpointError: failpoint publish fired (1 of 1)",
        )  # fmt: skip
        record_activity(
            session, tenant_id=tenant.id, stage="postprocess",
            used=[(prompt, "input"), (big, "text")], generated=[rendition], flow_run_id=run_id,
        )  # fmt: skip
        record_verdict(
            session, tenant_id=tenant.id, asset=rendition, gate=SafetyGate.visual, passed=True,
            policy_version="test",
        )  # fmt: skip
        mark_published(session, rendition, f"s3://reelforge-published/{slug}/r.mp4")
    return {"tenant": slug, "prompt": prompt_text, "video": str(rendition.id), "run": str(run_id)}


def test_lineage_shows_small_texts_and_failed_stage_runs(stack, store, tmp_path):
    ids = _published_video(store, tmp_path)
    payload = json.loads(_invoke("lineage", ids["video"], "--json").stdout)
    texts = {n["kind"]: n["text"] for n in payload["nodes"]}
    assert texts["prompt"] == ids["prompt"]
    assert texts["overlay_text"] is None  # too big to inline: its URI stays
    (failure,) = payload["failed_activities"]
    assert failure["stage"] == "publish" and failure["flow_run_id"] == ids["run"]
    assert "failpoint publish fired" in failure["error"]

    human = " ".join(_invoke("lineage", ids["video"]).stdout.split())  # rich wraps lines
    assert f'"{ids["prompt"]}"' in human
    assert "failed stage runs (1)" in human and "failpoint publish fired" in human


def test_videos_lists_the_tenants_published_videos(stack, store, tmp_path):
    ids = _published_video(store, tmp_path)
    other = _published_video(store, tmp_path)
    result = _invoke("videos", "--tenant", ids["tenant"], "--json")
    assert result.exit_code == 0, result.stdout
    payload = json.loads(result.stdout)
    assert payload["count"] == 1
    (video,) = payload["videos"]
    assert video["asset_id"] == ids["video"] and video["flow_run_id"] == ids["run"]
    assert video["size"] == "320x180" and "reelforge-published" in video["url"]
    assert other["video"] not in result.stdout

    human = _invoke("videos", "--tenant", ids["tenant"]).stdout
    assert "1 published videos of" in human


def test_videos_refuses_an_unknown_tenant_in_one_line(stack):
    result = _invoke("videos", "--tenant", "no-such-tenant-here", "--json")
    assert result.exit_code == 2
    assert "no tenant 'no-such-tenant-here'" in json.loads(result.stdout)["error"]
