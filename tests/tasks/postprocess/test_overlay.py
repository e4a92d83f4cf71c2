from __future__ import annotations

import numpy as np
import pytest
from PIL import Image, ImageDraw, ImageFont

from reelforge.core.errors import InvalidInput
from tasks.postprocess.ffmpeg import escape_filter_value
from tasks.postprocess.overlay import (
    TextSpec,
    choose_font,
    find_cjk_font,
    layout_text,
    sanitize_text,
    wrap_text,
)
from tasks.postprocess.renditions import render_rendition, rendition_preset

from .conftest import frame_at, make_clip

NASTY = 'Tom\'s "deal": 50% off! C:\\path\\x [0:v]; drawtext=text=pwn, %{pts} %{eif\\:1\\:d} ${HOME} `id`'


def test_escape_filter_value_shape():
    assert escape_filter_value("/a/b.cube") == "\\'/a/b.cube\\'"
    # level 1: 'x'\''y'  ->  level 2: every \ and ' escaped again
    assert escape_filter_value("x'y") == r"\'x\'\\\'\'y\'"
    assert escape_filter_value("a,b;c[d]") == r"\'a\,b\;c\[d\]\'"
    for bad in ("a\nb", "a\x00b"):
        with pytest.raises(InvalidInput):
            escape_filter_value(bad)


def test_sanitize_text():
    assert sanitize_text("  hi\r\nthere\x07 ") == "hi\nthere"
    with pytest.raises(InvalidInput, match="empty"):
        sanitize_text(" \x01 ")
    with pytest.raises(InvalidInput, match="limit is 1000"):
        sanitize_text("x" * 1001)


def test_wrap_respects_width_and_breaks_cjk_by_character():
    font = find_cjk_font()
    f = ImageFont.truetype(font, 32)
    text = "这是一个很长的中文句子，没有任何空格，需要按字符换行才能放进去。" * 2
    lines = wrap_text(text, font, 32, 300)
    assert len(lines) > 3 and all(f.getlength(ln) <= 300 for ln in lines)
    assert "".join(lines) == text
    words = wrap_text("alpha beta gamma delta epsilon zeta eta theta", font, 32, 200)
    assert all(" " not in ln.strip(" ") or f.getlength(ln) <= 200 for ln in words)
    assert "alpha" in words[0] and not any(w.startswith(" ") for w in words)


def test_uncovered_characters_are_dropped_not_tofu():
    _font, kept, dropped = choose_font("Sale \U0001f525 今天")
    assert "\U0001f525" in dropped and kept == "Sale  今天"
    assert "今" in kept


def test_injection_text_is_drawn_literally_and_render_succeeds(tmp_path, cache_dir):
    clip = make_clip(tmp_path / "c.mp4", seconds=1.0)
    preset = rendition_preset("9:16", "720p", 24)
    long = (NASTY + " ") * 6  # ~ 560 chars before trimming
    long = long[:500]
    for i, t in enumerate((NASTY, long)):
        out = tmp_path / f"t{i}.mp4"
        r = render_rendition(clip, out, preset, text=TextSpec(t), cache_dir=cache_dir)
        lay = r.text_layout
        assert out.is_file() and lay is not None
        assert (
            lay["text"]
            .replace("\n", "")
            .replace(" ", "")
            .startswith(sanitize_text(t).replace(" ", "")[:100])
        )
        f = ImageFont.truetype(lay["font"], lay["font_size"])
        assert all(f.getlength(ln) <= lay["box_width"] for ln in lay["text"].split("\n"))
        # drawn: the text box region differs from the same frame without text
        frame = frame_at(out, 0.5).astype(float)
        band = frame[lay["y"] : lay["y"] + lay["lines"] * lay["font_size"], :, :]
        assert band.std() > 20
    assert r.text_layout["lines"] > 5  # 500 chars wrapped


def _bbox_crop(gray: np.ndarray, thr: float = 100) -> np.ndarray:
    ys, xs = np.nonzero(gray > thr)
    return gray[ys.min() : ys.max() + 1, xs.min() : xs.max() + 1]


def _corr(a: np.ndarray, b: np.ndarray) -> float:
    bi = np.asarray(
        Image.fromarray(b.astype(np.uint8)).resize((a.shape[1], a.shape[0]), Image.BILINEAR), float
    )
    a = a - a.mean()
    bi = bi - bi.mean()
    return float((a * bi).sum() / np.sqrt((a * a).sum() * (bi * bi).sum()))


def test_cjk_overlay_is_not_tofu(tmp_path, cache_dir):
    """The rendered CJK text must match PIL's rendering of the same text with the CJK font much
    better than it matches the .notdef boxes a Latin-only font would draw."""
    text = "你好世界 안녕하세요 こんにちは"
    clip = make_clip(tmp_path / "k.mp4", seconds=1.0, bg=(0, 0, 0), fg=(0, 0, 0))
    preset = rendition_preset("16:9", "720p", 24)
    spec = TextSpec(text, position="center", font_size=56, box=False, color="white")
    out = tmp_path / "k_out.mp4"
    r = render_rendition(clip, out, preset, text=spec, cache_dir=cache_dir)
    lay = layout_text(spec, preset.width, preset.height)
    assert r.text_layout["font"] == lay.font and lay.lines == 1 and not lay.dropped
    got = _bbox_crop(frame_at(out, 0.5).astype(float).mean(axis=2))

    def pil_render(font_path: str) -> np.ndarray:
        im = Image.new("L", (1400, 200), 0)
        ImageDraw.Draw(im).text((20, 40), text, fill=255, font=ImageFont.truetype(font_path, 56))
        return _bbox_crop(np.asarray(im, float))

    ref = pil_render(lay.font)
    tofu = pil_render("/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf")
    c_ref, c_tofu = _corr(got, ref), _corr(got, tofu)
    assert c_ref > 0.75, (c_ref, c_tofu)
    assert c_ref > c_tofu + 0.25, (c_ref, c_tofu)
    assert abs(got.shape[1] / ref.shape[1] - 1) < 0.05  # same advance widths as the font itself


def test_bad_text_options():
    with pytest.raises(InvalidInput, match="unknown text position"):
        layout_text(TextSpec("hi", position="left"), 1280, 720)
    with pytest.raises(InvalidInput, match="not a colour"):
        layout_text(TextSpec("hi", color="white:x=1"), 1280, 720)


def test_text_timing_window(tmp_path, cache_dir):
    clip = make_clip(tmp_path / "w.mp4", seconds=1.5, bg=(0, 0, 0), fg=(0, 0, 0))
    spec = TextSpec("SALE", position="center", box=False, start=0.0, end=0.6)
    out = tmp_path / "w_out.mp4"
    render_rendition(
        clip, out, rendition_preset("16:9", "720p", 24), text=spec, cache_dir=cache_dir
    )
    assert frame_at(out, 0.3).max() > 200  # drawn inside the window
    assert frame_at(out, 1.2).max() < 40  # gone after it
