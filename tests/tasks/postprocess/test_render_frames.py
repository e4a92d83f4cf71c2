"""The safety gate's frames from the render's own ffmpeg pass (`render_rendition(frames=...)`).

Real ffmpeg, PyAV and moderation model: the second output must not change the rendition, must
deliver exactly its frames, and the gate must judge them the way it judges the decoded file.
"""

from __future__ import annotations

import shutil

import av
import pytest

from tasks.postprocess.logo import LogoSpec
from tasks.postprocess.overlay import TextSpec
from tasks.postprocess.renditions import (
    render_base,
    render_rendition,
    render_variant,
    rendition_preset,
)
from tasks.safety.verdicts import ModerationError
from tasks.safety.visual import RenderFrames, moderate_file, video_track_sha256

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
