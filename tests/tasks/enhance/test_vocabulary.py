from __future__ import annotations

import pytest

from tasks.enhance.language import detect_language
from tasks.enhance.vocabulary import canonical_caption, map_to_vocabulary


def _map(text: str, out: str | None = None):
    return map_to_vocabulary(text, language=detect_language(text).language, output_language=out)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("a crimson ball drifting to the right", ("red", "circle", "right")),
        ("An emerald pyramid sinking slowly", ("green", "triangle", "down")),
        ("violet cubes rising into the sky", ("purple", "square", "up")),
        ("a golden disc slides in from the right", ("yellow", "circle", "left")),
        ("Tangerine wedge, falling from the top", ("orange", "triangle", "down")),
        ("a navy box moving from right to left", ("blue", "square", "left")),
        ("一个蓝色的盒子往上飘", ("blue", "square", "up")),
        ("金黄的小球从左边滚过来", ("yellow", "circle", "right")),
        ("紫色三角形慢慢下沉", ("purple", "triangle", "down")),
        ("橘黄色的方块向左滑", ("orange", "square", "left")),
        ("赤いボールが右へ転がる", ("red", "circle", "right")),
        ("緑のピラミッドが落ちていく", ("green", "triangle", "down")),
        ("水色の箱がふわっと浮かび上がる", ("blue", "square", "up")),
        ("파란 상자가 위로 떠오른다", ("blue", "square", "up")),
        ("빨간 공이 오른쪽에서 굴러온다", ("red", "circle", "left")),
        ("보라색 세모가 아래로 떨어진다", ("purple", "triangle", "down")),
    ],
)
def test_free_text_maps_onto_the_vocabulary(text: str, expected: tuple[str, str, str]) -> None:
    m = _map(text)
    assert (m.colour, m.shape, m.direction) == expected
    lang = detect_language(text).language
    assert m.caption == canonical_caption(*expected, lang)


def test_captions_match_the_dataset_canonical_captions() -> None:
    tiny_data = pytest.importorskip("models.tiny_data")
    for lang in ("en", "zh", "ja", "ko"):
        assert canonical_caption("red", "circle", "right", lang) == tiny_data.caption(
            "red", "circle", "right", lang
        )
    # The canonical captions themselves map onto themselves in every language.
    for combo in tiny_data.ALL_COMBOS[::5]:
        for lang in tiny_data.LANGUAGES:
            cap = tiny_data.caption(*combo, lang)
            m = map_to_vocabulary(cap, language=lang)
            assert (m.colour, m.shape, m.direction) == combo, cap
            assert m.caption == cap


def test_output_language_can_differ() -> None:
    m = _map("一个蓝色的盒子往上飘", out="en")
    assert m.caption == canonical_caption("blue", "square", "up", "en")
    assert "blue" in m.caption


def test_incomplete_prompt_has_no_caption_and_lists_missing_slots() -> None:
    m = _map("a red mug on a desk")
    assert m.colour == "red" and m.caption is None
    assert m.missing == ["shape", "direction"]


def test_conflicting_colours_are_flagged() -> None:
    m = _map("a red and blue ball moving up, blue stripes")
    assert m.colour == "blue" and "colour" in m.ambiguous


def test_english_words_match_on_word_boundaries() -> None:
    m = _map("a credible boxer upholds order")  # red, box, up, order inside other words
    assert (m.colour, m.shape, m.direction) == (None, None, None)


def test_benchmark_prompts_map_onto_their_combinations() -> None:
    from benchmarks.bench_enhancement import PROMPTS

    for combo, by_lang in PROMPTS.items():
        for lang, text in by_lang.items():
            assert detect_language(text).language == lang, text
            m = _map(text)
            assert (m.colour, m.shape, m.direction) == combo, text


@pytest.mark.parametrize(
    ("text", "expected", "places"),
    [
        ("the red circle on the left moves up", ("red", "circle", "up"), ["on the left"]),
        (
            "a yellow square at the top right sinking",
            ("yellow", "square", "down"),
            ["at the top right"],
        ),
        ("左边的红色圆形向上移动", ("red", "circle", "up"), ["左边的"]),
        ("左の赤い円が上へ動く", ("red", "circle", "up"), ["左の"]),
        ("왼쪽에 있는 빨간 원이 위로 움직인다", ("red", "circle", "up"), ["왼쪽에 있는"]),
    ],
)
def test_a_position_is_not_read_as_motion(text, expected, places) -> None:
    m = _map(text)
    assert (m.colour, m.shape, m.direction) == expected
    assert m.positions == places and "direction" not in m.ambiguous


@pytest.mark.parametrize(
    ("text", "expected", "negated"),
    [
        ("not red, a blue circle moving right", ("blue", "circle", "right"), ["red"]),
        ("a circle, not a square, rising", (None, "circle", "up"), ["square"]),
        ("not a red ball: a blue box rising", ("blue", "square", "up"), ["red", "ball"]),
        ("a green triangle moving up, not down", ("green", "triangle", "up"), ["down"]),
        ("不是红色，是一个蓝色的圆形向右移动", ("blue", "circle", "right"), ["红色"]),
        ("赤ではなく青い円が右へ動く", ("blue", "circle", "right"), ["赤"]),
        ("빨간 공이 아닌 파란 상자가 위로 떠오른다", ("blue", "square", "up"), ["빨간", "공"]),
    ],
)
def test_a_negated_word_does_not_count(text, expected, negated) -> None:
    m = _map(text)
    assert (m.colour, m.shape, m.direction) == expected
    assert m.negated == negated


def test_negation_reaches_only_the_phrase_next_to_its_cue() -> None:
    # "or" ends the negated phrase: green still counts (docs/enhancement.md)
    m = _map("not red or green, a circle moving up")
    assert m.colour == "green" and m.negated == ["red"]
    m = _map("a knot of red balls going up")  # "knot" is not "not"
    assert m.colour == "red" and m.negated == []
