"""Logo validation and placement with platform safe zones.

A logo is a PNG (or WebP) image, ideally with an alpha channel, at most 4096 px on a side. It
is scaled to a fraction of the video width, faded to an opacity, and placed at a preset corner
inside the platform's safe zone: on 9:16 (TikTok, Reels, Shorts) the top (status/tabs), bottom
(caption, music ticker) and right (like/comment/share rail) edges carry UI, so margins there are
larger. The visual safety gate checks the logo when it is uploaded (safety stage), not here.
"""

from __future__ import annotations

import os
import warnings
from dataclasses import dataclass
from pathlib import Path

from reelforge.core.errors import InvalidInput
from reelforge.core.storage import sha256_file

MAX_LOGO_PX = 4096
MIN_LOGO_PX = 8
MAX_LOGO_BYTES = 20 * 1024 * 1024
ACCEPTED_FORMATS = {"PNG", "WEBP"}

# Safe-zone margins as fractions of (width, height): left, top, right, bottom.
# 9:16 follows TikTok's published in-feed safe area (1080x1920: ~60 px left, ~140 px right rail,
# ~130 px top tabs, ~400 px bottom caption/CTA); 16:9 uses the broadcast title-safe 5 %.
SAFE_ZONES: dict[str, tuple[float, float, float, float]] = {
    "16:9": (0.05, 0.05, 0.05, 0.05),
    "9:16": (0.06, 0.08, 0.14, 0.21),
    "1:1": (0.06, 0.06, 0.06, 0.08),
}

POSITIONS = (
    "top-left",
    "top-right",
    "bottom-left",
    "bottom-right",
    "top-center",
    "bottom-center",
    "center",
)


@dataclass(frozen=True)
class LogoInfo:
    path: str
    sha256: str
    format: str
    width: int
    height: int
    has_alpha: bool


def validate_logo(path: str | os.PathLike[str]) -> LogoInfo:
    """Refuse anything that is not a sane PNG/WebP logo, with a one-line reason."""
    from PIL import Image, UnidentifiedImageError

    p = Path(path)
    if not p.is_file():
        raise InvalidInput(f"logo file {p} does not exist; check the path")
    size = p.stat().st_size
    if size == 0:
        raise InvalidInput(
            f"logo file {p.name} is empty; re-export it as a PNG with an alpha channel"
        )
    if size > MAX_LOGO_BYTES:
        raise InvalidInput(f"logo file {p.name} is larger than {MAX_LOGO_BYTES >> 20} MB")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(p) as im:  # reads the header only
                fmt = im.format or "?"
                w, h = im.size
                mode = im.mode
                if fmt not in ACCEPTED_FORMATS:
                    raise InvalidInput(f"logo {p.name} is {fmt}; use a PNG with an alpha channel")
                if w > MAX_LOGO_PX or h > MAX_LOGO_PX:
                    raise InvalidInput(
                        f"logo {p.name} is {w}x{h} px; the limit is {MAX_LOGO_PX} px per side, resize it (1000 px wide is plenty)"
                    )
                if w < MIN_LOGO_PX or h < MIN_LOGO_PX:
                    raise InvalidInput(
                        f"logo {p.name} is {w}x{h} px; use at least {MIN_LOGO_PX} px per side"
                    )
                im.load()  # decode fully: catches truncated/corrupt files
                has_alpha = mode in ("RGBA", "LA", "PA") or (
                    mode == "P" and "transparency" in im.info
                )
    except InvalidInput:
        raise
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        raise InvalidInput(
            f"logo {p.name} has too many pixels to decode safely; the limit is {MAX_LOGO_PX} px "
            "per side, resize it (1000 px wide is plenty)"
        ) from exc
    except UnidentifiedImageError as exc:
        raise InvalidInput(
            f"logo {p.name} is not a readable image; use a PNG with an alpha channel"
        ) from exc
    except (OSError, SyntaxError, ValueError) as exc:
        raise InvalidInput(
            f"logo {p.name} is corrupt or truncated ({exc.__class__.__name__}); re-export it"
        ) from exc
    return LogoInfo(
        path=str(p), sha256=sha256_file(p), format=fmt, width=w, height=h, has_alpha=has_alpha
    )


@dataclass(frozen=True)
class LogoSpec:
    path: str
    position: str = "top-left"
    scale: float = 0.15  # logo width as a fraction of the video width
    opacity: float = 0.85


@dataclass(frozen=True)
class LogoPlacement:
    x: int
    y: int
    width: int
    height: int


def _aspect_key(width: int, height: int) -> str:
    r = width / height
    if r > 1.2:
        return "16:9"
    if r < 0.8:
        return "9:16"
    return "1:1"


def safe_zone(width: int, height: int) -> tuple[int, int, int, int]:
    """(left, top, right, bottom) margins in pixels for an output size."""
    fl, ft, fr, fb = SAFE_ZONES[_aspect_key(width, height)]
    return round(fl * width), round(ft * height), round(fr * width), round(fb * height)


def place_logo(spec: LogoSpec, info: LogoInfo, width: int, height: int) -> LogoPlacement:
    if spec.position not in POSITIONS:
        raise InvalidInput(
            f"unknown logo position {spec.position!r}; use one of {', '.join(POSITIONS)}"
        )
    if not 0.02 <= spec.scale <= 0.5:
        raise InvalidInput(
            f"logo scale {spec.scale} is out of range; use 0.02..0.5 of the video width"
        )
    if not 0.0 < spec.opacity <= 1.0:
        raise InvalidInput(f"logo opacity {spec.opacity} is out of range; use (0, 1]")
    left, top, right, bottom = safe_zone(width, height)
    lw = max(2, round(spec.scale * width / 2) * 2)
    lh = max(2, round(lw * info.height / info.width / 2) * 2)
    max_h = height - top - bottom
    if lh > max_h:  # very tall logo: fit the safe area's height
        lh = max(2, (max_h // 2) * 2)
        lw = max(2, round(lh * info.width / info.height / 2) * 2)
    vert, _, horiz = spec.position.partition("-")
    if spec.position == "center":
        vert, horiz = "center", "center"
    x = {
        "left": left,
        "right": width - right - lw,
        "center": left + (width - left - right - lw) // 2,
    }[horiz]
    y = {
        "top": top,
        "bottom": height - bottom - lh,
        "center": top + (height - top - bottom - lh) // 2,
    }[vert]
    return LogoPlacement(x=int(x), y=int(y), width=int(lw), height=int(lh))


def logo_graph(
    input_index: int, placement: LogoPlacement, opacity: float, vin: str, vout: str
) -> str:
    """Filter-graph text overlaying input `input_index` (a still image) onto ``[vin]``."""
    p = placement
    return (
        f"[{input_index}:v]format=rgba,scale={p.width}:{p.height}:flags=lanczos,"
        f"colorchannelmixer=aa={opacity:.4f}[logo];"
        f"[{vin}][logo]overlay=x={p.x}:y={p.y}:eof_action=repeat:format=auto[{vout}]"
    )
