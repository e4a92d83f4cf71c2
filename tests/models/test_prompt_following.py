"""The shipped tiny model follows prompts: real generations checked by the detector."""

from __future__ import annotations

import pytest

from models.detector import detect
from models.generator import GenerationRequest

CASES = [
    # issue 3's example in its four languages, then other combinations and phrasings
    pytest.param("a red circle moves from left to right", "red", "right", id="en"),
    pytest.param("一个红色的圆形从左向右移动", "red", "right", id="zh-red"),
    pytest.param("赤い円が左から右へ移動する", "red", "right", id="ja-red"),
    pytest.param("빨간 원이 왼쪽에서 오른쪽으로 이동한다", "red", "right", id="ko-red"),
    pytest.param("一个蓝色的正方形从上向下移动", "blue", "down", id="zh"),
    pytest.param("黄色い三角形が下から上へ移動する", "yellow", "up", id="ja"),
    pytest.param("초록색 원이 오른쪽에서 왼쪽으로 이동한다", "green", "left", id="ko"),
]


@pytest.mark.parametrize(("prompt", "colour", "direction"), CASES)
def test_the_object_has_the_prompts_colour(tiny, prompt, colour, direction):
    d = detect(tiny.generate(GenerationRequest(prompt=prompt, seed=1)).frames)
    assert d.colour == colour, (prompt, d.hue)


@pytest.mark.parametrize(("prompt", "colour", "direction"), CASES)
def test_the_object_moves_the_prompts_way(tiny, prompt, colour, direction):
    d = detect(tiny.generate(GenerationRequest(prompt=prompt, seed=1)).frames)
    assert d.direction == direction, (prompt, d.displacement)
