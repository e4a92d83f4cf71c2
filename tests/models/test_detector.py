from __future__ import annotations

import random

import numpy as np
import pytest

from models import tiny_data as data
from models.detector import detect


def test_detector_is_exact_on_ground_truth_clips():
    rng = random.Random(0)
    for combo in data.ALL_COMBOS:
        d = detect(data.render(data.sample_spec(rng, combo)))
        assert (d.colour, d.direction) == (combo[0], combo[2]), combo


def test_detector_finds_nothing_on_a_plain_clip():
    d = detect(np.full((17, 64, 64, 3), 228, np.uint8))
    assert d.colour is None and d.direction is None


def test_detector_rejects_bad_shape():
    with pytest.raises(ValueError):
        detect(np.zeros((64, 64, 3), np.uint8))


def test_held_out_combos_are_not_trained_but_every_word_is():
    assert not set(data.HELD_OUT) & set(data.TRAIN_COMBOS)
    for i, values in enumerate((data.COLOURS, data.SHAPES, data.DIRECTIONS)):
        assert {c[i] for c in data.TRAIN_COMBOS} == set(values)


def test_captions_in_four_languages():
    caps = {lang: data.caption("red", "circle", "right", lang) for lang in data.LANGUAGES}
    assert caps["en"] == "a red circle moves from left to right"
    assert "红色" in caps["zh"] and "赤い" in caps["ja"] and "빨간" in caps["ko"]
