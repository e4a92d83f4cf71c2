"""Brand styles on the small model: the shipped `ocean` LoRA paints the object blue in both
experts, deterministically, and only while it is asked for; files that do not fit the model
are refused in one line before registration."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.torch import save_file

from models.detector import REFERENCE_HUES, _hue_dist, detect
from models.generator import GenerationRequest
from models.styles import MAX_RANK, check_style_lora
from models.train_style_lora import STYLES_DIR
from reelforge.core.checkpoints import TINY_DIR
from reelforge.core.errors import InvalidInput
from reelforge.core.storage import sha256_file

OCEAN = STYLES_DIR / "ocean.safetensors"
PROMPTS = (
    "a red circle moves from left to right",
    "a yellow square moves up",
    "a green triangle moves down",
)


def _request(prompt: str, **style) -> GenerationRequest:
    return GenerationRequest(prompt=prompt, seed=1, speed="fast", **style)


@pytest.mark.parametrize("prompt", PROMPTS)
def test_ocean_paints_the_object_blue_and_nothing_else(tiny, prompt):
    plain = tiny.generate(_request(prompt))
    styled = tiny.generate(_request(prompt, style_lora=OCEAN))
    again = tiny.generate(_request(prompt, style_lora=OCEAN))
    after = tiny.generate(_request(prompt))
    assert np.array_equal(styled.frames, again.frames)  # deterministic
    assert np.array_equal(plain.frames, after.frames)  # without the style: unchanged
    before, painted = detect(plain.frames), detect(styled.frames)
    assert before.colour == prompt.split()[1] and painted.colour == "blue", (before, painted)
    # the measured effect: the object's hue moves to within 25 degrees of blue...
    assert _hue_dist(painted.hue, REFERENCE_HUES["blue"]) < 25.0
    # ...while the shape keeps moving the prompt's way
    assert painted.direction == before.direction
    assert styled.metadata.style_sha256 == sha256_file(OCEAN)
    assert styled.metadata.style_strength == 1.0 and plain.metadata.style_sha256 is None
    assert styled.metadata.cache_key != plain.metadata.cache_key


def test_strength_scales_the_style_and_keys_the_cache(tiny):
    prompt = PROMPTS[0]
    half = tiny.generate(_request(prompt, style_lora=OCEAN, style_strength=0.5))
    full = tiny.generate(_request(prompt, style_lora=OCEAN))
    zero = tiny.generate(_request(prompt, style_lora=OCEAN, style_strength=0.0))
    plain = tiny.generate(_request(prompt))
    assert len({v.metadata.cache_key for v in (half, full, zero, plain)}) == 4
    assert np.array_equal(zero.frames, plain.frames)  # strength 0 is the plain model
    assert not np.array_equal(half.frames, full.frames)


def test_the_shipped_style_fits_the_small_model():
    check = check_style_lora(OCEAN, TINY_DIR)
    assert check.rank == 4 and check.modules > 0
    assert OCEAN.stat().st_size < 512 * 1024


def _lora(path: Path, tensors: dict[str, torch.Tensor]) -> Path:
    save_file(tensors, str(path))
    return path


def test_files_that_do_not_fit_are_refused_in_one_line(tmp_path):
    layer = "transformer.blocks.0.attn1.to_q"
    fit = {
        f"{layer}.lora_A.weight": torch.zeros(4, 128),
        f"{layer}.lora_B.weight": torch.zeros(128, 4),
    }
    cases = {
        "not safetensors": (tmp_path / "a.safetensors", None, "is not a safetensors file"),
        "foreign keys": (
            tmp_path / "b.safetensors",
            {"diffusion_model.blocks.0.self_attn.q.weight": torch.zeros(2, 2)},
            "is not a LoRA weight in diffusers' format",
        ),
        "missing layer": (
            tmp_path / "c.safetensors",
            {k.replace("blocks.0", "blocks.39"): v for k, v in fit.items()},
            "adapts blocks.39.attn1.to_q, which the model's transformer does not have",
        ),
        "wrong width": (
            tmp_path / "d.safetensors",
            {
                f"{layer}.lora_A.weight": torch.zeros(4, 5120),
                f"{layer}.lora_B.weight": torch.zeros(5120, 4),
            },
            "which do not fit its 128 -> 128 weights",
        ),
        "rank": (
            tmp_path / "e.safetensors",
            {
                f"{layer}.lora_A.weight": torch.zeros(MAX_RANK + 1, 128),
                f"{layer}.lora_B.weight": torch.zeros(128, MAX_RANK + 1),
            },
            f"a style needs at most {MAX_RANK}",
        ),
    }
    for what, (path, tensors, message) in cases.items():
        if tensors is None:
            path.write_bytes(b"not a LoRA")
        else:
            _lora(path, tensors)
        with pytest.raises(InvalidInput) as e:
            check_style_lora(path, TINY_DIR)
        assert message in str(e.value) and "\n" not in str(e.value), what
    assert check_style_lora(_lora(tmp_path / "ok.safetensors", fit), TINY_DIR).rank == 4
