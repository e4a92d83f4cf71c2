"""Text gate: obfuscated terms in en/zh/ja/ko are caught, ordinary product copy passes."""

from __future__ import annotations

import pytest

from reelforge.core.errors import BlockedBySafety
from tasks.safety.text import check_text, check_texts, load_terms, normalize, require_safe_texts
from tasks.safety.verdicts import TextBlocked

CAUGHT = [
    # (text, category, how)  -- English
    ("watch p0rn tonight", "sexual", "leet"),
    ("s e x video", "sexual", "spacing"),
    ("s.e.x", "sexual", "spacing"),
    ("buy a s-e-x toy", "sexual", "spacing"),
    ("$ex shop", "sexual", "leet"),
    ("ｐｏｒｎ", "sexual", "word"),  # full-width
    ("s\u200bex tape", "sexual", "word"),  # zero-width space
    ("рorn", "sexual", "word"),  # Cyrillic р
    ("pôrn", "sexual", "word"),  # diacritic
    ("k i l l yourself", "self-harm", "spacing"),
    ("HEIL-HITLER", "hate", "word"),
    ("买sex玩具", "sexual", "word"),
    # Chinese
    ("色 情 视频", "sexual", "substring"),
    ("色.情", "sexual", "substring"),
    ("自\u200b杀", "self-harm", "substring"),
    ("儿童色情", "minors", "substring"),
    # Japanese
    ("ｾｯｸｽ", "sexual", "substring"),  # half-width katakana
    ("せっくす", "sexual", "substring"),  # hiragana spelling
    ("セ・ッ・ク・ス", "sexual", "substring"),
    ("児童　ポルノ", "minors", "substring"),  # ideographic space
    # Korean
    ("섹 스", "sexual", "spacing"),
    ("섹.스", "sexual", "spacing"),
    ("ㅅㅔㄱㅅㅡ", "sexual", "substring"),  # jamo typed apart
    ("자살을 생각", "self-harm", "substring"),
]

PASSING = [
    "red running shoes",
    "夏季新款连衣裙",
    "Sussex cotton tee, made in Essex",
    "Scunthorpe United home scarf",
    "Assassin's Creed hoodie",
    "unisex sneakers",
    "Gore-Tex hiking jacket",
    "white power bank 10000mAh",
    "cold-pressed rapeseed oil",
    "grape juice 4 pack $5 off, 100% organic",
    "Model 53X, 5 stars",
    "nude lipstick, killer deals on bath bombs",
    "photo shoot behind the scenes",
    "红色情人节礼物",
    "出口交易会特价",
    "カロリーオフのおやつ",
    "グローバル限定モデル",
    "여자 살림 필수템",
    "칼로리 낮은 간식",
    "누드톤 립스틱",
    "Hi Dick Sexton, your order from Cumming & Sons shipped",  # overlay names
    "Thanks, 佐藤 ロリエ さん",
    "자살골 없는 축구공",  # 'own goal': listed under allow
    "",
]


@pytest.mark.parametrize(("text", "category", "how"), CAUGHT)
def test_obfuscated_terms_are_caught(text: str, category: str, how: str) -> None:
    v = check_text(text)
    assert v.passed is False
    assert v.category == category
    assert v.matches[0].how == how


@pytest.mark.parametrize("text", PASSING)
def test_ordinary_copy_passes(text: str) -> None:
    v = check_text(text)
    assert v.passed is True, v.matches
    assert v.category is None and v.rule_id is None


def test_verdict_records_versions_and_never_the_term() -> None:
    v = check_text("watch p0rn tonight", field="overlay.0")
    assert v.term_list_version == load_terms().version
    assert v.term_list_version.startswith("2026.11.0+") and len(v.term_list_version) == 22
    assert v.policy_version.startswith("default@")
    assert v.rule_id == "en.sexual.001" and v.field == "overlay.0"
    dumped = v.model_dump_json() + v.message()
    assert "p0rn" not in dumped and "porn" not in dumped
    assert len(v.text_sha256) == 64


def test_require_safe_texts_raises_blocked_with_category_not_term() -> None:
    texts = {"prompt": "red running shoes", "enhanced_prompt": "red shoes, p0rn style"}
    with pytest.raises(TextBlocked) as info:
        require_safe_texts(texts)
    exc = info.value
    assert isinstance(exc, BlockedBySafety) and exc.exit_code == 3
    assert exc.category == "sexual"
    assert "enhanced_prompt" in str(exc) and "p0rn" not in str(exc) and "porn" not in str(exc)
    assert [v.passed for v in exc.verdicts] == [True, False]
    ok = require_safe_texts({"prompt": "red running shoes", "overlay.0": "Hi Anna!"})
    assert all(v.passed for v in ok)


def test_tenant_brand_terms_block_only_under_that_policy() -> None:
    assert check_text("better than Acme Shoes").passed is True
    v = check_text("better than ACME-shoes", policy="example-tenant")
    assert (v.passed, v.category) == (False, "brand")
    assert v.rule_id == "tenant.example-tenant.competitor.001"
    assert check_text("快跑 鞋业 同款", policy="example-tenant").category == "brand"
    verdicts = check_texts({"a": "miracle cure!", "b": "fine"}, policy="example-tenant")
    assert [v.passed for v in verdicts] == [False, True]


def test_verdict_is_not_a_boolean() -> None:
    v = check_text("red running shoes")
    with pytest.raises(TypeError):
        bool(v)


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("ＡＢＣ１２３", "abc123"),
        ("a\u200bb\u200dc\ufeffd", "abcd"),
        ("Straße", "strasse"),
        ("ｶﾀｶﾅ", "カタカナ"),
        ("ㅅㅔㄱㅅㅡ", "섹스"),
        ("café", "cafe"),
        ("Москва", "москва"),  # real Cyrillic words are left alone
    ],
)
def test_normalize(raw: str, expected: str) -> None:
    assert normalize(raw) == expected
