"""The safety gate's frames from the render's own ffmpeg pass (`render_rendition(frames=...)`).

Real ffmpeg, PyAV and moderation model: the second output must not change the rendition, must
deliver exactly its frames, and the gate must judge them the way it judges the decoded file.
"""

from __future__ import annotations

import shutil

import av
import numpy as np
import pytest
import skimage.data

from models.moderation import ModerationModel, ModerationModelError
from tasks.postprocess.logo import LogoSpec
from tasks.postprocess.overlay import TextSpec
from tasks.postprocess.renditions import (
    frames_to_mp4,
    render_base,
    render_rendition,
    render_variant,
    rendition_preset,
)
from tasks.safety.policy import load_policy
from tasks.safety.verdicts import ModerationError
from tasks.safety.visual import (
    RenderFrames,
    _rendition_rgb,
    moderate_file,
    sample_video,
    video_track_sha256,
)

from .conftest import EXAMPLES, make_clip


def _frames_in(path) -> int:
    with av.open(str(path)) as container:
        return sum(1 for _ in container.decode(video=0))


@pytest.fixture(scope="module")
def clip(tmp_path_factory):
    return make_clip(tmp_path_factory.mktemp("frames") / "clip.mp4", seconds=3.0)


def test_the_render_pass_gives_the_renditions_frames_and_the_same_bytes(tmp_path, clip, cache_dir):
    preset = rendition_preset("9:16", "720p", 30)
    kw = dict(lut="warm", logo=LogoSpec(str(EXAMPLES / "logo.png")), text=TextSpec("Sale"),
              cache_dir=cache_dir)  # fmt: skip
    plain = render_rendition(clip, tmp_path / "plain.mp4", preset, **kw)
    frames = RenderFrames("default", width=preset.width, height=preset.height, fps=preset.fps)
    sampled = render_rendition(clip, tmp_path / "sampled.mp4", preset, frames=frames, **kw)

    assert sampled.sha256 == plain.sha256  # the second output leaves the rendition alone
    assert frames.size == (180, 320)  # the model's 320 px input, the rendition's aspect
    assert frames.frames == _frames_in(tmp_path / "sampled.mp4") == 90

    frames.bind(tmp_path / "sampled.mp4")
    ours = moderate_file(tmp_path / "sampled.mp4", rendered=frames)
    decoded = moderate_file(tmp_path / "sampled.mp4")
    assert ours.passed and decoded.passed
    assert ours.media.frames_from == "render pass" and ours.media.frames_decoded == 0
    assert decoded.media.frames_from == "decoded" and decoded.media.frames_decoded == 90
    # the same frames are chosen (first, every 1/2 s, last) at the same times
    assert ours.sampled_timestamps == decoded.sampled_timestamps
    assert [f.reasons for f in ours.frames] == [f.reasons for f in decoded.frames]
    assert ours.timings["render_pass_s"] > 0


@pytest.fixture(scope="module")
def astronaut_cut(tmp_path_factory):
    """1.5 s of the astronaut photo drifting right, then a cut to its dimmed negative: detail,
    colour, a face for the model and a scene change, at the small model's 16 fps."""
    photo = skimage.data.astronaut()[::2, ::2]
    frames = np.stack([np.roll(photo, i, axis=1) for i in range(48)])
    frames[24:] = 255 - frames[24:] // 2
    return frames_to_mp4(frames, tmp_path_factory.mktemp("cut") / "cut.mp4", fps=16)


def test_the_render_pass_samples_are_the_decoded_files_within_encoder_noise(
    tmp_path, astronaut_cut, cache_dir
):
    """The frames the gate judges from the render pass are the ones decoding the file would
    give it, nearly to the pixel: same times and reasons (the scene change included), the same
    image up to the H.264 encoder's noise, and the same verdict with close scores."""
    preset = rendition_preset("9:16", "720p", 30)
    frames = RenderFrames("test-faces", width=preset.width, height=preset.height, fps=preset.fps)
    out = tmp_path / "r.mp4"
    render_rendition(astronaut_cut, out, preset, lut="warm", logo=LogoSpec(str(EXAMPLES / "logo.png")),
                     text=TextSpec("Sale"), cache_dir=cache_dir, frames=frames)  # fmt: skip
    frames.bind(out)
    ours = moderate_file(out, policy="test-faces", rendered=frames)
    decoded = moderate_file(out, policy="test-faces")
    assert ours.sampled_timestamps == decoded.sampled_timestamps
    assert [f.reasons for f in ours.frames] == [f.reasons for f in decoded.frames]
    assert any("scene" in f.reasons for f in ours.frames)
    assert not ours.passed and not decoded.passed and ours.category == decoded.category == "face"
    for a, b in zip(ours.frames, decoded.frames, strict=True):
        score_a = max((d.score for d in a.detections if d.label == "FACE_FEMALE"), default=0.0)
        score_b = max((d.score for d in b.detections if d.label == "FACE_FEMALE"), default=0.0)
        # measured at most 0.048 (an rgb24 copy split off before the yuv420p conversion: 0.10)
        assert abs(score_a - score_b) < 0.06, (a.timestamp, score_a, score_b)

    sampled, _ = sample_video(out, size=320, policy=load_policy("test-faces").visual)
    for a, b in zip(frames.selector.samples, sampled, strict=True):
        assert a.rgb.shape == b.rgb.shape == (320, 180, 3)
        diff = np.abs(a.rgb.astype(np.int16) - b.rgb.astype(np.int16))
        # measured 1.1-1.4 (that rgb24 copy: 1.8-2.6); converted as BT.601 instead: up to 3.3,
        # as full range: about 10
        assert diff.mean() < 2.0, (a.timestamp, diff.mean())


def test_inference_during_the_render_fails_closed_and_is_reused_only_by_its_model(
    tmp_path, clip, astronaut_cut, cache_dir, monkeypatch
):
    """The samples are inferred while ffmpeg renders; an inference that failed there fails
    the gate (it raises, no verdict), and another model judges every sample itself."""
    preset = rendition_preset("9:16", "720p", 24)
    model = ModerationModel.load()

    def broken(frames, **kwargs):
        raise ModerationModelError("the session died")

    monkeypatch.setattr(model, "predict", broken)
    frames = RenderFrames("default", width=preset.width, height=preset.height, fps=preset.fps,
                          model=model)  # fmt: skip
    render_rendition(clip, tmp_path / "a.mp4", preset, frames=frames, cache_dir=cache_dir)
    frames.bind(tmp_path / "a.mp4")
    with pytest.raises(ModerationError, match="the session died"):
        moderate_file(tmp_path / "a.mp4", rendered=frames, model=model)

    # the same render twice: one judged with the detections made during its render (one frame
    # at a time), one by another model instance, which infers every sample (in batches) itself
    judged = []
    for name, judge_with in (("b.mp4", None), ("c.mp4", ModerationModel.load())):
        frames = RenderFrames("test-faces", width=preset.width, height=preset.height,
                              fps=preset.fps)  # fmt: skip
        render_rendition(astronaut_cut, tmp_path / name, preset, frames=frames, cache_dir=cache_dir)
        frames.bind(tmp_path / name)
        judged.append(moderate_file(tmp_path / name, policy="test-faces", rendered=frames,
                                    model=judge_with))  # fmt: skip
    during, after = judged
    assert during.media.sha256 == after.media.sha256
    assert during.timings["render_pass_inference_s"] > 0
    assert during.timings["inference_s"] < after.timings["inference_s"]
    assert not during.passed and any(f.detections for f in during.frames)  # the face
    assert [f.detections for f in during.frames] == [f.detections for f in after.frames]


def test_the_render_pass_converts_to_rgb_as_the_decoding_path_does(tmp_path, clip, cache_dir):
    """The same swscale conversion, bit for bit, on the same yuv420p frame."""
    preset = rendition_preset("9:16", "720p", 30)
    render_rendition(clip, tmp_path / "r.mp4", preset, lut="warm", cache_dir=cache_dir)
    with av.open(str(tmp_path / "r.mp4")) as container:
        frame = next(container.decode(video=0))
        planes = frame.to_ndarray()  # yuv420p: Y rows, then U, then V, as FrameSink gets them
        assert np.array_equal(_rendition_rgb(planes), frame.to_ndarray(format="rgb24"))


def test_a_render_pass_size_yuv420p_cannot_hold_is_refused():
    """724x1280 fits the model's 320 px as 181x320: no yuv420p frame has an odd side, so the
    sampler refuses it and the gate decodes the file instead (``render_frames``)."""
    with pytest.raises(ModerationError, match="181x320"):
        RenderFrames("default", width=724, height=1280, fps=30)


def test_a_variant_render_gives_its_frames_too(tmp_path, clip, cache_dir):
    preset = rendition_preset("1:1", "720p", 24)
    base = render_base(clip, preset, lut="warm", cache_dir=cache_dir)
    frames = RenderFrames("default", width=preset.width, height=preset.height, fps=preset.fps)
    render_variant(base, tmp_path / "v.mp4", TextSpec("Hola"), frames=frames)
    frames.bind(tmp_path / "v.mp4")
    assert frames.frames == _frames_in(tmp_path / "v.mp4")
    assert moderate_file(tmp_path / "v.mp4", rendered=frames).passed


def test_frames_of_another_file_are_refused(tmp_path, clip, cache_dir):
    """The gate fails closed when the file is not the one the render pass wrote."""
    preset = rendition_preset("16:9", "720p", 24)
    frames = RenderFrames("default", width=preset.width, height=preset.height, fps=preset.fps)
    render_rendition(clip, tmp_path / "a.mp4", preset, frames=frames, cache_dir=cache_dir)
    frames.bind(tmp_path / "a.mp4")
    # same length and frame count, other pixels: only the video track tells them apart
    render_rendition(clip, tmp_path / "b.mp4", preset, lut="warm", cache_dir=cache_dir)
    with pytest.raises(ModerationError, match="video track differs"):
        moderate_file(tmp_path / "b.mp4", rendered=frames)
    shorter = make_clip(tmp_path / "short.mp4", seconds=1.0)
    render_rendition(shorter, tmp_path / "c.mp4", preset, cache_dir=cache_dir)
    with pytest.raises(ModerationError, match="render pass gave"):
        moderate_file(tmp_path / "c.mp4", rendered=frames)
    unbound = RenderFrames("default", width=preset.width, height=preset.height, fps=preset.fps)
    with pytest.raises(ModerationError, match="no bound frames"):
        moderate_file(tmp_path / "a.mp4", rendered=unbound)


def test_the_video_track_hash_ignores_the_container_around_it(tmp_path, clip, cache_dir):
    """A remux (what a C2PA manifest box amounts to for the track) keeps the hash."""
    from tasks.postprocess.ffmpeg import run_ffmpeg

    preset = rendition_preset("16:9", "720p", 24)
    render_rendition(clip, tmp_path / "a.mp4", preset, cache_dir=cache_dir)
    run_ffmpeg(["-v", "error", "-i", str(tmp_path / "a.mp4"), "-map", "0", "-c", "copy",
                "-movflags", "+faststart", "-metadata", "title=other box", str(tmp_path / "r.mp4")],
               what="remux")  # fmt: skip
    assert (tmp_path / "r.mp4").read_bytes() != (tmp_path / "a.mp4").read_bytes()
    assert video_track_sha256(tmp_path / "r.mp4") == video_track_sha256(tmp_path / "a.mp4")
    shutil.copyfile(tmp_path / "a.mp4", tmp_path / "copy.mp4")
    run_ffmpeg(["-v", "error", "-i", str(tmp_path / "a.mp4"), "-c:v", "libx264", "-crf", "30",
                str(tmp_path / "re.mp4")], what="re-encode")  # fmt: skip
    assert video_track_sha256(tmp_path / "re.mp4") != video_track_sha256(tmp_path / "copy.mp4")
