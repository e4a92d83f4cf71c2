"""The small model's take scorer: the detector's colour and direction agreement with what the
prompt names, in any of the captions' languages; None for a prompt it cannot judge."""

from __future__ import annotations

import random

import pytest

from models import tiny_data as data
from models.scoring import DetectorScorer, prompt_attributes, scorer_for


@pytest.mark.parametrize("lang", data.LANGUAGES)
def test_prompts_name_colour_shape_and_direction_in_every_language(lang):
    for colour, shape, direction in data.HELD_OUT:
        caption = data.caption(colour, shape, direction, lang, random.Random(7))
        assert prompt_attributes(caption) == {
            "colour": colour,
            "shape": shape,
            "direction": direction,
        }, caption


def test_a_clip_scores_what_it_shows():
    rng = random.Random(3)
    frames = data.render(data.sample_spec(rng, ("red", "square", "right")))
    scorer = DetectorScorer()
    assert scorer.score(frames, "a red square moves from left to right").value == 1.0
    part = scorer.score(frames, "a blue square moves from left to right")
    assert part.value == 0.667
    assert part.details["agree"] == {"colour": False, "shape": True, "direction": True}
    assert scorer.score(frames, "a red triangle moving up").value == 0.333
    assert scorer.score(frames, "a green circle moving up").value == 0.0
    assert scorer.score(frames, "a cosy living room") is None  # names nothing it can judge
    assert scorer_for("tiny") is not None and scorer_for("wan") is None
