"""The tiny model's training script: its latent space, and a miniature run end to end."""

from __future__ import annotations

import random

import numpy as np
import pytest
import torch

from models import tiny_data as data
from models import tiny_train
from reelforge.core.checkpoints import checkpoint_digest


def _clip(combo=("blue", "square", "right"), frames=17) -> torch.Tensor:
    return tiny_train._to_tensor([data.render(data.sample_spec(random.Random(3), combo), frames)])


def test_latents_hold_coverage_and_the_objects_own_colour():
    x = _clip()
    z = tiny_train.target_latents(x)
    assert z.shape == (1, 16, 5, 8, 8)
    # latent frame 2 packs frames 5..8; channel 0 of each frame is coverage
    cover = z[0, 0, 2]
    full = cover > 0.9
    assert full.any() and (cover[~full] < 0.9).all()
    want = torch.tensor(data.COLOURS["blue"], dtype=torch.float32) / 127.5 - 1
    got = z[0, 1:4, 2][:, full].mean(1)
    assert torch.allclose(got, want, atol=0.1), (got, want)
    # cells the object never touches: no coverage and no colour
    empty = cover == 0
    assert empty.sum() > 40 and (z[0, 1:4, 2][:, empty] == 0).all()


def test_the_first_latent_frame_is_frame_zero_alone():
    x = _clip(frames=5)
    z = tiny_train.target_latents(x)
    assert z.shape[2] == 2
    first = tiny_train.target_latents(x[:, :, :1])
    assert torch.equal(z[:, :, :1], first)
    assert torch.equal(z[0, 0:4, 0], z[0, 4:8, 0])  # frame 0 repeated in all four slots


def test_the_latent_follows_the_object():
    z = tiny_train.target_latents(_clip(("red", "circle", "right")))
    cover = z[0, 0]  # coverage in the first frame slot of each latent frame: (5, 8, 8)
    cols = torch.arange(8, dtype=torch.float32)
    centre = [(c.sum(0) * cols).sum() / c.sum() for c in cover]
    assert centre[-1] - centre[0] > 2.0, centre  # moved right by more than two cells


@pytest.fixture(scope="module")
def miniature(tmp_path_factory):
    """Two miniature trainings with the same seed (a few steps of every stage)."""
    runs = []
    for name in ("a", "b"):
        root = tmp_path_factory.mktemp(name)
        tiny_train.train(
            root / "model",
            root / "work",
            seed=7,
            vae_steps=2,
            vae_encoder_steps=2,
            dataset_size=32,
            text_steps=3,
            dit_steps=3,
            dit_batch=4,
            log=lambda _m: None,
        )
        runs.append(root / "model")
    return runs


def test_training_is_reproducible(miniature):
    a, b = miniature
    assert checkpoint_digest(a) == checkpoint_digest(b)


def test_a_trained_model_loads_and_generates(miniature):
    from diffusers import WanPipeline

    pipe = WanPipeline.from_pretrained(str(miniature[0]))
    assert pipe.config.boundary_ratio == tiny_train.BOUNDARY_RATIO
    out = pipe(
        prompt="a red circle moves from left to right",
        height=64,
        width=64,
        num_frames=9,
        num_inference_steps=2,
        generator=torch.Generator().manual_seed(0),
        output_type="np",
    ).frames[0]
    assert out.shape == (9, 64, 64, 3) and np.isfinite(out).all()
