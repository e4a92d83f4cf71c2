from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from reelforge.core.errors import InvalidInput
from tasks.enhance.language import detect_language
from tasks.enhance.normalize import MAX_PROMPT_CHARS, normalize_prompt


@pytest.mark.parametrize(
    ("raw", "fragment"),
    [
        ("", "empty"),
        ("   \t\n  ", "blank"),
        ("\x00\x07\x1b", "blank"),
        ("x" * 10_000, f"maximum is {MAX_PROMPT_CHARS}"),
        ("🎉🎁✨", "no words"),
        ("👍🏽 ❤️ !!!", "no words"),
    ],
)
def test_refused_inputs_raise_one_line_invalid_input(raw: str, fragment: str) -> None:
    with pytest.raises(InvalidInput) as info:
        normalize_prompt(raw)
    message = str(info.value)
    assert fragment in message
    assert "\n" not in message
    assert info.value.exit_code == 2


def test_control_characters_are_stripped_with_a_notice() -> None:
    out = normalize_prompt("a red\x00 circle\u200b moves\x1b up\r\n\tnow")
    assert out.text == "a red circle moves up now"
    assert out.notices == ["stripped 3 control/format character(s)"]


def test_whitespace_collapses_and_max_length_is_inclusive() -> None:
    assert normalize_prompt("  a   b  ").text == "a b"
    assert len(normalize_prompt("y" * MAX_PROMPT_CHARS).text) == MAX_PROMPT_CHARS


def test_emoji_with_words_is_kept() -> None:
    assert normalize_prompt("🎉 a red gift box 🎁").text == "🎉 a red gift box 🎁"


@pytest.mark.parametrize(
    ("text", "lang", "mixed"),
    [
        ("a red circle moves up", "en", False),
        ("一个蓝色的盒子往上飘", "zh", False),
        ("赤いボールが右へ転がる", "ja", False),
        ("東京タワー", "ja", False),
        ("파란 상자가 위로 떠오른다", "ko", False),
        ("iPhone 15 手机壳", "zh", True),
        ("Nike スニーカー", "ja", True),
        ("Samsung 갤럭시 케이스", "ko", True),
        ("красный круг", "und", False),
        ("12345", "und", False),
    ],
)
def test_detect_language(text: str, lang: str, mixed: bool) -> None:
    info = detect_language(text)
    assert info.language == lang
    assert info.mixed is mixed
    if mixed:
        assert info.notice and lang in info.notice


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=300))
def test_normalize_never_returns_control_characters(raw: str) -> None:
    import unicodedata

    try:
        out = normalize_prompt(raw)
    except InvalidInput as exc:
        assert "\n" not in str(exc)
        return
    assert out.text == out.text.strip() and out.text
    assert "  " not in out.text
    assert not any(unicodedata.category(c) == "Cc" for c in out.text)
    assert normalize_prompt(out.text).text == out.text  # idempotent
