"""The shipped tiny model follows prompts: real generations checked by the detector."""

from __future__ import annotations

import pytest

from models.detector import detect
from models.generator import GenerationRequest

CASES = [
    ("a red circle moves from left to right", "red", "right"),
    ("一个蓝色的正方形从上向下移动", "blue", "down"),
    ("黄色い三角形が下から上へ移動する", "yellow", "up"),
    ("초록색 원이 오른쪽에서 왼쪽으로 이동한다", "green", "left"),
]


# Known gap, kept visible: the shipped weights score 33% colour / 25% direction on held-out
# combinations (BENCHMARKS.md, models/tiny/MODEL_CARD.md). strict: the day a retrained model
# passes, this marker fails the suite and must go.
@pytest.mark.xfail(
    strict=True, reason="shipped tiny model does not follow prompts yet (issue 3 open)"
)
@pytest.mark.parametrize(("prompt", "colour", "direction"), CASES)
def test_colour_and_direction_follow_the_prompt(tiny, prompt, colour, direction):
    v = tiny.generate(GenerationRequest(prompt=prompt, seed=1))
    d = detect(v.frames)
    assert (d.colour, d.direction) == (colour, direction), (prompt, d.hue, d.displacement)
