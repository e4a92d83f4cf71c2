"""The video flow end to end on the real local stack: PostgreSQL, S3, a Prefect server,
the small model, the real ONNX moderation model and real ffmpeg."""

from __future__ import annotations

import hashlib
import io
from pathlib import Path

import av
import httpx
import pytest

from reelforge.core.errors import BlockedBySafety
from reelforge.core.jobs import VideoJob
from reelforge.ops.run import run_video

REPO = Path(__file__).resolve().parents[2]
EXAMPLES = REPO / "examples"


def _job(tenant: str, **overrides) -> VideoJob:
    fields = dict(
        tenant=tenant,
        prompt="a red circle moves from left to right",
        seed=1,
        aspect="16:9",
        quality="720p",
        lut="warm",
        logo=EXAMPLES / "logo.png",
        music=EXAMPLES / "music.wav",
        text="Summer sale: 20% off",
    )
    return VideoJob(**(fields | overrides))


def test_video_flow_publishes_a_rendition_with_its_full_lineage(
    stack, store, tenant_slug, committed
):
    stages: list[str] = []
    result = run_video(_job(tenant_slug), on_stage=lambda stage, *_: stages.append(stage))
    assert stages[-1] == "publish" and len(stages) == 8

    # The published object exists, and its presigned URL serves exactly the recorded bytes.
    assert result.video.uri.startswith(f"s3://{stack.bucket_published}/{tenant_slug}/")
    body = httpx.get(result.video.url, timeout=30).content
    assert hashlib.sha256(body).hexdigest() == result.video.sha256
    with av.open(io.BytesIO(body)) as container:
        stream = container.streams.video[0]
        assert (stream.codec_context.width, stream.codec_context.height) == (1280, 720)
        assert stream.codec_context.name == "h264"
        assert container.streams.audio, "music must be muxed in"

    # Full chain from prompt to rendition, every node produced inside this flow run.
    rows = committed(
        """WITH RECURSIVE up(id) AS (SELECT CAST(:root AS uuid) UNION
             SELECT d.source_id FROM up JOIN derived_from d ON d.asset_id = up.id)
           SELECT a.kind FROM up JOIN assets a ON a.id = up.id""",
        root=result.video.asset_id,
    )
    kinds = {row.kind for row in rows}
    assert {"prompt", "enhanced_prompt", "model_checkpoint", "raw_clip", "rendition", "lut",
            "logo", "music", "overlay_text"} <= kinds  # fmt: skip
    stages_run = committed(
        "SELECT stage, count(*) AS n FROM activities WHERE flow_run_id = :run GROUP BY stage",
        run=result.flow_run_id,
    )
    by_stage = {row.stage: row.n for row in stages_run}
    assert by_stage["generate"] == 1 and by_stage["publish"] == 1 and by_stage["text_safety"] == 1
    verdicts = committed(
        "SELECT gate, passed FROM safety_verdicts WHERE asset_id = :id", id=result.video.asset_id
    )
    assert [(v.gate, v.passed) for v in verdicts] == [("visual", True)]
    published = committed(
        "SELECT published_uri FROM assets WHERE id = :id", id=result.video.asset_id
    )
    assert published[0].published_uri == result.video.uri


def test_the_same_job_is_not_generated_twice(stack, tenant_slug, committed):
    job = _job(tenant_slug, logo=None, music=None, lut=None, text=None)
    first = run_video(job)
    second = run_video(job)
    assert (first.generation_cached, second.generation_cached) == (False, True)
    assert first.raw_clip_asset_id == second.raw_clip_asset_id
    assert second.video.asset_id == first.video.asset_id  # same bytes, one asset
    generations = committed(
        "SELECT count(*) AS n FROM activities a JOIN tenants t ON t.id = a.tenant_id "
        "WHERE t.slug = :slug AND a.stage = 'generate'",
        slug=tenant_slug,
    )
    assert generations[0].n == 1


def test_a_blocked_prompt_stops_before_generation(stack, tenant_slug, committed):
    job = _job(tenant_slug, prompt="a red circle with g.o.r.e moves right", logo=None, music=None)
    with pytest.raises(BlockedBySafety) as blocked:
        run_video(job)
    assert blocked.value.category == "violence"
    assert "g.o.r.e" not in str(blocked.value) and "gore" not in str(blocked.value).lower()
    assert blocked.value.flow_run_id
    stages = committed(
        "SELECT DISTINCT stage FROM activities WHERE flow_run_id = :run",
        run=blocked.value.flow_run_id,
    )
    assert "generate" not in {row.stage for row in stages}
    failing = committed(
        "SELECT v.category FROM safety_verdicts v JOIN assets a ON a.id = v.asset_id "
        "JOIN tenants t ON t.id = a.tenant_id WHERE t.slug = :slug AND NOT v.passed",
        slug=tenant_slug,
    )
    assert [row.category for row in failing] == ["violence"]
