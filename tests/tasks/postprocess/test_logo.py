from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from reelforge.core.errors import InvalidInput
from tasks.postprocess.logo import POSITIONS, LogoSpec, place_logo, safe_zone, validate_logo
from tasks.postprocess.renditions import render_rendition, rendition_preset

from .conftest import EXAMPLES, frame_at, make_clip


def test_example_logo_is_valid_rgba():
    info = validate_logo(EXAMPLES / "logo.png")
    assert info.format == "PNG" and info.has_alpha and info.width == 240


@pytest.mark.parametrize(
    ("maker", "needle"),
    [
        (lambda p: p.write_bytes(b"not an image at all" * 20), "not a readable image"),
        (lambda p: p.write_bytes(b""), "is empty"),
        (
            lambda p: Image.new("RGBA", (10000, 10), (255, 0, 0, 255)).save(p, format="PNG"),
            "10000x10 px; the limit is 4096",
        ),
        (lambda p: Image.new("RGB", (64, 64)).save(p, format="JPEG"), "is JPEG; use a PNG"),
        (lambda p: p.write_bytes(_png_bytes()[:60]), "corrupt or truncated|not a readable image"),
    ],
)
def test_bad_logos_refused(tmp_path, maker, needle):
    p = tmp_path / "logo.png"
    maker(p)
    with pytest.raises(InvalidInput, match=needle) as ei:
        validate_logo(p)
    assert "\n" not in str(ei.value)


def _png_bytes() -> bytes:
    import io

    buf = io.BytesIO()
    Image.new("RGBA", (200, 200), (1, 2, 3, 255)).save(buf, format="PNG")
    return buf.getvalue()


def test_vertical_safe_zone_keeps_ui_edges_clear():
    info = validate_logo(EXAMPLES / "logo.png")
    W, H = 1080, 1920
    left, top, right, bottom = safe_zone(W, H)
    assert right > left and bottom > top > 0  # right rail and bottom caption are the big ones
    for pos in POSITIONS:
        pl = place_logo(LogoSpec(str(EXAMPLES / "logo.png"), position=pos, scale=0.2), info, W, H)
        assert pl.x >= left and pl.y >= top
        assert pl.x + pl.width <= W - right and pl.y + pl.height <= H - bottom
        assert pl.width == 216  # 20 % of the width
    with pytest.raises(InvalidInput, match="unknown logo position"):
        place_logo(LogoSpec("x", position="upper-left"), info, W, H)
    with pytest.raises(InvalidInput, match="opacity"):
        place_logo(LogoSpec("x", opacity=1.5), info, W, H)


def test_logo_pixels_present_where_placed(tmp_path, cache_dir):
    """A solid green opaque logo at bottom-right over a dark clip: green inside the placement,
    untouched dark outside it, and half-opacity gives roughly half the green."""
    logo = tmp_path / "g.png"
    Image.new("RGBA", (100, 50), (0, 255, 0, 255)).save(logo)
    clip = make_clip(tmp_path / "dark.mp4", seconds=1.0, bg=(20, 20, 20), fg=(20, 20, 20))
    preset = rendition_preset("9:16", "720p", 24)
    info = validate_logo(logo)
    for opacity, expect_g in ((1.0, 255), (0.5, 137)):
        spec = LogoSpec(str(logo), position="bottom-right", scale=0.2, opacity=opacity)
        out = tmp_path / f"o{opacity}.mp4"
        r = render_rendition(clip, out, preset, logo=spec, cache_dir=cache_dir)
        pl = place_logo(spec, info, preset.width, preset.height)
        assert r.params["logo"]["x"] == pl.x
        f = frame_at(out, 0.5).astype(float)
        inside = (
            f[pl.y + 4 : pl.y + pl.height - 4, pl.x + 4 : pl.x + pl.width - 4]
            .reshape(-1, 3)
            .mean(0)
        )
        assert abs(inside[1] - expect_g) < 14 and inside[0] < 60, inside
        outside = f[40:200, 40:200].reshape(-1, 3).mean(0)
        assert np.all(np.abs(outside - 20) < 8), outside
        # the bottom 21 % and right 14 % of a 9:16 frame stay clear of the logo
        assert f[int(preset.height * 0.8) :, :, 1].mean() < 40
        assert f[:, int(preset.width * 0.87) :, 1].mean() < 40
