"""Map free text onto the tiny CPU model's caption vocabulary.

The small model (models/tiny_data.py) only understands captions built from three shapes,
six colours and four directions. ``map_to_vocabulary`` finds a colour, a shape and a
direction in free text ("a crimson ball drifting to the right", "一个蓝色的盒子往上飘") using
per-language synonym tables (``synonyms/<lang>.yaml``) and rewrites the prompt as the
dataset's canonical caption (``models.tiny_data.caption(..., rng=None)``).

Matching: the detected language's table plus the English one (Latin words are common in
CJK prompts); all four when the language is undetermined. Candidates are matched longest
first without overlaps (English on word boundaries, CJK as substrings). Each slot takes the
value with the highest score; "from the left"-style words count half as much as destination
words. Position phrases ("the red circle on the left moves up") are consumed without counting,
so their left/right/top words are not read as motion. A word right after a negation cue ("not
red, a blue circle"; "赤ではなく" and "빨간색 말고" put the cue after the word) does not count, and
neither do the vocabulary words joined to it by nothing but spaces and fillers ("not a red
ball": red and ball). What is still not understood: docs/enhancement.md.
"""

from __future__ import annotations

import re
from functools import lru_cache
from pathlib import Path
from typing import NamedTuple

import yaml
from pydantic import BaseModel

from .language import SUPPORTED_LANGUAGES

SYNONYM_DIR = Path(__file__).with_name("synonyms")
SLOTS = ("colour", "shape", "direction")
_OPPOSITE = {"left": "right", "right": "left", "up": "down", "down": "up"}
_FROM_WEIGHT = 0.5

# Fallback copy of the dataset's vocabulary and canonical captions (first variant of each
# word in models/tiny_data.py), used only if that module cannot be imported.
COLOURS = ("red", "orange", "yellow", "green", "blue", "purple")
SHAPES = ("circle", "square", "triangle")
DIRECTIONS = ("left", "right", "up", "down")
_FALLBACK_WORDS = {
    "en": (
        "a {c} {s} {d}",
        {c: c for c in COLOURS},
        {s: s for s in SHAPES},
        {
            "right": "moves from left to right",
            "left": "moves from right to left",
            "up": "moves from bottom to top",
            "down": "moves from top to bottom",
        },
    ),
    "zh": (
        "一个{c}的{s}{d}",
        dict(zip(COLOURS, ["红色", "橙色", "黄色", "绿色", "蓝色", "紫色"], strict=True)),
        {"circle": "圆形", "square": "正方形", "triangle": "三角形"},
        {
            "right": "从左向右移动",
            "left": "从右向左移动",
            "up": "从下向上移动",
            "down": "从上向下移动",
        },
    ),
    "ja": (
        "{c}{s}が{d}",
        dict(zip(COLOURS, ["赤い", "オレンジ色の", "黄色い", "緑の", "青い", "紫の"], strict=True)),
        {"circle": "円", "square": "四角形", "triangle": "三角形"},
        {
            "right": "左から右へ移動する",
            "left": "右から左へ移動する",
            "up": "下から上へ移動する",
            "down": "上から下へ移動する",
        },
    ),
    "ko": (
        "{c} {s} {d}",
        dict(zip(COLOURS, ["빨간", "주황색", "노란", "초록색", "파란", "보라색"], strict=True)),
        {"circle": "원이", "square": "사각형이", "triangle": "삼각형이"},
        {
            "right": "왼쪽에서 오른쪽으로 이동한다",
            "left": "오른쪽에서 왼쪽으로 이동한다",
            "up": "아래에서 위로 이동한다",
            "down": "위에서 아래로 이동한다",
        },
    ),
}


def canonical_caption(colour: str, shape: str, direction: str, language: str) -> str:
    """The caption the tiny model was trained on for this combination (first variant)."""
    if language not in SUPPORTED_LANGUAGES:
        language = "en"
    try:
        from models.tiny_data import caption  # the dataset's own captions, when present

        return caption(colour, shape, direction, language)
    except ImportError:
        tmpl, cw, sw, dw = _FALLBACK_WORDS[language]
        return tmpl.format(c=cw[colour], s=sw[shape], d=dw[direction])


class VocabularyMatch(BaseModel):
    colour: str | None
    shape: str | None
    direction: str | None
    matched: dict[str, list[str]]  # slot -> surface words that matched
    ambiguous: list[str]  # slots where several values matched
    caption: str | None  # canonical caption, only when all three slots are known
    negated: list[str] = []  # vocabulary words a negation cue took out ("not red")
    positions: list[str] = []  # place phrases read as places, not motion ("on the left")

    @property
    def missing(self) -> list[str]:
        return [s for s in SLOTS if getattr(self, s) is None]

    @property
    def complete(self) -> bool:
        return not self.missing


@lru_cache(maxsize=8)
def _synonyms(language: str) -> dict:
    return yaml.safe_load((SYNONYM_DIR / f"{language}.yaml").read_text(encoding="utf-8"))


def _words(surface: str, suffix: str = "") -> str:
    """``surface`` as a regex: English on word boundaries (``suffix``: a plural ending),
    spaces as any whitespace."""
    words = r"\s+".join(re.escape(p) for p in surface.lower().split())
    return rf"(?<![a-z]){words}{suffix}(?![a-z])" if surface.isascii() else words


@lru_cache(maxsize=8)
def _table(language: str) -> list[tuple[str, str, str, float, re.Pattern[str] | None]]:
    """(surface, slot, value, weight, regex) sorted longest first; slot ``position`` rows are
    places, not motion: matched so that nothing else reads them, never counted."""
    data = _synonyms(language)
    rows: list[tuple[str, str, str, float, re.Pattern[str] | None]] = []
    for slot in SLOTS:
        for value, words in (data.get(slot) or {}).items():
            for w in words:
                rows.append((str(w), slot, value, 1.0, None))
    for source, words in (data.get("direction_from") or {}).items():
        for w in words:
            rows.append((str(w), "direction", _OPPOSITE[source], _FROM_WEIGHT, None))
    for w in data.get("position") or []:
        rows.append((str(w), "position", "", 0.0, None))
    out = []
    for surface, slot, value, weight, _ in rows:
        pattern = re.compile(_words(surface, r"(?:e?s)?")) if surface.isascii() else None
        out.append((surface, slot, value, weight, pattern))
    out.sort(key=lambda r: -len(r[0]))
    return out


class _Negation(NamedTuple):
    before: re.Pattern[str] | None  # a cue ending the text before a word ("not a ")
    after: re.Pattern[str] | None  # a cue starting the text after it ("ではなく")
    gap: re.Pattern[str]  # what may join two words in one negated phrase


@lru_cache(maxsize=8)
def _negation(languages: tuple[str, ...]) -> _Negation:
    cues: dict[str, list[str]] = {"before": [], "after": []}
    fillers: list[str] = []
    for lang in languages:
        data = _synonyms(lang).get("negation") or {}
        for side in cues:
            cues[side] += [str(w) for w in data.get(side) or []]
        fillers += [str(w) for w in data.get("fillers") or []]

    def alternation(words: list[str]) -> str:
        return "|".join(_words(w) for w in sorted(set(words), key=len, reverse=True))

    fill = rf"(?:\s*(?:{alternation(fillers)}))*\s*" if fillers else r"\s*"
    before = rf"(?:{alternation(cues['before'])}){fill}$" if cues["before"] else None
    after = rf"^{fill}(?:{alternation(cues['after'])})" if cues["after"] else None
    return _Negation(
        before=re.compile(before) if before else None,
        after=re.compile(after) if after else None,
        gap=re.compile(rf"^{fill}$"),
    )


def _negated(lowered: str, spans: list[tuple[int, int]], negation: _Negation) -> set[int]:
    """Indexes of the spans (sorted by position) that a negation cue covers: the word next to
    the cue and the words joined to it by fillers ("not a red ball": red, ball)."""

    def joined(a: int, b: int) -> bool:  # spans a < b with nothing but fillers between them
        return negation.gap.match(lowered[spans[a][1] : spans[b][0]]) is not None

    forward: set[int] = set()  # a cue before the phrase: it reaches rightwards
    if negation.before is not None:
        for i, (start, _) in enumerate(spans):
            if negation.before.search(lowered[:start]) or (i - 1 in forward and joined(i - 1, i)):
                forward.add(i)
    backward: set[int] = set()  # a cue after the phrase: it reaches leftwards
    if negation.after is not None:
        for i in reversed(range(len(spans))):
            if negation.after.search(lowered[spans[i][1] :]) or (
                i + 1 in backward and joined(i, i + 1)
            ):
                backward.add(i)
    return forward | backward


def _tables_for(language: str) -> list[str]:
    if language not in SUPPORTED_LANGUAGES:
        return list(SUPPORTED_LANGUAGES)
    return [language] if language == "en" else [language, "en"]


def map_to_vocabulary(
    text: str, *, language: str, output_language: str | None = None
) -> VocabularyMatch:
    """Find colour, shape and direction in ``text``; build the canonical caption if complete."""
    lowered = text.lower()
    taken = [False] * len(lowered)
    hits: list[tuple[int, int, str, str, str, float]] = []  # (start, end, slot, value, surface, w)
    languages = _tables_for(language)
    rows = sorted((r for lang in languages for r in _table(lang)), key=lambda r: -len(r[0]))
    for surface, slot, value, weight, pattern in rows:
        if pattern is not None:
            spans = [m.span() for m in pattern.finditer(lowered)]
        else:
            spans = [(m.start(), m.end()) for m in re.finditer(re.escape(surface), lowered)]
        for start, end in spans:
            if any(taken[start:end]):
                continue
            for i in range(start, end):
                taken[i] = True
            hits.append((start, end, slot, value, text[start:end], weight))
    hits.sort()
    positions = [h[4] for h in hits if h[2] == "position"]
    words = [h for h in hits if h[2] != "position"]
    off = _negated(lowered, [(h[0], h[1]) for h in words], _negation(tuple(languages)))
    negated = [h[4] for i, h in enumerate(words) if i in off]
    counted = [h for i, h in enumerate(words) if i not in off]
    result: dict[str, str | None] = {}
    matched: dict[str, list[str]] = {}
    ambiguous: list[str] = []
    for slot in SLOTS:
        scores: dict[str, float] = {}
        first: dict[str, int] = {}
        for pos, _end, s, value, surface, weight in counted:
            if s != slot:
                continue
            scores[value] = scores.get(value, 0.0) + weight
            first.setdefault(value, pos)
            matched.setdefault(slot, []).append(surface)
        if not scores:
            result[slot] = None
            continue
        if len(scores) > 1:
            ambiguous.append(slot)
        result[slot] = max(scores, key=lambda v: (scores[v], -first[v]))
    cap = None
    if all(result[s] for s in SLOTS):
        out_lang = output_language or language
        cap = canonical_caption(
            result["colour"],
            result["shape"],
            result["direction"],
            out_lang,  # type: ignore[arg-type]
        )
    return VocabularyMatch(
        colour=result["colour"],
        shape=result["shape"],
        direction=result["direction"],
        matched=matched,
        ambiguous=ambiguous,
        caption=cap,
        negated=negated,
        positions=positions,
    )
