"""Speed profiles on the shipped tiny model (CPU): fewer steps, FirstBlockCache on both experts,
and a step-distillation LoRA in the Wan2.2-Lightning / LightX2V key format.

No Lightning checkpoint can be downloaded here: the LoRA is a small random one written by the
test in that format (``diffusion_model.blocks.N.<module>.lora_down/lora_up/alpha``) and loaded
through the same code a real one goes through (diffusers converts the keys).
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from safetensors.torch import save_file

from models.generator import (
    DISTILLED_STEPS,
    SPEED_LORA_ADAPTER,
    STEP_CACHE_THRESHOLD,
    GenerationRequest,
    WanGenerator,
    motion_check,
)
from models.loras import EXPERT_FILES, activate_loras, load_lora_into_experts, lora_digest
from reelforge.core.checkpoints import TINY_SPEC
from reelforge.core.errors import InvalidInput

PROMPT = "a red circle moves from left to right"
SMALL = {"preset": "square-s", "frames": 5}  # 48x48, 5 frames: the profiles, cheaply


def lightx2v_lora(path, *, seed: int, rank: int = 4, inner: int = 128, ffn: int = 384):
    """A random LoRA for the tiny experts in the LightX2V / Wan2.2-Lightning key format."""
    g = torch.Generator().manual_seed(seed)
    shapes = {f"{a}.{p}": (inner, inner) for a in ("self_attn", "cross_attn") for p in "qkvo"}
    shapes |= {"ffn.0": (ffn, inner), "ffn.2": (inner, ffn)}
    tensors = {}
    for block in range(4):
        for module, (out_dim, in_dim) in shapes.items():
            key = f"diffusion_model.blocks.{block}.{module}"
            tensors[f"{key}.lora_down.weight"] = torch.randn(rank, in_dim, generator=g) * 0.1
            tensors[f"{key}.lora_up.weight"] = torch.randn(out_dim, rank, generator=g) * 0.1
            tensors[f"{key}.alpha"] = torch.tensor(float(rank))
    save_file(tensors, str(path))
    return path


def test_each_profile_changes_the_output_deterministically(tiny):
    videos = {
        speed: tiny.generate(GenerationRequest(prompt=PROMPT, seed=5, speed=speed, **SMALL))
        for speed in ("quality", "fast", "turbo")
    }
    again = tiny.generate(GenerationRequest(prompt=PROMPT, seed=5, speed="turbo", **SMALL))
    assert np.array_equal(again.frames, videos["turbo"].frames)
    assert again.metadata.cache_key == videos["turbo"].metadata.cache_key
    assert len({v.metadata.frames_sha256 for v in videos.values()}) == 3
    assert len({v.metadata.cache_key for v in videos.values()}) == 3
    for speed, v in videos.items():
        m = v.metadata
        assert (m.speed, m.steps) == (speed, TINY_SPEC.steps[speed])
        assert m.step_cache == STEP_CACHE_THRESHOLD["tiny"][speed]
        assert m.speed_lora_sha256 is None


def test_step_cache_skips_work_on_both_experts(tiny):
    """turbo's cache against the same steps without it: other frames, same key fields else."""
    cached = tiny.generate(GenerationRequest(prompt=PROMPT, seed=5, speed="turbo", **SMALL))
    plain = tiny.generate(
        GenerationRequest(prompt=PROMPT, seed=5, steps=TINY_SPEC.steps["turbo"], **SMALL)
    )
    assert cached.metadata.steps == plain.metadata.steps
    assert cached.metadata.frames_sha256 != plain.metadata.frames_sha256
    # the hooks are gone after the call: the next quality clip is the uncached one
    assert all(not getattr(tiny.pipe, e).is_cache_enabled for e in ("transformer", "transformer_2"))


@pytest.fixture(scope="module")
def distilled(tmp_path_factory):
    path = lightx2v_lora(tmp_path_factory.mktemp("lora") / "lightning.safetensors", seed=1)
    torch.set_num_threads(2)
    return WanGenerator.from_checkpoint(None, source="tiny", device="cpu", speed_lora=path), path


def test_distillation_lora_makes_turbo_the_distilled_recipe(tiny, distilled):
    gen, path = distilled
    adapters = gen.pipe.get_list_adapters()
    assert adapters == {"transformer": [SPEED_LORA_ADAPTER], "transformer_2": [SPEED_LORA_ADAPTER]}
    turbo = gen.generate(GenerationRequest(prompt=PROMPT, seed=5, speed="turbo", **SMALL))
    m = turbo.metadata
    assert (m.steps, m.guidance_scale, m.guidance_scale_2) == (DISTILLED_STEPS, 1.0, 1.0)
    assert m.step_cache is None and m.speed_lora_sha256 == lora_digest(path)
    again = gen.generate(GenerationRequest(prompt=PROMPT, seed=5, speed="turbo", **SMALL))
    assert np.array_equal(turbo.frames, again.frames)
    # The LoRA is what changed the frames: the same 4 CFG-free steps without it differ.
    bare = tiny.generate(
        GenerationRequest(prompt=PROMPT, seed=5, steps=DISTILLED_STEPS, guidance_scale=1.0, **SMALL)
    )
    assert bare.metadata.frames_sha256 != m.frames_sha256
    # ...and it is off for the other profiles: quality is the LoRA-free generator's clip.
    quality = GenerationRequest(prompt=PROMPT, seed=5, **SMALL)
    assert (
        gen.generate(quality).metadata.frames_sha256
        == tiny.generate(quality).metadata.frames_sha256
    )
    assert gen.cache_key(quality) == tiny.cache_key(quality)
    turbo_req = GenerationRequest(prompt=PROMPT, seed=5, speed="turbo", **SMALL)
    assert gen.cache_key(turbo_req) != tiny.cache_key(turbo_req)


def test_lightning_directory_layout_loads_one_lora_per_expert(distilled, tmp_path):
    gen, _ = distilled
    for i, name in enumerate(EXPERT_FILES.values()):
        lightx2v_lora(tmp_path / name, seed=10 + i)
    load_lora_into_experts(gen.pipe, tmp_path, "two-files")
    try:
        assert all("two-files" in names for names in gen.pipe.get_list_adapters().values())
        high = gen.pipe.transformer.blocks[0].attn1.to_q.lora_A["two-files"].weight
        low = gen.pipe.transformer_2.blocks[0].attn1.to_q.lora_A["two-files"].weight
        assert not torch.equal(high, low)  # each expert got its own file
        assert lora_digest(tmp_path) != lora_digest(tmp_path / EXPERT_FILES["transformer"])
    finally:
        activate_loras(gen.pipe, {})
        gen.pipe.delete_adapters("two-files")


def test_a_lora_that_does_not_fit_is_one_line_and_not_half_loaded(distilled, tmp_path):
    gen, _ = distilled
    wrong = lightx2v_lora(tmp_path / "wide.safetensors", seed=2, inner=256, ffn=768)
    with pytest.raises(InvalidInput, match=r"LoRA wide\.safetensors does not fit the model") as e:
        load_lora_into_experts(gen.pipe, wrong, "wide")
    assert "\n" not in str(e.value)
    assert all("wide" not in names for names in gen.pipe.get_list_adapters().values())
    with pytest.raises(InvalidInput, match=r"lacks high_noise_model\.safetensors"):
        load_lora_into_experts(gen.pipe, tmp_path, "dir")
    with pytest.raises(InvalidInput, match="does not exist"):
        load_lora_into_experts(gen.pipe, tmp_path / "missing.safetensors", "missing")


def test_motion_check_flags_a_clip_that_stopped_moving():
    rng = np.random.default_rng(0)
    moving = rng.integers(0, 256, (5, 8, 8, 3), dtype=np.uint8)
    still = np.repeat(moving[:1], 5, axis=0)
    collapsed = motion_check(still, moving)
    assert collapsed.mean_change == 0.0 and collapsed.reference > 0.2 and collapsed.collapsed
    same = motion_check(moving, moving)
    assert same.ratio == 1.0 and not same.collapsed
