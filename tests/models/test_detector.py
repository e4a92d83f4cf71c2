from __future__ import annotations

import random

import numpy as np
import pytest

from models import tiny_data as data
from models.detector import detect, shape_of, silhouette_fill


def test_detector_is_exact_on_ground_truth_clips():
    rng = random.Random(0)
    for combo in data.ALL_COMBOS:
        for frames in (17, 33):
            d = detect(data.render(data.sample_spec(rng, combo), frames))
            assert (d.colour, d.shape, d.direction) == combo, (combo, d.fill)


def test_silhouette_fill_reads_the_shape():
    assert shape_of(1.0) == "square" and shape_of(np.pi / 4) == "circle"
    assert shape_of(0.5) == "triangle" and shape_of(None) is None
    mask = np.zeros((3, 20, 20), bool)
    mask[:, 5:15, 5:15] = True  # a whole square in every frame
    assert silhouette_fill(mask) == 1.0
    mask[:, 0:4, 0:4] = True  # touching the edge: no longer whole, not read
    assert silhouette_fill(mask) is None


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
