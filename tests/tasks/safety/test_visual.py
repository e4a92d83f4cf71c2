"""Visual gate with the real model on real media (astronaut photo, clips made by ffmpeg)."""

from __future__ import annotations

import itertools
import shutil
from pathlib import Path

import pytest

from models.moderation import ModerationModel, default_model_path
from reelforge.core.errors import BlockedBySafety, InvalidInput
from tasks.safety.verdicts import ModerationError, VisualBlocked, VisualVerdict
from tasks.safety.visual import moderate_file, require_safe_media


def test_astronaut_image_face_detected_default_passes_test_policy_blocks(media) -> None:
    ok = moderate_file(media["astronaut_png"])  # default marketing policy: faces are fine
    assert ok.passed is True and ok.status == "passed"
    [frame] = ok.frames
    assert frame.timestamp is None and frame.reasons == ["image"]
    assert any(d.label == "FACE_FEMALE" and d.score > 0.6 for d in frame.detections)
    assert ok.media.kind == "image" and (ok.media.width, ok.media.height) == (512, 512)

    blocked = moderate_file(media["astronaut_jpg"], policy="test-faces")
    assert blocked.passed is False and blocked.status == "blocked"
    assert blocked.category == "face" and blocked.flags[0].label == "FACE_FEMALE"


def test_video_of_the_astronaut_is_blocked_by_the_face_policy(media) -> None:
    with pytest.raises(VisualBlocked) as info:
        require_safe_media(media["astro"], policy="test-faces")
    exc = info.value
    assert isinstance(exc, BlockedBySafety) and exc.exit_code == 3 and exc.category == "face"
    v = exc.verdict
    assert v.passed is False and v.media.kind == "video"
    assert v.model.sha256 == ModerationModel.load().info.sha256
    assert v.policy_version.startswith("test-faces@2026.11.0+")
    assert v.aggregation.startswith("consecutive>=2")
    # >= 2 samples per second over 2 s, first and last frames included
    ts = v.sampled_timestamps
    assert ts[0] == 0.0 and len(ts) >= 4
    assert all(b - a <= 0.5 + 1e-6 for a, b in itertools.pairwise(ts))
    assert "first" in v.frames[0].reasons and "last" in v.frames[-1].reasons
    assert v.frames[-1].timestamp == pytest.approx(2.0 - 1 / 12, abs=0.01)
    flag = v.flags[0]
    assert flag.label == "FACE_FEMALE" and flag.longest_run == len(v.frames)
    det = v.frames[0].detections[0]
    assert det.label == "FACE_FEMALE" and 150 < det.box[0] < 200  # box in source pixels
    assert exc.extra["verdict"]["status"] == "blocked"  # reaches --json and lineage


def test_scene_change_frame_is_sampled_and_thumbnail_time_honoured(media) -> None:
    v = moderate_file(media["cut"], policy="test-faces", thumbnail_time=0.3)
    by_time = {f.timestamp: f.reasons for f in v.frames}
    cut = [t for t, r in by_time.items() if "scene" in r]
    assert cut == [pytest.approx(1.25, abs=0.01)]  # between the 1.0 and 1.5 grid points
    thumbs = [t for t, r in by_time.items() if "thumbnail" in r]
    assert thumbs == [pytest.approx(1 / 3, abs=0.01)]  # first frame at or after 0.3 s
    # the pattern part has no face, the astronaut part does: blocked, flagged from the cut on
    assert v.passed is False
    assert min(t for t in v.flags[0].timestamps if t is not None) == pytest.approx(1.25, abs=0.01)


def test_harmless_video_passes_with_separate_thumbnail_image(media) -> None:
    v = require_safe_media(media["pattern"], thumbnail=media["astronaut_png"])
    assert v.passed is True
    stills = [f for f in v.frames if f.timestamp is None]
    assert len(stills) == 1 and stills[0].reasons == ["thumbnail"]
    assert v.timings["total_s"] > 0 and v.media.frames_decoded == 36
    # the same thumbnail under the face policy blocks the video (a still counts alone)
    blocked = moderate_file(media["pattern"], policy="test-faces", thumbnail=media["astronaut_png"])
    assert blocked.passed is False and blocked.flags[0].timestamps == [None]


def test_a_thumbnail_cut_from_the_video_is_judged_as_its_frame(media) -> None:
    # the astronaut scores over the face threshold but under the hard threshold (0.9): as
    # one frame of a clean clip it does not block; as a still chosen by a person it does
    v = moderate_file(
        media["pattern"], policy="test-faces", thumbnail=media["astronaut_png"],
        thumbnail_time=1.5, thumbnail_is_frame=True,
    )  # fmt: skip
    assert v.passed is True
    near = [f for f in v.frames if f.timestamp is not None and abs(f.timestamp - 1.5) < 1 / 24]
    assert [f.reasons for f in near] == [["thumbnail"]]  # it replaced the video's frame
    assert max(d.score for d in near[0].detections if d.label == "FACE_FEMALE") >= 0.5
    # it counts in the sequence: next to the cut's flagged frames, its flag leads the run
    cut = moderate_file(
        media["cut"], policy="test-faces", thumbnail=media["astronaut_png"],
        thumbnail_time=1.0, thumbnail_is_frame=True,
    )  # fmt: skip
    assert cut.passed is False and min(cut.flags[0].timestamps) == pytest.approx(1.0)
    with pytest.raises(ValueError, match="thumbnail_time"):
        moderate_file(media["pattern"], thumbnail=media["astronaut_png"], thumbnail_is_frame=True)


def test_corrupt_model_fails_closed(media, tmp_path, monkeypatch) -> None:
    from models.moderation import _cached
    from reelforge.core.settings import get_settings

    bad = tmp_path / "broken.onnx"
    bad.write_bytes(default_model_path().read_bytes()[:4096])  # truncated graph
    monkeypatch.setenv("REELFORGE_MODERATION_MODEL", str(bad))
    get_settings.cache_clear()
    try:
        with pytest.raises(ModerationError, match="cannot load moderation model"):
            require_safe_media(media["astro"])
        with pytest.raises(ModerationError):
            moderate_file(media["pattern"])  # even a harmless clip cannot pass
    finally:
        monkeypatch.delenv("REELFORGE_MODERATION_MODEL")
        get_settings.cache_clear()
        _cached.cache_clear()
    record = VisualVerdict.failed_closed(ModerationError("cannot load"), path="x.mp4")
    assert record.passed is False and record.status == "error"
    with pytest.raises(ValueError):
        VisualVerdict(status="error", passed=True, reason="x", error="boom")
    with pytest.raises(TypeError):
        bool(record)


def test_truncated_video_fails_closed(media, tmp_path) -> None:
    from tests.tasks.safety.conftest import ffmpeg

    src = tmp_path / "long.mp4"
    ffmpeg(
        "-f", "lavfi", "-i", "testsrc2=size=320x240:rate=12:duration=6",
        "-c:v", "libx264", "-preset", "ultrafast", "-movflags", "+faststart", str(src),
    )  # fmt: skip
    data = src.read_bytes()
    cut = tmp_path / "cut.mp4"
    cut.write_bytes(data[: len(data) // 3])
    with pytest.raises((ModerationError, InvalidInput)):
        require_safe_media(cut)


def test_policy_naming_classes_the_model_lacks_fails_closed(media, tmp_path) -> None:
    pol = tmp_path / "odd.yaml"
    pol.write_text(
        "name: odd\nversion: '1'\nvisual:\n  classes:\n    WEAPON: {threshold: 0.5}\n",
        encoding="utf-8",
    )
    with pytest.raises(ModerationError, match="WEAPON"):
        moderate_file(media["astronaut_png"], policy=str(pol))


@pytest.mark.parametrize("name", ["empty", "notes", "corrupt", "bomb"])
def test_bad_input_is_invalid_input(media, name: str) -> None:
    with pytest.raises(InvalidInput) as info:
        moderate_file(media[name])
    assert "\n" not in str(info.value)


def test_image_without_extension_and_renamed_video(media, tmp_path) -> None:
    # content decides, not the file name
    clip = tmp_path / "clip.png"
    shutil.copy(media["pattern"], clip)
    assert moderate_file(clip).media.kind == "video"
    pic = tmp_path / "logo"
    shutil.copy(media["astronaut_png"], pic)
    assert moderate_file(Path(pic)).media.kind == "image"
