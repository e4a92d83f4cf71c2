"""The generator interface on the shipped tiny model (CPU): metadata, determinism, batching."""

from __future__ import annotations

import numpy as np
import pytest

from models.generator import GenerationRequest, cache_key, resolve_request
from reelforge.core.checkpoints import TINY_DIR, TINY_SPEC, checkpoint_digest, model_version
from reelforge.core.errors import InvalidInput

PROMPT = "a red circle moves from left to right"


def test_frames_and_metadata(tiny_service, tiny):
    v = tiny.generate(GenerationRequest(prompt=PROMPT, seed=3, steps=8))
    assert v.frames.dtype == np.uint8 and v.frames.shape == (17, 64, 64, 3)
    m = v.metadata
    assert m.model_id == "reelforge/tiny-wan-moe"
    assert m.checkpoint_sha256 == checkpoint_digest(TINY_DIR)
    assert m.model_version.startswith("tiny-") and m.model_version[5:] == m.checkpoint_sha256[:16]
    assert m.model_version == model_version(tiny_service.settings)  # known without loading
    assert m.boundary_ratio == 0.875
    assert m.scheduler == "UniPCMultistepScheduler" and m.scheduler_config["flow_shift"] > 0
    assert (m.seed, m.steps, m.frames, m.fps, m.height, m.width) == (3, 8, 17, 8, 64, 64)
    assert (m.guidance_scale, m.guidance_scale_2) == (4.0, 3.0)
    assert m.expert_steps["transformer"] > 0 and m.expert_steps["transformer_2"] > 0
    assert sum(m.expert_steps.values()) == 8
    assert m.expert_swaps == 1
    assert m.device == "cpu" and m.peak_memory_bytes > 0
    assert m.timings["denoise_s"] > 0 and m.timings["decode_s"] > 0
    assert m.cache_key == tiny.cache_key(GenerationRequest(prompt=PROMPT, seed=3, steps=8))
    # frames are not a flat colour: something was drawn
    assert v.frames.std() > 5


def test_same_request_same_frames_and_key(tiny):
    req = GenerationRequest(prompt=PROMPT, seed=11, steps=6)
    a, b = tiny.generate(req), tiny.generate(req)
    assert np.array_equal(a.frames, b.frames)
    assert a.metadata.frames_sha256 == b.metadata.frames_sha256
    assert a.metadata.cache_key == b.metadata.cache_key
    c = tiny.generate(GenerationRequest(prompt=PROMPT, seed=12, steps=6))
    assert not np.array_equal(a.frames, c.frames)
    assert c.metadata.cache_key != a.metadata.cache_key


def test_cache_key_covers_defaults_params_and_version():
    implicit = GenerationRequest(prompt=PROMPT, seed=1)
    explicit = GenerationRequest(
        prompt=PROMPT,
        seed=1,
        steps=TINY_SPEC.steps["quality"],
        guidance_scale=4.0,
        guidance_scale_2=3.0,
        height=64,
        width=64,
        frames=17,
        fps=8,
    )
    assert cache_key(implicit, "v1") == cache_key(explicit, "v1")
    assert cache_key(implicit, "v1") != cache_key(implicit, "v2")
    for change in (
        {"seed": 2},
        {"steps": 9},
        {"guidance_scale": 5.0},
        {"frames": 21},
        {"negative_prompt": "blurry"},
        {"prompt": PROMPT + "!"},
        {"speed": "fast"},
    ):
        other = implicit.model_copy(update=change)
        assert cache_key(other, "v1") != cache_key(implicit, "v1"), change


def test_batch_runs_one_expert_swap_and_matches_single(tiny_service, tiny):
    prompts = [
        PROMPT,
        "一个蓝色的正方形从下向上移动",
        "緑の三角形が右から左へ移動する",
        "보라색 원이 위에서 아래로 이동한다",
    ]
    reqs = [GenerationRequest(prompt=p, seed=i, steps=6) for i, p in enumerate(prompts)]
    batched = tiny_service.generate_many(reqs, use_cache=False)
    assert [v.metadata.batch_size for v in batched] == [4] * 4
    assert [v.metadata.batch_index for v in batched] == [0, 1, 2, 3]
    assert all(v.metadata.expert_swaps == 1 for v in batched)  # one swap for the batch
    sequential = tiny_service.generate_many(reqs, batch=False, use_cache=False)
    assert sum(v.metadata.expert_swaps for v in sequential) == 4  # one per video
    for b, s in zip(batched, sequential, strict=True):
        assert b.metadata.cache_key == s.metadata.cache_key
        # batched maths may differ in the last float bits: at most a level or two of uint8
        assert np.abs(b.frames.astype(int) - s.frames.astype(int)).max() <= 3


def test_incompatible_requests_split_into_batches(tiny_service):
    reqs = [
        GenerationRequest(prompt=PROMPT, seed=1, steps=4),
        GenerationRequest(prompt=PROMPT, seed=1, steps=5),
        GenerationRequest(prompt=PROMPT, seed=2, steps=4),
    ]
    out = tiny_service.generate_many(reqs, use_cache=False)
    assert [v.metadata.steps for v in out] == [4, 5, 4]
    assert [v.metadata.batch_size for v in out] == [2, 1, 2]


def test_service_is_resident_and_caches_results(tiny):
    from models.service import GeneratorService
    from reelforge.core.settings import Settings

    svc = GeneratorService(Settings(generator="tiny", device="cpu"), result_cache=8)
    req = GenerationRequest(prompt=PROMPT, seed=5, steps=4)
    a = svc.generate(req)
    b = svc.generate(req)
    svc.generate(GenerationRequest(prompt=PROMPT, seed=6, steps=4))
    assert svc.loads == 1
    assert svc.cache_hits == 1
    assert b is a
    dup = svc.generate_many([GenerationRequest(prompt="x", seed=9, steps=4)] * 3)
    assert dup[0] is dup[1] is dup[2]


def test_the_gpu_slot_is_held_only_while_something_is_generated(tiny):
    """A take the batch before already made needs no GPU: the slot is not taken for it."""
    from contextlib import contextmanager

    from models.service import GeneratorService
    from reelforge.core.settings import Settings

    held = []

    @contextmanager
    def slot():
        held.append("taken")
        yield

    svc = GeneratorService(Settings(generator="tiny", device="cpu"), result_cache=8)
    takes = [GenerationRequest(prompt=PROMPT, seed=s, steps=4) for s in (11, 12)]
    svc.generate_many(takes, slot=slot)  # the batch
    assert held == ["taken"]
    for take in takes:  # each take recorded on its own afterwards
        svc.generate_many([take], slot=slot)
    assert held == ["taken"]
    svc.generate_many([*takes, GenerationRequest(prompt=PROMPT, seed=13, steps=4)], slot=slot)
    assert held == ["taken", "taken"]  # one new take: the slot again


def test_dynamic_steps_and_presets(tiny):
    fast = resolve_request(GenerationRequest(prompt=PROMPT, speed="fast"), TINY_SPEC)
    quality = resolve_request(GenerationRequest(prompt=PROMPT), TINY_SPEC)
    assert fast.steps < quality.steps
    small = tiny.generate(GenerationRequest(prompt=PROMPT, preset="square-s", steps=4, frames=9))
    assert small.frames.shape == (9, 48, 48, 3)


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"frames": 18}, "frames 18 is not of the form 4n+1; use 17 or 21"),
        ({"height": 70}, "height 70 is not a multiple of 16; use 64 or 80"),
        ({"width": 100}, "width 100 is not a multiple of 16; use 96 or 112"),
        ({"preset": "8k"}, "unknown preset '8k'"),
        ({"preset": "square", "height": 64}, "either a preset or height/width"),
        ({"frames": 101}, "exceeds"),
    ],
)
def test_bad_sizes_and_frames_are_refused(fields, message):
    with pytest.raises(InvalidInput) as e:
        resolve_request(GenerationRequest(prompt=PROMPT, **fields), TINY_SPEC)
    assert message in str(e.value)
    assert "\n" not in str(e.value)


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"prompt": ""}, "prompt"),
        ({"prompt": "x", "seed": -1}, "seed"),
        ({"prompt": "x", "colour": "red"}, "colour"),
        ({"prompt": "x", "steps": 0}, "steps"),
    ],
)
def test_bad_request_fields_are_invalid_input(data, message):
    with pytest.raises(InvalidInput, match=message):
        GenerationRequest.parse(data)
