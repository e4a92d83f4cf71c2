"""Checkpoint facts without torch: the digest rule, its per-file cache, the model version."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from reelforge.core.checkpoints import (
    TINY_DIR,
    check_checkpoint,
    checkpoint_digest,
    configured_checkpoint,
    model_version,
    sha_cache_file,
)
from reelforge.core.errors import InvalidInput
from reelforge.core.settings import Settings


def _checkpoint(root: Path) -> Path:
    (root / "vae").mkdir(parents=True)
    (root / "model_index.json").write_text("{}")
    (root / "vae" / "w.safetensors").write_bytes(b"weights")
    return root


def test_digest_covers_weights_but_not_docs_or_hidden_files(tmp_path):
    model = _checkpoint(tmp_path / "ckpt")
    first = checkpoint_digest(model)
    (model / "README.md").write_text("ignored")
    (model / ".cache").mkdir()
    (model / ".cache" / "lock").write_text("ignored")
    assert checkpoint_digest(model) == first
    (model / "vae" / "w.safetensors").write_bytes(b"other weights")
    assert checkpoint_digest(model) != first


def test_per_file_digests_are_cached_by_path_size_and_mtime(tmp_path):
    model = _checkpoint(tmp_path / "ckpt")
    cache = tmp_path / "cache" / "sha.json"
    digest = checkpoint_digest(model, cache)
    assert digest == checkpoint_digest(model)
    assert len(json.loads(cache.read_text())) == 2
    weights = model / "vae" / "w.safetensors"
    stat = weights.stat()
    weights.write_bytes(b"WEIGHTS")  # same size, same mtime: the cached digest is used
    os.utime(weights, ns=(stat.st_atime_ns, stat.st_mtime_ns))
    assert checkpoint_digest(model, cache) == digest
    assert checkpoint_digest(model) != digest


def test_model_version_of_the_configured_checkpoint(tmp_path):
    wan = Settings(home=tmp_path / "home", generator="wan", wan_checkpoint_dir=tmp_path / "ckpt")
    assert model_version(wan) == "wan-missing"
    _checkpoint(tmp_path / "ckpt")
    assert model_version(wan) == f"wan-{checkpoint_digest(tmp_path / 'ckpt')[:16]}"
    assert sha_cache_file(wan).is_file()  # the next process reads the per-file digests
    assert model_version(Settings(home=tmp_path / "home", generator="wan")) == "wan-missing"
    tiny = Settings(home=tmp_path / "home", generator="tiny")
    assert configured_checkpoint(tiny) == TINY_DIR
    assert configured_checkpoint(tiny, "wan") is None


def test_tiny_checkpoint_must_have_a_model_index(tmp_path):
    with pytest.raises(InvalidInput) as e:
        check_checkpoint("tiny", tmp_path)
    assert str(e.value) == (
        f"tiny model missing at {tmp_path} (model_index.json); run `reelforge model train`"
    )
    assert check_checkpoint("tiny", _checkpoint(tmp_path / "ckpt")) == tmp_path / "ckpt"


def test_importing_checkpoints_loads_neither_torch_nor_diffusers():
    code = (
        "import sys, reelforge.core.checkpoints, reelforge.core.caching; "
        "print(sorted({'torch', 'diffusers'} & set(sys.modules)))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_seconds_become_the_nearest_4n_plus_1_frames_up_to_the_maximum():
    from reelforge.core.checkpoints import TINY_SPEC, WAN_SPEC, frames_for_seconds

    assert frames_for_seconds(WAN_SPEC, None) is None  # the model's default
    assert frames_for_seconds(WAN_SPEC, 5) == 81  # Wan's own 5 s at 16 fps
    assert frames_for_seconds(WAN_SPEC, 10) == 161
    assert frames_for_seconds(WAN_SPEC, 0.1) == 5  # the shortest clip
    assert frames_for_seconds(TINY_SPEC, 2) == 17 and frames_for_seconds(TINY_SPEC, 3) == 25
    with pytest.raises(InvalidInput) as e:
        frames_for_seconds(TINY_SPEC, 5)
    assert str(e.value) == (
        "5 s is 41 frames at 8 fps, past the tiny model's maximum of 33; use --seconds 4 or less"
    )


def test_presets_are_the_models_own():
    from reelforge.core.checkpoints import TINY_SPEC, WAN_SPEC, check_preset

    check_preset(WAN_SPEC, "720p-portrait")
    check_preset(TINY_SPEC, None)
    with pytest.raises(InvalidInput, match="choose one of square, square-s"):
        check_preset(TINY_SPEC, "480p-landscape")
