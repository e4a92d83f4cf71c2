"""The shipped tiny model follows prompts: real generations checked by the detector."""

from __future__ import annotations

import pytest

from models.detector import detect
from models.generator import GenerationRequest

# Known gap, kept visible: direction on held-out combinations is 56% against a goal of 85%
# (BENCHMARKS.md, models/tiny/MODEL_CARD.md). strict: the day a retrained model moves these
# objects the right way, the marker fails the suite and must go.
_DIRECTION_GAP = pytest.mark.xfail(
    strict=True, reason="the experts do not follow direction reliably yet (issue 3 open)"
)
CASES = [
    pytest.param("a red circle moves from left to right", "red", "right", id="en"),
    pytest.param("一个蓝色的正方形从上向下移动", "blue", "down", id="zh", marks=_DIRECTION_GAP),
    pytest.param("黄色い三角形が下から上へ移動する", "yellow", "up", id="ja"),
    pytest.param(
        "초록색 원이 오른쪽에서 왼쪽으로 이동한다", "green", "left", id="ko", marks=_DIRECTION_GAP
    ),
]


@pytest.mark.parametrize(("prompt", "colour", "direction"), [c.values for c in CASES])
def test_the_object_has_the_prompts_colour(tiny, prompt, colour, direction):
    d = detect(tiny.generate(GenerationRequest(prompt=prompt, seed=1)).frames)
    assert d.colour == colour, (prompt, d.hue)


@pytest.mark.parametrize(("prompt", "colour", "direction"), CASES)
def test_the_object_moves_the_prompts_way(tiny, prompt, colour, direction):
    d = detect(tiny.generate(GenerationRequest(prompt=prompt, seed=1)).frames)
    assert d.direction == direction, (prompt, d.displacement)
