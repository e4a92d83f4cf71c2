"""Synthetic e-commerce-flavoured video dataset for the tiny two-expert model.

One product shape (circle, square, triangle) in one colour moves left, right, up or down
across a plain light-grey background. Captions come in English, Chinese, Japanese and
Korean. Everything is a pure function of a seed, so the dataset (and hence training) is
reproducible.
"""

from __future__ import annotations

import itertools
import random
from dataclasses import dataclass

import numpy as np

COLOURS: dict[str, tuple[int, int, int]] = {
    "red": (220, 30, 30),
    "orange": (250, 135, 0),
    "yellow": (235, 205, 0),
    "green": (30, 165, 60),
    "blue": (35, 80, 225),
    "purple": (145, 40, 195),
}
SHAPES = ("circle", "square", "triangle")
DIRECTIONS = ("left", "right", "up", "down")
BACKGROUND = (228, 228, 228)
LANGUAGES = ("en", "zh", "ja", "ko")

# Colour-shape-direction combinations never shown in training (evaluation only).
# Every colour, shape and direction still appears in training in other combinations.
HELD_OUT: tuple[tuple[str, str, str], ...] = (
    ("red", "square", "up"),
    ("red", "triangle", "left"),
    ("orange", "circle", "down"),
    ("orange", "triangle", "right"),
    ("yellow", "circle", "left"),
    ("yellow", "square", "down"),
    ("green", "square", "right"),
    ("green", "triangle", "up"),
    ("blue", "circle", "up"),
    ("blue", "square", "left"),
    ("purple", "circle", "right"),
    ("purple", "triangle", "down"),
)
ALL_COMBOS = tuple(itertools.product(COLOURS, SHAPES, DIRECTIONS))
TRAIN_COMBOS = tuple(c for c in ALL_COMBOS if c not in HELD_OUT)

_WORDS = {
    "en": {
        "colour": {c: [c] for c in COLOURS},
        "shape": {
            "circle": ["circle", "round ball"],
            "square": ["square", "box"],
            "triangle": ["triangle"],
        },
        "dir": {
            "right": ["moves from left to right", "moving to the right", "slides right"],
            "left": ["moves from right to left", "moving to the left", "slides left"],
            "up": ["moves from bottom to top", "moving up", "rises upward"],
            "down": ["moves from top to bottom", "moving down", "falls downward"],
        },
        "templates": ["a {c} {s} {d}", "{c} {s} {d}", "a {c} {s} {d} on a plain background"],
    },
    "zh": {
        "colour": {
            "red": ["红色"],
            "orange": ["橙色"],
            "yellow": ["黄色"],
            "green": ["绿色"],
            "blue": ["蓝色"],
            "purple": ["紫色"],
        },
        "shape": {"circle": ["圆形", "圆"], "square": ["正方形", "方块"], "triangle": ["三角形"]},
        "dir": {
            "right": ["从左向右移动", "向右移动", "从左往右移动"],
            "left": ["从右向左移动", "向左移动", "从右往左移动"],
            "up": ["从下向上移动", "向上移动", "从下往上移动"],
            "down": ["从上向下移动", "向下移动", "从上往下移动"],
        },
        "templates": ["一个{c}的{s}{d}", "{c}{s}{d}", "一个{c}{s}{d}"],
    },
    "ja": {
        "colour": {
            "red": ["赤い"],
            "orange": ["オレンジ色の"],
            "yellow": ["黄色い"],
            "green": ["緑の"],
            "blue": ["青い"],
            "purple": ["紫の"],
        },
        "shape": {"circle": ["円", "丸"], "square": ["四角形", "正方形"], "triangle": ["三角形"]},
        "dir": {
            "right": ["左から右へ移動する", "右へ動く"],
            "left": ["右から左へ移動する", "左へ動く"],
            "up": ["下から上へ移動する", "上へ動く"],
            "down": ["上から下へ移動する", "下へ動く"],
        },
        "templates": ["{c}{s}が{d}", "{c}{s}が{d}。"],
    },
    "ko": {
        "colour": {
            "red": ["빨간"],
            "orange": ["주황색"],
            "yellow": ["노란"],
            "green": ["초록색"],
            "blue": ["파란"],
            "purple": ["보라색"],
        },
        "shape": {
            "circle": ["원이", "동그라미가"],
            "square": ["사각형이", "정사각형이"],
            "triangle": ["삼각형이"],
        },
        "dir": {
            "right": ["왼쪽에서 오른쪽으로 이동한다", "오른쪽으로 움직인다"],
            "left": ["오른쪽에서 왼쪽으로 이동한다", "왼쪽으로 움직인다"],
            "up": ["아래에서 위로 이동한다", "위로 움직인다"],
            "down": ["위에서 아래로 이동한다", "아래로 움직인다"],
        },
        "templates": ["{c} {s} {d}", "{c} {s} {d}."],
    },
}

_SUFFIXES = ["", "", "", ", product shot", ", studio lighting", ", 商品展示", ", 商品", ", 제품"]


def caption(
    colour: str, shape: str, direction: str, lang: str, rng: random.Random | None = None
) -> str:
    """A caption for the combination; the first variant of each word when ``rng`` is None."""
    w = _WORDS[lang]

    def pick(options: list[str]) -> str:
        return options[0] if rng is None else rng.choice(options)

    text = pick(w["templates"]).format(
        c=pick(w["colour"][colour]), s=pick(w["shape"][shape]), d=pick(w["dir"][direction])
    )
    if rng is not None:
        text += rng.choice(_SUFFIXES)
    return text


@dataclass(frozen=True)
class ClipSpec:
    colour: str
    shape: str
    direction: str
    size: float  # half-size in pixels at 64x64 scale
    start: float  # start coordinate along the motion axis (fraction of the frame)
    travel: float  # distance travelled (fraction of the frame)
    across: float  # coordinate across the motion axis (fraction of the frame)
    rgb: tuple[int, int, int]


def sample_spec(rng: random.Random, combo: tuple[str, str, str]) -> ClipSpec:
    colour, shape, direction = combo
    base = COLOURS[colour]
    rgb = tuple(int(np.clip(v + rng.randint(-12, 12), 0, 255)) for v in base)
    return ClipSpec(
        colour=colour,
        shape=shape,
        direction=direction,
        size=rng.uniform(8.0, 11.5),
        start=rng.uniform(0.17, 0.27),
        travel=rng.uniform(0.5, 0.62),
        across=rng.uniform(0.3, 0.7),
        rgb=rgb,  # type: ignore[arg-type]
    )


def render(spec: ClipSpec, frames: int = 17, height: int = 64, width: int = 64) -> np.ndarray:
    """Render a clip as uint8 (T, H, W, 3), anti-aliased by 2x supersampling."""
    ss = 2
    hh, ww = height * ss, width * ss
    yy, xx = np.mgrid[0:hh, 0:ww].astype(np.float32) + 0.5
    scale = min(height, width) / 64.0 * ss
    r = spec.size * scale
    out = np.empty((frames, height, width, 3), dtype=np.uint8)
    bg = np.array(BACKGROUND, np.float32)
    fg = np.array(spec.rgb, np.float32)
    for t in range(frames):
        a = spec.start + spec.travel * t / max(frames - 1, 1)
        if spec.direction == "right":
            cx, cy = a * ww, spec.across * hh
        elif spec.direction == "left":
            cx, cy = (1 - a) * ww, spec.across * hh
        elif spec.direction == "down":
            cx, cy = spec.across * ww, a * hh
        else:  # up
            cx, cy = spec.across * ww, (1 - a) * hh
        dx, dy = xx - cx, yy - cy
        if spec.shape == "circle":
            m = dx * dx + dy * dy <= r * r
        elif spec.shape == "square":
            s = r * 0.88
            m = (np.abs(dx) <= s) & (np.abs(dy) <= s)
        else:  # upward triangle
            h = r * 1.1
            m = (dy >= -h) & (dy <= h * 0.8) & (np.abs(dx) <= (dy + h) * 0.62)
        cov = m.reshape(height, ss, width, ss).mean(axis=(1, 3))[..., None]
        out[t] = np.clip(bg * (1 - cov) + fg * cov + 0.5, 0, 255).astype(np.uint8)
    return out


def direction_phrase(direction: str, lang: str, rng: random.Random) -> str:
    """The direction phrase alone ("moves from left to right"): a partial caption that
    ties the phrase to the motion whatever the object, so the experts cannot learn the
    direction as part of a colour-shape identity (which fails on held-out combinations)."""
    return rng.choice(_WORDS[lang]["dir"][direction])
