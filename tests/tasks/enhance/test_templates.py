from __future__ import annotations

import pytest

from reelforge.core.errors import InvalidInput
from tasks.enhance.templates import Product, available_presets, render_template

PRESETS = ["festival_greeting", "lifestyle", "product_showcase", "unboxing"]
PRODUCTS = {
    "en": Product(
        name="Aurora", colour="sage green", material="ceramic", category="mug", price="$149"
    ),
    "zh": Product(name="晨光", colour="红色", material="陶瓷", category="马克杯", price="¥99"),
    "ja": Product(
        name="朝光", colour="赤", material="陶器", category="マグカップ", price="1,200円"
    ),
    "ko": Product(
        name="새벽", colour="빨간", material="도자기", category="머그컵", price="15000원"
    ),
}


@pytest.mark.parametrize("lang", ["en", "zh", "ja", "ko"])
def test_every_preset_renders_in_every_language(lang: str) -> None:
    assert available_presets(lang) == PRESETS
    product = PRODUCTS[lang]
    prompts = set()
    for preset in PRESETS:
        res = render_template(preset, language=lang, product=product, brief="brief-marker")
        assert set(res.slots) == {"subject", "motion", "background", "lighting", "shot", "camera"}
        for field in ("name", "colour", "material", "category"):
            assert getattr(product, field) in res.prompt, (preset, field)
        for slot in ("motion", "lighting", "camera"):
            assert res.slots[slot] in res.prompt
        assert "brief-marker" in res.prompt.lower()
        assert "{" not in res.prompt and "  " not in res.prompt
        prompts.add(res.prompt)
    assert len(prompts) == 4


def test_same_input_same_prompt_and_products_vary() -> None:
    a = render_template("product_showcase", language="en", product=PRODUCTS["en"])
    b = render_template("product_showcase", language="en", product=PRODUCTS["en"].model_copy())
    assert a == b
    others = {
        render_template("product_showcase", language="en", product=Product(name=f"Item {i}")).prompt
        for i in range(12)
    }
    assert len(others) > 3  # options are chosen by a hash of the input, not always the first


def test_english_details() -> None:
    res = render_template(
        "product_showcase", language="en", product=Product(colour="orange", category="kettle")
    )
    assert "an orange kettle" in res.prompt.lower()
    premium = render_template("lifestyle", language="en", product=Product(name="X", price="$149"))
    cheap = render_template("lifestyle", language="en", product=Product(name="X", price="$9"))
    assert "premium" in premium.prompt and "premium" not in cheap.prompt


def test_brief_only_becomes_the_subject() -> None:
    res = render_template("unboxing", language="zh", brief="一只红色的马克杯。")
    assert res.slots["subject"] == "一只红色的马克杯"
    assert res.prompt.count("一只红色的马克杯") == 1


def test_korean_subject_particle() -> None:
    res = render_template("lifestyle", language="ko", product=Product(category="머그컵"))
    assert "머그컵이 " in res.prompt
    res = render_template("lifestyle", language="ko", product=Product(category="가방"))
    assert "가방이 " in res.prompt
    res = render_template("lifestyle", language="ko", product=Product(category="시계"))
    assert "시계가 " in res.prompt


def test_unknown_template_lists_valid_ones() -> None:
    with pytest.raises(InvalidInput) as info:
        render_template("black_friday", language="en")
    assert "black_friday" in str(info.value)
    assert "product_showcase" in str(info.value) and "unboxing" in str(info.value)


def test_product_field_validation() -> None:
    assert Product(price=49.5).price == "49.5"
    assert Product(name="  Lamp\x00 ").name == "Lamp"
    with pytest.raises(ValueError):
        Product(name="x" * 500)
    with pytest.raises(ValueError):
        Product(sku="1")  # type: ignore[call-arg]
