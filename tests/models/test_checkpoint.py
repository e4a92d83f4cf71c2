"""The production (wan) source: checkpoint directory checks and loading, on CPU."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from models.generator import GenerationRequest, GpuOptions, WanGenerator
from reelforge.core.checkpoints import check_checkpoint_dir
from reelforge.core.errors import InvalidInput
from tests.wan_checkpoint import save_tiny_wan


@pytest.fixture(scope="module")
def wan_dir(tmp_path_factory) -> Path:
    return save_tiny_wan(tmp_path_factory.mktemp("wan") / "ckpt")


def test_missing_dir_and_unset(tmp_path):
    with pytest.raises(InvalidInput, match="REELFORGE_WAN_CHECKPOINT_DIR"):
        check_checkpoint_dir(None)
    with pytest.raises(InvalidInput, match="does not exist"):
        check_checkpoint_dir(tmp_path / "nope")


def test_fake_incomplete_dir_names_missing_file(tmp_path):
    (tmp_path / "model_index.json").write_text(json.dumps({"boundary_ratio": 0.875}))
    with pytest.raises(InvalidInput) as e:
        WanGenerator.from_checkpoint(tmp_path, source="wan", device="cpu")
    msg = str(e.value)
    assert msg == f"incomplete Wan checkpoint {tmp_path}: missing scheduler/scheduler_config.json"


def test_complete_tiny_wan_dir_loads_and_generates_on_cpu(wan_dir):
    assert check_checkpoint_dir(wan_dir) == wan_dir
    g = WanGenerator.from_checkpoint(wan_dir, source="wan", device="cpu")
    v = g.generate(GenerationRequest(prompt="a red circle", height=32, width=32, frames=5, steps=2))
    assert v.frames.shape == (5, 32, 32, 3) and v.frames.dtype == np.uint8
    assert v.metadata.source == "wan" and v.metadata.boundary_ratio == 0.875
    assert v.metadata.scheduler_config["flow_shift"] == 12.0
    assert v.metadata.model_version.startswith("wan-")
    # production presets/defaults apply to the wan source
    with pytest.raises(InvalidInput, match="720p-landscape"):
        g.resolve(GenerationRequest(prompt="x", preset="square"))
    assert g.resolve(GenerationRequest(prompt="x", preset="720p-portrait")).height == 1280


@pytest.mark.parametrize(
    "missing",
    [
        "transformer_2/diffusion_pytorch_model.safetensors",
        "vae/config.json",
        "text_encoder/model.safetensors",
        "model_index.json",
    ],
)
def test_incomplete_copy_names_the_missing_file(wan_dir, tmp_path, missing):
    import shutil

    d = tmp_path / "partial"
    shutil.copytree(wan_dir, d)
    (d / missing).unlink()
    with pytest.raises(InvalidInput) as e:
        WanGenerator.from_checkpoint(d, source="wan", device="cpu")
    assert str(e.value).endswith(f"missing {missing}")
    assert "\n" not in str(e.value)


def test_sharded_checkpoint_with_missing_shard(wan_dir, tmp_path):
    import shutil

    d = tmp_path / "sharded"
    shutil.copytree(wan_dir, d)
    index = {
        "metadata": {},
        "weight_map": {
            "a": "diffusion_pytorch_model-00001-of-00002.safetensors",
            "b": "diffusion_pytorch_model-00002-of-00002.safetensors",
        },
    }
    (d / "transformer" / "diffusion_pytorch_model.safetensors.index.json").write_text(
        json.dumps(index)
    )
    with pytest.raises(
        InvalidInput, match="missing transformer/diffusion_pytorch_model-00001-of-00002"
    ):
        check_checkpoint_dir(d)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
@pytest.mark.parametrize("keep_both", [True, False])
def test_wan_source_on_cuda_swaps_experts(wan_dir, keep_both):
    g = WanGenerator.from_checkpoint(
        wan_dir, source="wan", device="cuda", gpu=GpuOptions(keep_both_experts=keep_both)
    )
    assert g.placement.mode == ("resident" if keep_both else "swap")
    reqs = [
        GenerationRequest(prompt=p, height=32, width=32, frames=5, steps=4, seed=1)
        for p in ("a", "b")
    ]
    out = g.generate_batch(reqs)
    assert out[0].metadata.expert_swaps == 1 and out[0].metadata.device == "cuda"
    assert out[0].metadata.peak_memory_kind == "cuda_max_allocated"
    again = g.generate_batch(reqs)
    assert np.array_equal(out[0].frames, again[0].frames)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_tiny_on_cuda_matches_prompt():
    from models.detector import detect

    g = WanGenerator.from_checkpoint(None, source="tiny", device="cuda")
    v = g.generate(GenerationRequest(prompt="a red circle moves from left to right", seed=1))
    d = detect(v.frames)
    assert (d.colour, d.direction) == ("red", "right")
