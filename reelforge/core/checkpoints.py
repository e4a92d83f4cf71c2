"""Facts about the generator's checkpoints that need neither torch nor diffusers.

Model specs, where each source's checkpoint lives, what a complete Wan2.2 directory holds,
the checkpoint digest and the model version string. The generator (``models.generator``)
and the orchestrator's cache keys (``reelforge.core.caching``) both read them from here, so a
campaign orchestrator knows the model version without loading the model.
"""

from __future__ import annotations

import hashlib
import json
import os
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from reelforge.core.errors import InvalidInput
from reelforge.core.settings import Settings, get_settings
from reelforge.core.storage import sha256_file

Source = Literal["tiny", "wan"]

TINY_DIR = Path(__file__).resolve().parents[2] / "models" / "tiny"

# Files a diffusers-format two-expert Wan checkpoint must have (weights checked separately).
REQUIRED_FILES = (
    "model_index.json",
    "scheduler/scheduler_config.json",
    "text_encoder/config.json",
    "tokenizer",
    "transformer/config.json",
    "transformer_2/config.json",
    "vae/config.json",
)
WEIGHT_DIRS = ("text_encoder", "transformer", "transformer_2", "vae")


@dataclass(frozen=True)
class ModelSpec:
    """Defaults and presets for one model source."""

    kind: Source
    model_id: str
    presets: dict[str, tuple[int, int]]  # name -> (height, width)
    default_preset: str
    frames: int
    fps: int
    steps: dict[str, int]  # speed profile -> steps
    guidance_scale: float
    guidance_scale_2: float
    max_sequence_length: int
    max_frames: int
    max_batch: int


TINY_SPEC = ModelSpec(
    kind="tiny",
    model_id="reelforge/tiny-wan-moe",
    presets={"square": (64, 64), "square-s": (48, 48)},
    default_preset="square",
    frames=17,
    fps=8,
    steps={"quality": 16, "fast": 10, "turbo": 6},
    guidance_scale=4.0,
    guidance_scale_2=3.0,
    max_sequence_length=128,
    max_frames=33,
    max_batch=8,
)
WAN_SPEC = ModelSpec(
    kind="wan",
    model_id="Wan-AI/Wan2.2-T2V-A14B-Diffusers",
    presets={
        "720p-landscape": (720, 1280),
        "720p-portrait": (1280, 720),
        "480p-landscape": (480, 832),
        "480p-portrait": (832, 480),
    },
    default_preset="480p-landscape",
    frames=81,
    fps=16,
    steps={"quality": 40, "fast": 30, "turbo": 20},
    guidance_scale=4.0,
    guidance_scale_2=3.0,
    max_sequence_length=512,
    max_frames=161,
    max_batch=4,
)
SPECS: dict[str, ModelSpec] = {"tiny": TINY_SPEC, "wan": WAN_SPEC}


# ------------------------------------------------------------------------- size, length
def check_preset(spec: ModelSpec, preset: str | None) -> None:
    """Refuse a preset the model does not have, naming the ones it has."""
    if preset is not None and preset not in spec.presets:
        raise InvalidInput(
            f"unknown preset {preset!r} for the {spec.kind} model; "
            f"choose one of {', '.join(spec.presets)}"
        )


def frames_for_seconds(spec: ModelSpec, seconds: float | None) -> int | None:
    """The 4n+1 frame count nearest to ``seconds`` at the model's fps (None: the model's
    default), refused past the model's maximum with the longest length it can make."""
    if seconds is None:
        return None
    if seconds <= 0:
        raise InvalidInput(f"seconds must be positive, got {seconds:g}")
    frames = 4 * max(1, round(seconds * spec.fps / 4)) + 1
    if frames > spec.max_frames:
        longest = (spec.max_frames - 1) / spec.fps
        raise InvalidInput(
            f"{seconds:g} s is {frames} frames at {spec.fps} fps, past the {spec.kind} model's "
            f"maximum of {spec.max_frames}; use --seconds {longest:g} or less"
        )
    return frames


# ------------------------------------------------------------------------------ locations
def configured_checkpoint(settings: Settings, source: Source | None = None) -> Path | None:
    """The checkpoint directory settings give a source (None: no Wan directory set)."""
    source = source or settings.generator
    return TINY_DIR if source == "tiny" else settings.wan_checkpoint_dir


def sha_cache_file(settings: Settings) -> Path:
    """Where per-file checkpoint digests are kept between processes."""
    return settings.home_dir / "cache" / "checkpoint-sha256.json"


# ------------------------------------------------------------------------------- checks
def check_checkpoint(source: Source, directory: Path | None) -> Path:
    """The directory to load for ``source``, refused with a one-line ``InvalidInput`` when
    it cannot be loaded (no ``directory`` for tiny: the shipped model)."""
    if source == "wan":
        return check_checkpoint_dir(directory)
    path = Path(directory) if directory else TINY_DIR
    if not (path / "model_index.json").exists():
        raise InvalidInput(
            f"tiny model missing at {path} (model_index.json); run `reelforge model train`"
        )
    return path


def check_checkpoint_dir(directory: Path | None) -> Path:
    """Refuse a missing or incomplete diffusers Wan2.2 directory, naming the missing file."""
    if directory is None:
        raise InvalidInput(
            "no Wan checkpoint configured; set REELFORGE_WAN_CHECKPOINT_DIR to a diffusers-format "
            "Wan2.2 directory or use REELFORGE_GENERATOR=tiny"
        )
    d = Path(directory).expanduser()
    if not d.is_dir():
        raise InvalidInput(f"Wan checkpoint directory {d} does not exist")
    for rel in REQUIRED_FILES:
        if not (d / rel).exists():
            raise InvalidInput(f"incomplete Wan checkpoint {d}: missing {rel}")
    for sub in WEIGHT_DIRS:
        _check_weights(d, sub)
    tok = d / "tokenizer"
    if tok.is_dir() and not any(tok.iterdir()):
        raise InvalidInput(
            f"incomplete Wan checkpoint {d}: missing tokenizer/tokenizer_config.json"
        )
    try:
        index = json.loads((d / "model_index.json").read_text())
    except ValueError:
        raise InvalidInput(f"Wan checkpoint {d}: model_index.json is not valid JSON") from None
    if index.get("_class_name") != "WanPipeline":
        raise InvalidInput(
            f"Wan checkpoint {d}: model_index.json has _class_name "
            f"{index.get('_class_name')!r}, not 'WanPipeline'; point "
            "REELFORGE_WAN_CHECKPOINT_DIR at a Wan2.2-T2V-A14B-Diffusers directory"
        )
    if not any(index.get("transformer_2") or ()):
        raise InvalidInput(
            f"Wan checkpoint {d} names no transformer_2 in model_index.json: not a two-expert "
            "Wan2.2 checkpoint (Wan2.1 has one expert)"
        )
    if index.get("boundary_ratio") is None:
        raise InvalidInput(
            f"Wan checkpoint {d} has no boundary_ratio in model_index.json: not a two-expert "
            "Wan2.2 checkpoint"
        )
    return d


def _check_weights(d: Path, sub: str) -> None:
    """Every shard a weight index names, or at least one unsharded weights file."""
    index = [
        *sorted((d / sub).glob("*.safetensors.index.json")),
        *sorted((d / sub).glob("*.bin.index.json")),
    ]
    if index:
        try:
            shards = set(json.loads(index[0].read_text())["weight_map"].values())
        except (OSError, ValueError, KeyError):
            raise InvalidInput(
                f"incomplete Wan checkpoint {d}: unreadable {sub}/{index[0].name}"
            ) from None
        for shard in sorted(shards):
            if not (d / sub / shard).exists():
                raise InvalidInput(f"incomplete Wan checkpoint {d}: missing {sub}/{shard}")
    elif not any((d / sub).glob("*.safetensors")) and not any((d / sub).glob("*.bin")):
        weights = (
            "model.safetensors" if sub == "text_encoder" else "diffusion_pytorch_model.safetensors"
        )
        raise InvalidInput(f"incomplete Wan checkpoint {d}: missing {sub}/{weights}")


# ----------------------------------------------------------------------- digest, version
_SHA_CACHE_LOCK = threading.Lock()


def checkpoint_digest(directory: Path, sha_cache: Path | None = None) -> str:
    """sha256 over (relative path, file sha256) of every file of a checkpoint directory.

    Per-file digests are kept in ``sha_cache`` keyed by (path, size, mtime), so a 60 GB
    production checkpoint is hashed once, not on every worker start or cache-key lookup.
    """
    directory = Path(directory).resolve()
    cache: dict[str, str] = {}
    if sha_cache is not None and sha_cache.exists():
        try:
            cache = json.loads(sha_cache.read_text())
        except (OSError, ValueError):
            cache = {}
    h = hashlib.sha256()
    changed = False
    for p in sorted(x for x in directory.rglob("*") if x.is_file()):
        rel = p.relative_to(directory).as_posix()
        # the model card and its write lock are documentation, not weights
        if rel.endswith((".md", ".md.lock")) or "/." in f"/{rel}":
            continue
        st = p.stat()
        key = f"{p}|{st.st_size}|{st.st_mtime_ns}"
        digest = cache.get(key)
        if digest is None:
            digest = sha256_file(p)
            cache[key] = digest
            changed = True
        h.update(f"{rel}\0{digest}\n".encode())
    if sha_cache is not None and changed:
        with _SHA_CACHE_LOCK:
            sha_cache.parent.mkdir(parents=True, exist_ok=True)
            tmp = sha_cache.with_suffix(".tmp")
            tmp.write_text(json.dumps(cache))
            os.replace(tmp, sha_cache)
    return h.hexdigest()


def model_version_of(source: Source, digest: str) -> str:
    """``<source>-<first 16 hex of the checkpoint digest>``: recorded in lineage and keys."""
    return f"{source}-{digest[:16]}"


def model_version(settings: Settings | None = None) -> str:
    """The configured generator's model version without loading the model
    (``<source>-missing`` when its checkpoint is not there)."""
    settings = settings or get_settings()
    path = configured_checkpoint(settings)
    if path is None or not (Path(path) / "model_index.json").is_file():
        return f"{settings.generator}-missing"
    return model_version_of(
        settings.generator, checkpoint_digest(Path(path), sha_cache_file(settings))
    )
