"""Resume: a run that failed at a stage is retried under the same flow-run id, in a fresh
process, and only the stages that did not finish run again (the others come back Cached
from the results bucket); lineage shows each finished stage once."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import uuid
from pathlib import Path

import httpx
import pytest

from reelforge.core.failpoints import FailpointError
from reelforge.core.jobs import VideoJob
from reelforge.ops.run import run_video

REPO = Path(__file__).resolve().parents[2]
HAS_MODEL = (REPO / "models" / "tiny" / "model_index.json").is_file()
needs_model = pytest.mark.skipif(not HAS_MODEL, reason="the tiny model (models/tiny) is not trained yet")  # fmt: skip


def _failpoints(monkeypatch, spec: str) -> None:
    monkeypatch.setenv("REELFORGE_FAILPOINTS", f"{spec},scope-{uuid.uuid4().hex[:8]}:0")


def _cli(*args: str, env: dict[str, str] | None = None) -> tuple[int, dict]:
    done = subprocess.run(
        [str(Path(sys.executable).parent / "reelforge"), *args, "--json"],
        capture_output=True,
        text=True,
        env=env or os.environ.copy(),
        cwd=REPO,
        timeout=600,
    )
    lines = [line for line in done.stdout.splitlines() if line.startswith("{")]
    assert lines, done.stdout + done.stderr
    return done.returncode, json.loads(lines[-1])


def _task_states(run_id: str, expect: int, timeout: float = 20.0) -> dict[str, list[str]]:
    """Task-run state names by task name (task runs are recorded asynchronously)."""
    from prefect import get_client
    from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterId

    deadline = time.monotonic() + timeout
    while True:
        with get_client(sync_client=True) as client:
            runs = client.read_task_runs(
                flow_run_filter=FlowRunFilter(id=FlowRunFilterId(any_=[uuid.UUID(run_id)]))
            )
        if len(runs) >= expect or time.monotonic() > deadline:
            states: dict[str, list[str]] = {}
            for run in runs:
                states.setdefault(_name(run), []).append(run.state.name if run.state else "?")
            return states
        time.sleep(0.5)


def _name(task_run) -> str:
    return task_run.name.rsplit("-", 1)[0]


def _stage_counts(committed, run_id: str) -> dict[str, int]:
    rows = committed(
        "SELECT stage, count(*) AS n FROM activities WHERE flow_run_id = :run "
        "AND status = 'succeeded' GROUP BY stage",
        run=run_id,
    )
    return {row.stage: row.n for row in rows}


def test_retry_resumes_at_the_failed_stage_in_a_fresh_process(
    stack, tenant_slug, committed, monkeypatch
):
    _failpoints(monkeypatch, "text-safety:1")
    job = VideoJob(
        tenant=tenant_slug, prompt="a green triangle moves up", seed=5, lut="cool", text="Hi!"
    )
    with pytest.raises(FailpointError) as failed:
        run_video(job)
    run_id = failed.value.flow_run_id
    assert _stage_counts(committed, run_id) == {"ingest": 1, "ingest_brand_kit": 1, "enhance": 1}
    (failure,) = committed(
        "SELECT a.stage, a.error, count(u.asset_id) AS inputs FROM activities a "
        "LEFT JOIN used u ON u.activity_id = a.id "
        "WHERE a.flow_run_id = :run AND a.status = 'failed' GROUP BY a.id",
        run=run_id,
    )
    assert failure.stage == "text_safety" and "FailpointError" in failure.error, failure
    assert failure.inputs == 3  # the prompt, the overlay text and the enhanced prompt

    code, payload = _cli("retry", run_id)  # another process: results come from S3
    if HAS_MODEL:
        assert code == 0, payload
        assert payload["state"] == "COMPLETED" and payload["id"] == run_id
    else:  # resumed past the failpoint, then stopped where the missing model is needed
        assert code == 2 and "tiny model missing" in payload["error"], payload
        assert payload["flow_run_id"] == run_id

    states = _task_states(run_id, expect=8)
    for finished in ("record-inputs", "ingest-brand-kit", "enhance-prompt"):
        assert sorted(states[finished]) == ["Cached", "Completed"], (finished, states)
    assert sorted(states["text-safety"]) == ["Completed", "Failed"]
    counts = _stage_counts(committed, run_id)
    assert counts["ingest"] == 1 and counts["enhance"] == 1 and counts["text_safety"] == 1


@needs_model
@pytest.mark.slow
def test_failpoint_at_publish_then_retry_publishes_with_one_generation(
    stack, store, tenant_slug, committed, monkeypatch
):
    _failpoints(monkeypatch, "publish:1")
    job = VideoJob(tenant=tenant_slug, prompt="a red circle moves from left to right", seed=11)
    with pytest.raises(FailpointError) as failed:
        run_video(job)
    run_id = failed.value.flow_run_id
    assert _stage_counts(committed, run_id).get("publish") is None
    assert store.list_keys(store.published, prefix=f"{tenant_slug}/") == []

    code, listed = _cli("runs", "--status", "failed", "--limit", "50")
    assert code == 0 and run_id in {r["id"] for r in listed["runs"]}

    code, payload = _cli("retry", run_id)
    assert code == 0, payload
    counts = _stage_counts(committed, run_id)
    assert counts["generate"] == 1 and counts["postprocess"] == 1 and counts["publish"] == 1
    generations = committed(
        "SELECT count(*) AS n FROM activities a JOIN tenants t ON t.id = a.tenant_id "
        "WHERE t.slug = :slug AND a.stage = 'generate'",
        slug=tenant_slug,
    )
    assert generations[0].n == 1
    states = _task_states(run_id, expect=16)
    assert "Cached" in states["generate"] and "Cached" in states["post-process"]
    published = committed(
        "SELECT a.published_uri FROM assets a JOIN tenants t ON t.id = a.tenant_id "
        "WHERE t.slug = :slug AND a.kind = 'rendition'",
        slug=tenant_slug,
    )
    assert len(published) == 1 and published[0].published_uri
    url = store.presign(published[0].published_uri)
    assert httpx.get(url, timeout=30).status_code == 200


def test_retry_refuses_what_cannot_be_retried(stack):
    code, payload = _cli("retry", "not-a-run")
    assert code == 2 and "not a run id" in payload["error"]
    code, payload = _cli("retry", str(uuid.uuid4()))
    assert code == 2 and "no run" in payload["error"]
