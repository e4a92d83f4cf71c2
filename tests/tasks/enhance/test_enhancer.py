from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from reelforge.core.errors import InvalidInput
from reelforge.core.settings import Settings
from tasks.enhance import ENHANCER_VERSION, enhance


def _s(tmp_path: Path, **kw) -> Settings:
    return Settings(home=tmp_path, **kw)


@pytest.mark.parametrize(
    ("prompt", "caption"),
    [
        ("a crimson ball drifting to the right", "a red circle moves from left to right"),
        ("一个蓝色的盒子往上飘", "一个蓝色的正方形从下向上移动"),
        ("赤いボールが右へ転がる", "赤い円が左から右へ移動する"),
        ("파란 상자가 위로 떠오른다", "파란 사각형이 아래에서 위로 이동한다"),
    ],
)
def test_tiny_generator_gets_vocabulary_captions(tmp_path: Path, prompt: str, caption: str) -> None:
    res = enhance(prompt, settings=_s(tmp_path, generator="tiny"))
    assert res.path == "vocabulary" and res.requested_backend == "vocabulary"
    assert res.enhanced_prompt == caption
    assert res.output_language == res.detected_language
    assert res.enhancer_version == ENHANCER_VERSION
    assert res.original_sha256 == hashlib.sha256(prompt.encode()).hexdigest()
    assert res.enhanced_sha256 == hashlib.sha256(caption.encode()).hexdigest()


def test_vocabulary_miss_keeps_the_original_with_a_reason(tmp_path: Path) -> None:
    res = enhance("  a lovely   mug ", settings=_s(tmp_path, generator="tiny"))
    assert res.path == "original" and res.enhanced_prompt == "a lovely mug"
    assert (
        res.fallback_reason == "vocabulary: no colour, no shape, no direction found in the prompt"
    )


def test_auto_without_llm_uses_the_default_template(tmp_path: Path) -> None:
    res = enhance("a red mug", settings=_s(tmp_path, generator="wan"))
    assert res.path == "template" and res.template == "product_showcase"
    assert res.slots and res.slots["subject"] == "a red mug"
    assert res.fallback_reason is None


def test_explicit_template_with_product_and_output_language(tmp_path: Path) -> None:
    res = enhance(
        "new year gift",
        template="festival_greeting",
        product={"name": "Aurora", "category": "lamp", "price": 49},
        output_language="ja",
        settings=_s(tmp_path),
    )
    assert res.path == "template" and res.output_language == "ja"
    assert "lamp「Aurora」" in res.enhanced_prompt
    assert res.parameters["product"]["price"] == "49"


def test_none_backend_and_notices(tmp_path: Path) -> None:
    res = enhance("iPhone\x00 手机壳", backend="none", settings=_s(tmp_path))
    assert res.path == "original" and res.enhanced_prompt == "iPhone 手机壳"
    assert res.detected_language == "zh"
    assert any("control" in n for n in res.notices)
    assert any("mixed scripts" in n for n in res.notices)


def test_undetermined_language_uses_english(tmp_path: Path) -> None:
    res = enhance("красная кружка", backend="template", settings=_s(tmp_path))
    assert res.detected_language == "und" and res.output_language == "en"
    assert any("not recognised" in n for n in res.notices)


@pytest.mark.parametrize(
    ("kwargs", "fragment"),
    [
        ({"template": "black_friday"}, "choose one of festival_greeting, lifestyle"),
        ({"backend": "gpt"}, "unknown enhancer backend"),
        ({"output_language": "fr"}, "unknown output language"),
        ({"product": {"sku": "1"}}, "invalid product field sku"),
    ],
)
def test_bad_options_are_refused(tmp_path: Path, kwargs: dict, fragment: str) -> None:
    with pytest.raises(InvalidInput, match=fragment):
        enhance("a red mug", settings=_s(tmp_path), **kwargs)


def test_vocabulary_uses_product_fields_for_missing_slots(tmp_path: Path) -> None:
    res = enhance(
        "it slides to the left",
        product={"colour": "crimson", "category": "ball"},
        settings=_s(tmp_path, generator="tiny"),
    )
    assert res.path == "vocabulary"
    assert res.enhanced_prompt == "a red circle moves from right to left"


def test_template_for_the_tiny_generator_carries_a_notice(tmp_path: Path) -> None:
    res = enhance("a red mug", template="lifestyle", settings=_s(tmp_path, generator="tiny"))
    assert res.path == "template"
    assert any("caption vocabulary" in n for n in res.notices)
