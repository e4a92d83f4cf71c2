"""The visual gate between post-processing and publishing, on the real stack and model.

A rendition made from scikit-image's astronaut photo is blocked by a face-blocking test
policy: quarantined in the private bucket with its verdict in lineage, never published.
"""

from __future__ import annotations

import subprocess

import imageio_ffmpeg
import pytest
import skimage.data
from PIL import Image
from sqlalchemy.exc import IntegrityError

from db.models import AssetKind
from tasks.postprocess.credentials import (
    Disclosure,
    ManifestFacts,
    build_manifest,
    load_signing_identity,
    sign_video,
)
from tasks.postprocess.stage import Rendered
from tasks.publish.stage import publish
from tasks.record import Output, context_for, record_stage
from tasks.safety.stage import moderate
from tasks.safety.verdicts import VisualBlocked


@pytest.fixture
def astronaut_rendition(stack, tmp_path, tenant_slug):
    photo = tmp_path / "astronaut.jpg"
    Image.fromarray(skimage.data.astronaut()).save(photo)
    video = tmp_path / "astronaut.mp4"
    subprocess.run(
        [imageio_ffmpeg.get_ffmpeg_exe(), "-loglevel", "error", "-loop", "1", "-i", str(photo),
         "-t", "2", "-r", "16", "-pix_fmt", "yuv420p", "-c:v", "libx264", str(video)],
        check=True,
    )  # fmt: skip
    # Signed as post-processing signs, so that what refuses publishing here is the gate.
    signed = tmp_path / "astronaut-signed.mp4"
    facts = ManifestFacts(
        title=video.name,
        model_id="astronaut-photo",
        model_version="test",
        pipeline="test",
        ingredients=[],
        disclosure=Disclosure(visible=False, text="AI-generated", language="en"),
        graded=False,
    )
    sign_video(video, signed, build_manifest(facts), load_signing_identity(stack))
    ctx = context_for(tenant_slug)
    rendition, thumbnail = record_stage(
        ctx,
        "postprocess",
        outputs=[
            Output(signed, AssetKind.rendition, {"width": 512, "height": 512}, "video/mp4"),
            Output(photo, AssetKind.thumbnail, {}, "image/jpeg"),
        ],
    )
    rendered = Rendered(
        rendition=rendition,
        thumbnail=thumbnail,
        preview=thumbnail,
        width=512,
        height=512,
        duration=2,
    )
    return ctx, rendered


def _published_keys(store, tenant):
    return store.list_keys(store.published, prefix=f"{tenant}/")


def test_face_policy_quarantines_the_video_and_publish_is_refused(
    astronaut_rendition, store, committed, tenant_slug
):
    ctx, rendered = astronaut_rendition
    with pytest.raises(VisualBlocked) as blocked:
        moderate.fn(ctx, [rendered.rendition], "test-faces")
    assert blocked.value.category == "face"

    verdict = committed(
        "SELECT passed, category, policy_version, details FROM safety_verdicts WHERE asset_id = :id",
        id=rendered.rendition.id,
    )
    assert len(verdict) == 1 and verdict[0].passed is False and verdict[0].category == "face"
    assert verdict[0].details["sampled_timestamps"], "sampled timestamps are kept as evidence"
    classes = {f["label"] for f in verdict[0].details["flags"]}
    assert "FACE_FEMALE" in classes

    bucket, key = rendered.rendition.uri.removeprefix("s3://").split("/", 1)
    assert store.client.get_object_tags(bucket, key)["reelforge-quarantine"] == "true"
    assert bucket == store.private

    with pytest.raises(IntegrityError, match="safety verdict"):
        publish.fn(ctx, rendered, store)
    assert _published_keys(store, tenant_slug) == []  # the copy was rolled back
    published = committed(
        "SELECT count(*) AS n FROM assets WHERE id = :id AND published_at IS NOT NULL",
        id=rendered.rendition.id,
    )
    assert published[0].n == 0


def test_a_moderation_error_fails_closed(
    astronaut_rendition, store, committed, tenant_slug, tmp_path, monkeypatch
):
    from reelforge.core.settings import get_settings

    corrupt = tmp_path / "corrupt.onnx"
    corrupt.write_bytes(b"not an onnx model")
    monkeypatch.setenv("REELFORGE_MODERATION_MODEL", str(corrupt))
    get_settings.cache_clear()
    try:
        ctx, rendered = astronaut_rendition
        with pytest.raises(VisualBlocked) as blocked:
            moderate.fn(ctx, [rendered.rendition, rendered.thumbnail], "default")
    finally:
        monkeypatch.undo()
        get_settings.cache_clear()
    assert blocked.value.category == "moderation-error"
    rows = committed(
        "SELECT passed, category FROM safety_verdicts WHERE asset_id = :id",
        id=rendered.rendition.id,
    )
    assert [(r.passed, r.category) for r in rows] == [(False, "moderation-error")]
    with pytest.raises(IntegrityError):
        publish.fn(ctx, rendered, store)
    assert _published_keys(store, tenant_slug) == []


def test_a_thumbnail_cut_from_the_rendition_shares_its_verdict(
    stack, store, committed, tenant_slug, tmp_path
):
    """Post-processing's own thumbnail (media ``at``) is judged as the rendition's frame at
    that time, by the video rule; a thumbnail without ``at`` is a still, judged alone."""
    photo, chosen_photo = tmp_path / "astronaut.jpg", tmp_path / "astronaut.png"
    for path in (photo, chosen_photo):  # other bytes: one asset per (kind, sha256)
        Image.fromarray(skimage.data.astronaut()).save(path)
    video = tmp_path / "pattern.mp4"
    subprocess.run(
        [imageio_ffmpeg.get_ffmpeg_exe(), "-loglevel", "error", "-f", "lavfi",
         "-i", "testsrc2=size=320x240:rate=16:duration=3", "-pix_fmt", "yuv420p",
         "-c:v", "libx264", str(video)],
        check=True,
    )  # fmt: skip
    ctx = context_for(tenant_slug)
    rendition, cut, chosen = record_stage(
        ctx,
        "postprocess",
        outputs=[
            Output(video, AssetKind.rendition, {"width": 320, "height": 240}, "video/mp4"),
            Output(photo, AssetKind.thumbnail, {"at": 1.0}, "image/jpeg"),
            Output(chosen_photo, AssetKind.thumbnail, {"width": 512}, "image/png"),
        ],
    )
    # one face-flagged frame under 0.9 in a clean clip: not two in a row, so it passes
    verdicts = moderate.fn(ctx, [rendition, cut], "test-faces")
    assert [v.passed for v in verdicts] == [True, True]
    assert verdicts[1] is verdicts[0]
    rows = committed(
        "SELECT asset_id, passed FROM safety_verdicts WHERE asset_id IN (:a, :b)",
        a=rendition.id,
        b=cut.id,
    )
    assert sorted((str(r.asset_id), r.passed) for r in rows) == sorted(
        [(str(rendition.id), True), (str(cut.id), True)]
    )
    with pytest.raises(VisualBlocked):  # the same picture as a thumbnail someone chose
        moderate.fn(ctx, [rendition, chosen], "test-faces")
