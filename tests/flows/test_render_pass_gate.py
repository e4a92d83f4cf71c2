"""The rendition's safety gate inside post-processing, on the render pass's own frames, and the
logo's inside text safety: fewer Prefect task runs, the same verdicts and guarantees.

Real stack (PostgreSQL, S3, Prefect), the small model, the ONNX moderation model and ffmpeg.
"""

from __future__ import annotations

import asyncio
import subprocess
from pathlib import Path

import imageio_ffmpeg
import pytest
import skimage.data
from PIL import Image

from db.models import AssetKind
from reelforge.core.jobs import VideoJob
from reelforge.ops.run import run_video
from tasks.inputs import BrandKit
from tasks.postprocess.stage import postprocess
from tasks.record import Output, context_for, record_stage
from tasks.safety.verdicts import VisualBlocked

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


async def _task_run_names(flow_run_id) -> list[str]:
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterId

    async with get_client() as client:
        runs = await client.read_task_runs(
            flow_run_filter=FlowRunFilter(id=FlowRunFilterId(any_=[flow_run_id]))
        )
    return sorted(run.task_key.rsplit("-", 1)[0] for run in runs)


def _verdicts(committed, asset_id):
    return committed(
        "SELECT v.passed, v.details, ac.stage FROM safety_verdicts v "
        "JOIN activities ac ON ac.id = v.activity_id WHERE v.asset_id = :id",
        id=asset_id,
    )


def test_a_video_is_judged_on_its_render_pass_in_eight_task_runs(stack, tenant_slug, committed):
    job = VideoJob(tenant=tenant_slug, prompt="a red circle moves from left to right", seed=7,
                   aspect="9:16", lut="warm", logo=EXAMPLES / "logo.png",
                   music=EXAMPLES / "music.wav", text="Spring sale")  # fmt: skip
    result = run_video(job)

    (rendition,) = _verdicts(committed, result.video.asset_id)
    assert rendition.passed and rendition.stage == "visual_safety"
    media = rendition.details["media"]
    assert media["frames_from"] == "render pass" and media["frames_decoded"] == 0
    assert media["sha256"] == result.video.sha256  # the signed file that was published
    assert rendition.details["sampled_timestamps"][0] == 0.0
    clip = _verdicts(committed, result.raw_clip_asset_id)
    assert [c.details["media"]["frames_from"] for c in clip] == ["decoded"]
    logo = committed(
        "SELECT v.passed FROM safety_verdicts v JOIN assets a ON a.id = v.asset_id "
        "JOIN tenants t ON t.id = a.tenant_id WHERE t.slug = :t AND a.kind = 'logo'",
        t=tenant_slug,
    )
    assert [row.passed for row in logo] == [True]

    names = asyncio.run(_task_run_names(result.flow_run_id))
    # record-inputs, ingest-brand-kit, enhance, text-safety (+ logo), generate,
    # visual-safety (clip), post-process (+ rendition's gate), publish
    assert len(names) == 8, names
    assert names.count("moderate") == 1


def _astronaut_clip(tmp_path: Path) -> Path:
    photo = tmp_path / "astronaut.png"
    Image.fromarray(skimage.data.astronaut()).save(photo)
    clip = tmp_path / "astronaut.mp4"
    subprocess.run(
        [imageio_ffmpeg.get_ffmpeg_exe(), "-loglevel", "error", "-loop", "1", "-i", str(photo),
         "-t", "2", "-r", "16", "-pix_fmt", "yuv420p", "-c:v", "libx264", str(clip)],
        check=True,
    )  # fmt: skip
    return clip


def test_a_blocked_rendition_never_leaves_post_processing(
    stack, store, tenant_slug, committed, tmp_path
):
    """The face-blocking test policy blocks a rendition of the astronaut photo: the verdicts are
    recorded (from the render pass's frames), both files are quarantined, nothing is published
    (PostgreSQL refuses it anyway: tests/flows/test_safety_gate.py)."""
    ctx = context_for(tenant_slug)
    (clip,) = record_stage(
        ctx,
        "generate",
        outputs=[Output(_astronaut_clip(tmp_path), AssetKind.raw_clip, {}, "video/mp4")],
    )
    job = VideoJob(tenant=tenant_slug, prompt="a portrait", aspect="1:1", policy="test-faces")
    with pytest.raises(VisualBlocked) as blocked:
        postprocess.fn(ctx, job, clip, BrandKit(), None)
    assert blocked.value.category == "face"

    rows = committed(
        "SELECT a.id, a.kind, a.uri, a.media, v.passed, v.details FROM assets a "
        "JOIN safety_verdicts v ON v.asset_id = a.id JOIN tenants t ON t.id = a.tenant_id "
        "WHERE t.slug = :t AND a.kind IN ('rendition', 'thumbnail')",
        t=tenant_slug,
    )
    assert sorted(r.kind for r in rows) == ["rendition", "thumbnail"]
    assert all(r.passed is False for r in rows)
    rendition = next(r for r in rows if r.kind == "rendition")
    assert rendition.details["media"]["frames_from"] == "render pass"
    assert "FACE_FEMALE" in {f["label"] for f in rendition.details["flags"]}
    for row in rows:
        bucket, key = row.uri.removeprefix("s3://").split("/", 1)
        assert store.client.get_object_tags(bucket, key)["reelforge-quarantine"] == "true"

    published = committed(
        "SELECT count(*) AS n FROM assets a JOIN tenants t ON t.id = a.tenant_id "
        "WHERE t.slug = :t AND a.published_at IS NOT NULL",
        t=tenant_slug,
    )
    assert published[0].n == 0
    assert not list(store.list_keys(store.published, prefix=f"{tenant_slug}/"))
