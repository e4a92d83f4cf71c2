from __future__ import annotations

import time

import numpy as np
import pytest

from reelforge.core.errors import InvalidInput, ReelForgeError
from tasks.postprocess.audio import AudioSpec
from tasks.postprocess.logo import LogoSpec
from tasks.postprocess.overlay import TextSpec
from tasks.postprocess.renditions import (
    all_presets,
    crop_window,
    frames_to_mp4,
    make_previews,
    make_thumbnail,
    render_base,
    render_rendition,
    render_variant,
    rendition_preset,
    subject_centroid,
)

from .conftest import EXAMPLES, frame_at, make_clip, probe, top_level_boxes


def test_presets():
    names = {p.name for p in all_presets()}
    assert {
        "16:9-720p@24",
        "16:9-1080p@30",
        "9:16-720p@30",
        "9:16-1080p@24",
        "1:1-720p@30",
    } <= names
    p = rendition_preset("9:16", "1080p", 30)
    assert (p.width, p.height, p.video_kbps) == (1080, 1920, 8000)
    assert rendition_preset("16:9", "720p").video_kbps == 5000
    for bad in (("4:3", "720p", 30), ("16:9", "480p", 30), ("16:9", "720p", 25)):
        with pytest.raises(InvalidInput):
            rendition_preset(*bad)


@pytest.mark.parametrize(("aspect", "fps"), [("9:16", 30), ("16:9", 24), ("1:1", 30)])
def test_rendition_format_measured_from_file(tmp_path, clip64, music2s, cache_dir, aspect, fps):
    preset = rendition_preset(aspect, "720p", fps)
    out = tmp_path / "r.mp4"
    r = render_rendition(clip64, out, preset, lut="product-pop", logo=LogoSpec(str(EXAMPLES / "logo.png")),
                         audio=AudioSpec(music=str(music2s)), text=TextSpec("Hi Ana — 今だけ 20% off"),
                         cache_dir=cache_dir)  # fmt: skip
    p = probe(out)
    assert p["codec"] == "h264" and p["profile"] == "High" and p["pix_fmt"] == "yuv420p"
    assert (p["width"], p["height"]) == (preset.width, preset.height)
    assert abs(p["fps"] - fps) < 0.01
    assert abs(p["duration"] - 1.5) < 0.1 and p["frames"] == round(1.5 * fps)
    assert (p["audio_codec"], p["audio_rate"], p["audio_channels"]) == ("aac", 48000, 2)
    assert p["keyframes"][:2] == [0, 2 * fps] or len(p["keyframes"]) == 1  # fixed 2 s GOP
    boxes = top_level_boxes(out)
    assert boxes.index("moov") < boxes.index("mdat"), boxes  # +faststart
    assert p["bit_rate"] > 516_000  # TikTok floor
    assert r.sha256 and r.inputs.keys() >= {"clip", "lut", "logo", "music"}
    assert r.params["interpolation"] == "mci"  # 64x64 source: motion-compensated is cheap


def test_no_music_gives_silent_aac_and_pad_fit(tmp_path, clip64, cache_dir):
    out = tmp_path / "p.mp4"
    r = render_rendition(
        clip64, out, rendition_preset("16:9", "720p", 24), fit="pad", cache_dir=cache_dir
    )
    p = probe(out)
    assert p["audio_codec"] == "aac" and r.params["fit"] == "pad"
    f = frame_at(out, 0.5).astype(float)
    assert f[:, :200].mean() < 8  # black pillarbox left (64x64 -> 720x720 centred)
    assert f[:, 400:880].mean() > 30


def test_crop_keeps_off_centre_subject_in_frame(tmp_path, cache_dir):
    """A wide 16:9 clip with the subject at the far right: a centre crop to 9:16 would lose it;
    the subject-centroid crop keeps it."""
    clip = make_clip(tmp_path / "wide.mp4", seconds=1.0, size=(256, 144), bg=(10, 10, 10),
                     fg=(240, 30, 30), box=(0.8, 0.4, 0.12, 0.2))  # fmt: skip
    cx, cy = subject_centroid(clip)
    assert cx > 0.75 and 0.35 < cy < 0.65
    cw, ch, x, y = crop_window(256, 144, 720, 1280, 0.5, 0.5)
    assert (cw, ch, x, y) == (80, 144, 88, 0)
    out = tmp_path / "v.mp4"
    r = render_rendition(clip, out, rendition_preset("9:16", "720p", 24), cache_dir=cache_dir)
    assert r.params["crop"][2] > 150
    red = frame_at(out, 0.5)[..., 0].astype(float)
    assert (red > 180).mean() > 0.05


def test_interpolation_choice_and_blend(tmp_path, cache_dir):
    clip = make_clip(tmp_path / "big.mp4", seconds=1.0, size=(320, 180))
    r = render_rendition(
        clip, tmp_path / "b.mp4", rendition_preset("16:9", "720p", 30), cache_dir=cache_dir
    )
    assert r.params["interpolation"] == "blend"  # 320x180 > 160x160: blending, not mci
    assert probe(tmp_path / "b.mp4")["frames"] == 30
    with pytest.raises(InvalidInput, match="unknown interpolation"):
        render_rendition(clip, tmp_path / "x.mp4", rendition_preset("16:9", "720p", 30),
                         interpolation="magic", cache_dir=cache_dir)  # fmt: skip


def test_base_cached_and_variant_adds_only_text(tmp_path, clip64, music2s, cache_dir):
    preset = rendition_preset("9:16", "720p", 24)
    kw = dict(lut="warm", logo=LogoSpec(str(EXAMPLES / "logo.png")), audio=AudioSpec(music=str(music2s)),
              cache_dir=cache_dir)  # fmt: skip
    b1 = render_base(clip64, preset, **kw)
    t0 = time.perf_counter()
    b2 = render_base(clip64, preset, **kw)
    assert b2.cache_hit and b2.path == b1.path and time.perf_counter() - t0 < 1.0
    assert not render_base(clip64, preset, **{**kw, "lut": "cool"}).cache_hit  # key covers the LUT

    v1 = render_variant(b1, tmp_path / "ana.mp4", TextSpec("Hola Ana"))
    v2 = render_variant(b1, tmp_path / "bo.mp4", TextSpec("你好 Bo"))
    plain = render_variant(b1, tmp_path / "plain.mp4", None)
    assert v1.sha256 != v2.sha256 and v1.inputs["base"] == b1.key
    p = probe(tmp_path / "ana.mp4")
    assert p["profile"] == "High" and (p["width"], p["height"]) == (720, 1280)
    assert top_level_boxes(tmp_path / "ana.mp4").index("moov") < top_level_boxes(
        tmp_path / "ana.mp4"
    ).index("mdat")
    a = frame_at(tmp_path / "ana.mp4", 0.7).astype(float)
    n = frame_at(tmp_path / "plain.mp4", 0.7).astype(float)
    lay = v1.text_layout
    rows = slice(lay["y"], lay["y"] + lay["font_size"])
    assert np.abs(a[rows] - n[rows]).mean() > 10  # text drawn
    assert np.abs(a[:300] - n[:300]).mean() < 3  # everything else (logo, grade) identical
    assert plain.params["lut"] == "warm"


def test_failure_leaves_nothing_behind(tmp_path, clip64, cache_dir):
    out = tmp_path / "out" / "fail.mp4"
    with pytest.raises(ReelForgeError, match="ffmpeg failed"):
        render_rendition(clip64, out, rendition_preset("16:9", "720p", 24), x264_preset="no-such-preset",
                         cache_dir=cache_dir)  # fmt: skip
    assert list(out.parent.iterdir()) == []


def test_bad_clip(tmp_path, cache_dir):
    bad = tmp_path / "bad.mp4"
    bad.write_bytes(b"\x00" * 1000)
    with pytest.raises(InvalidInput, match="cannot read video"):
        render_rendition(bad, tmp_path / "o.mp4", rendition_preset(), cache_dir=cache_dir)
    assert not (tmp_path / "o.mp4").exists()


def test_thumbnail_and_preview(tmp_path, clip64, cache_dir):
    from PIL import Image

    out = tmp_path / "r.mp4"
    render_rendition(clip64, out, rendition_preset("9:16", "720p", 24), cache_dir=cache_dir)
    th = make_thumbnail(out, tmp_path / "t.jpg", width=360)
    with Image.open(th.path) as im:
        assert im.format == "JPEG" and im.size == (360, 640)
    pairs = [(out, tmp_path / "p.webp"), (clip64, tmp_path / "p.gif")]  # one ffmpeg for both
    pv, gif = make_previews(pairs, seconds=1.0, fps=8, width=180)
    with Image.open(pv.path) as im:
        assert (
            im.format == "WEBP" and im.size == (180, 320) and im.n_frames >= 2
        )  # identical frames merge
    with Image.open(gif.path) as im:
        assert im.format == "GIF" and im.size[0] == 180 and im.n_frames >= 2
    with pytest.raises(InvalidInput, match=r"must be \.webp or \.gif"):
        make_previews([(out, tmp_path / "p.png")])
    assert not list(tmp_path.glob(".p*.part*"))  # nothing half-written
    with pytest.raises(InvalidInput):
        make_thumbnail(out, tmp_path / "t.bmp")


def test_frames_to_mp4_roundtrip(tmp_path):
    fr = np.zeros((8, 33, 47, 3), np.float32)
    fr[..., 1] = 0.5
    p = frames_to_mp4(fr, tmp_path / "f.mp4", fps=16)
    info = probe(p)
    assert (info["width"], info["height"], info["frames"]) == (48, 34, 8)
    g = frame_at(p, 0.2)[5:25, 5:40].reshape(-1, 3).mean(0)
    np.testing.assert_allclose(g, [0, 128, 0], atol=6)


def test_the_same_render_gives_the_same_bytes(tmp_path, clip64, music2s, cache_dir):
    """Renditions are content-addressed assets: a re-run must not make a second one."""
    preset = rendition_preset("9:16", "720p", 30)
    shas = {
        render_rendition(
            clip64, tmp_path / f"r{i}.mp4", preset, audio=AudioSpec(music=str(music2s)),
            text=TextSpec("Hi Ana"), cache_dir=cache_dir,
        ).sha256
        for i in range(2)
    }  # fmt: skip
    assert len(shas) == 1
