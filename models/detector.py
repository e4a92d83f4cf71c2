"""A simple detector for the synthetic shape videos: dominant hue, silhouette and centroid track.

Object pixels are those far from the background colour (estimated from the frame border).
The object's colour is the nearest reference hue to the saturation-weighted circular mean
hue of object pixels; its shape is read from how much of its bounding box the silhouette
fills (square about 1.0, circle pi/4, triangle 1/2), the median over the frames where the
object is whole; the direction is the dominant axis and sign of the centroid's
displacement between the first and last quarter of the clip. Nothing here is used in
training: it is the evaluation's independent judge.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from models.tiny_data import COLOURS


def rgb_to_hsv(rgb: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """uint8/float RGB (..., 3) -> hue in degrees [0, 360), saturation and value in [0, 1]."""
    x = rgb.astype(np.float32) / (255.0 if rgb.dtype == np.uint8 else 1.0)
    r, g, b = x[..., 0], x[..., 1], x[..., 2]
    mx, mn = x.max(-1), x.min(-1)
    d = mx - mn
    safe = np.where(d > 1e-6, d, 1.0)
    h = np.where(
        mx == r, ((g - b) / safe) % 6, np.where(mx == g, (b - r) / safe + 2, (r - g) / safe + 4)
    )
    h = np.where(d > 1e-6, h * 60.0, 0.0)
    s = np.where(mx > 1e-6, d / np.where(mx > 1e-6, mx, 1.0), 0.0)
    return h % 360.0, s, mx


REFERENCE_HUES = {
    name: float(rgb_to_hsv(np.array(rgb, np.uint8))[0]) for name, rgb in COLOURS.items()
}


@dataclass(frozen=True)
class Detection:
    colour: str | None
    direction: str | None
    hue: float | None
    displacement: tuple[float, float]  # (dx, dy) in pixels, +x right, +y down
    object_fraction: float
    track: list[tuple[float, float] | None]
    shape: str | None = None
    fill: float | None = None  # median share of the bounding box the silhouette covers


# Bounding-box fill between the ideal values: square 1.0 | circle 0.785 | triangle 0.5.
SQUARE_FILL, CIRCLE_FILL = 0.89, 0.64


def silhouette_fill(mask: np.ndarray, min_pixels: int = 12) -> float | None:
    """Median share of its bounding box that the object fills, over frames where it is
    whole (enough pixels, not cut by the frame's edge)."""
    fills = []
    for m in mask:
        ys, xs = np.nonzero(m)
        if len(ys) < min_pixels:
            continue
        y0, y1, x0, x1 = ys.min(), ys.max(), xs.min(), xs.max()
        if min(y0, x0) == 0 or y1 == m.shape[0] - 1 or x1 == m.shape[1] - 1:
            continue
        fills.append(len(ys) / ((y1 - y0 + 1) * (x1 - x0 + 1)))
    return float(np.median(fills)) if fills else None


def shape_of(fill: float | None) -> str | None:
    if fill is None:
        return None
    if fill >= SQUARE_FILL:
        return "square"
    return "circle" if fill >= CIRCLE_FILL else "triangle"


def _hue_dist(a: float, b: float) -> float:
    d = abs(a - b) % 360.0
    return min(d, 360.0 - d)


def detect(frames: np.ndarray, min_pixels: int = 6, min_motion: float = 4.0) -> Detection:
    """Detect colour and motion direction in a uint8 (T, H, W, 3) clip."""
    if frames.ndim != 4 or frames.shape[-1] != 3:
        raise ValueError(f"expected (T, H, W, 3) frames, got {frames.shape}")
    f = frames.astype(np.float32)
    border = np.concatenate(
        [
            f[:, 0].reshape(-1, 3),
            f[:, -1].reshape(-1, 3),
            f[:, :, 0].reshape(-1, 3),
            f[:, :, -1].reshape(-1, 3),
        ]
    )
    bg = np.median(border, axis=0)
    diff = np.abs(f - bg).max(-1)
    h, s, _v = rgb_to_hsv(frames)
    mask = (diff > 48.0) & (s > 0.3)
    frac = float(mask.mean())
    hue = None
    colour = None
    if mask.sum() >= min_pixels:
        w = s[mask]
        ang = np.deg2rad(h[mask])
        hue = float(np.rad2deg(np.arctan2((w * np.sin(ang)).sum(), (w * np.cos(ang)).sum())) % 360)
        colour = min(REFERENCE_HUES, key=lambda n: _hue_dist(hue, REFERENCE_HUES[n]))
    T, H, W = mask.shape
    yy, xx = np.mgrid[0:H, 0:W]
    track: list[tuple[float, float] | None] = []
    for t in range(T):
        m = mask[t]
        if m.sum() >= min_pixels:
            track.append((float(xx[m].mean()), float(yy[m].mean())))
        else:
            track.append(None)
    q = max(1, T // 4)
    first = [p for p in track[:q] if p is not None]
    last = [p for p in track[-q:] if p is not None]
    dx = dy = 0.0
    direction = None
    if first and last:
        dx = float(np.mean([p[0] for p in last]) - np.mean([p[0] for p in first]))
        dy = float(np.mean([p[1] for p in last]) - np.mean([p[1] for p in first]))
        if max(abs(dx), abs(dy)) >= min_motion:
            if abs(dx) >= abs(dy):
                direction = "right" if dx > 0 else "left"
            else:
                direction = "down" if dy > 0 else "up"
    fill = silhouette_fill(mask)
    return Detection(colour, direction, hue, (dx, dy), frac, track, shape_of(fill), fill)
