"""Automatic scores for a job's takes: shown beside each take in a review, never deciding
alone (except a timed-out review whose policy is ``auto: best_score``).

``Scorer`` is the interface another model plugs into (a Wan deployment could score with a
CLIP-style model); the small model's scorer is the independent detector of
``models/detector.py``: how many of the colour, shape and direction the prompt names the clip
shows.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol

import numpy as np

from models.detector import detect
from models.tiny_data import _WORDS as WORDS  # the captions' own vocabulary, en/zh/ja/ko


@dataclass(frozen=True)
class Score:
    value: float  # 0 (nothing the prompt names is seen) .. 1 (all of it)
    scorer: str  # name@version, kept in lineage
    details: dict[str, object] = field(default_factory=dict)


class Scorer(Protocol):
    name: str

    def score(self, frames: np.ndarray, prompt: str) -> Score | None:
        """The take's score for ``prompt`` from its uint8 (T, H, W, 3) frames, or None when
        this scorer cannot judge the prompt (it names nothing the scorer knows)."""
        ...


def prompt_attributes(prompt: str) -> dict[str, str]:
    """The colour, shape and direction a prompt names, in any of the captions' languages
    (the longest matching phrase wins: "moves from left to right" is ``right``)."""
    text = prompt.lower()
    found: dict[str, str] = {}
    for category in ("colour", "shape", "dir"):
        matches = [
            (len(phrase), value)
            for words in WORDS.values()
            for value, phrases in words[category].items()
            for phrase in phrases
            if phrase.lower() in text
        ]
        if matches:
            found["direction" if category == "dir" else category] = max(matches)[1]
    return found


class DetectorScorer:
    """The small model's scorer: colour, shape and direction agreement
    (``models/detector.py``)."""

    name = "detector@2"

    def score(self, frames: np.ndarray, prompt: str) -> Score | None:
        wanted = prompt_attributes(prompt)
        if not wanted:
            return None
        seen = detect(frames)
        got = {"colour": seen.colour, "shape": seen.shape, "direction": seen.direction}
        agree = {k: got[k] == v for k, v in wanted.items()}
        return Score(
            value=round(sum(agree.values()) / len(agree), 3),
            scorer=self.name,
            details={"wanted": wanted, "detected": got, "agree": agree},
        )


def scorer_for(generator: str) -> Scorer | None:
    """The scorer of a generator (REELFORGE_GENERATOR), None where there is none yet."""
    return DetectorScorer() if generator == "tiny" else None
