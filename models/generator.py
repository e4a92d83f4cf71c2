"""One text-to-video generator interface over diffusers' two-expert ``WanPipeline``.

Two sources, chosen by settings (``generator: tiny|wan``):

* ``tiny``: the small model shipped in ``models/tiny`` (diffusers format, CPU);
* ``wan``:  a Wan2.2-T2V-A14B checkpoint directory in diffusers format (GPU, bf16).

Both load through ``WanPipeline.from_pretrained`` and run through the same code path.

Bad input policy: frame counts that are not 4n+1 and sizes that are not multiples of 16 are
*refused* with a one-line ``InvalidInput`` naming the nearest valid values (never silently
rounded), so that the cache key always describes exactly what was generated.
"""

from __future__ import annotations

import hashlib
import json
import os
import resource
import sys
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import diffusers.utils.logging
import numpy as np
import transformers.utils.logging
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from reelforge.errors import InvalidInput, ReelForgeError

TINY_DIR = Path(__file__).resolve().parent / "tiny"
TINY_MODEL_ID = "reelforge/tiny-wan-moe"
WAN_MODEL_ID = "Wan-AI/Wan2.2-T2V-A14B-Diffusers"

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

    kind: Literal["tiny", "wan"]
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
    presets={"square": (64, 64), "square-s": (48, 48)},
    default_preset="square",
    frames=17,
    fps=8,
    steps={"quality": 16, "fast": 10},
    guidance_scale=4.0,
    guidance_scale_2=3.0,
    max_sequence_length=128,
    max_frames=33,
    max_batch=8,
)
WAN_SPEC = ModelSpec(
    kind="wan",
    presets={
        "720p-landscape": (720, 1280),
        "720p-portrait": (1280, 720),
        "480p-landscape": (480, 832),
        "480p-portrait": (832, 480),
    },
    default_preset="480p-landscape",
    frames=81,
    fps=16,
    steps={"quality": 40, "fast": 30},
    guidance_scale=4.0,
    guidance_scale_2=3.0,
    max_sequence_length=512,
    max_frames=161,
    max_batch=4,
)
SPECS = {"tiny": TINY_SPEC, "wan": WAN_SPEC}


class GenerationRequest(BaseModel):
    """What the caller asks for. Unset fields take the model's defaults."""

    model_config = ConfigDict(extra="forbid")

    prompt: str = Field(min_length=1, max_length=2000)
    negative_prompt: str = Field(default="", max_length=2000)
    seed: int = Field(default=0, ge=0, lt=2**63)
    steps: int | None = Field(default=None, ge=1, le=200)
    speed: Literal["quality", "fast"] = "quality"
    guidance_scale: float | None = Field(default=None, ge=0.0, le=30.0)
    guidance_scale_2: float | None = Field(default=None, ge=0.0, le=30.0)
    preset: str | None = None
    height: int | None = Field(default=None, ge=16, le=2048)
    width: int | None = Field(default=None, ge=16, le=2048)
    frames: int | None = Field(default=None, ge=1, le=1001)
    fps: int | None = Field(default=None, ge=1, le=120)

    @classmethod
    def parse(cls, data: dict[str, Any]) -> GenerationRequest:
        """Validate a dict, turning pydantic errors into one-line ``InvalidInput``."""
        try:
            return cls.model_validate(data)
        except ValidationError as e:
            err = e.errors()[0]
            loc = ".".join(str(p) for p in err["loc"]) or "request"
            raise InvalidInput(f"generation request: {loc}: {err['msg']}") from None


class ResolvedRequest(BaseModel):
    """A request with every default filled in and validated against the model."""

    model_config = ConfigDict(frozen=True)

    prompt: str
    negative_prompt: str
    seed: int
    steps: int
    guidance_scale: float
    guidance_scale_2: float
    height: int
    width: int
    frames: int
    fps: int

    def batch_key(self) -> tuple:
        """Requests with equal keys can share one pipeline call."""
        return (
            self.steps,
            self.guidance_scale,
            self.guidance_scale_2,
            self.height,
            self.width,
            self.frames,
        )


class GenerationMetadata(ResolvedRequest):
    """The resolved request as it ran, and what lineage needs to know about the run."""

    model_config = ConfigDict(frozen=False)

    model_id: str
    model_version: str
    checkpoint_sha256: str
    source: Literal["tiny", "wan"]
    scheduler: str
    scheduler_config: dict[str, Any]
    boundary_ratio: float | None
    cache_key: str
    frames_sha256: str
    device: str
    dtype: str
    batch_size: int
    batch_index: int
    expert_swaps: int = Field(description="Expert switches during the batch this video was in.")
    expert_steps: dict[str, int]
    timings: dict[str, float]
    peak_memory_bytes: int
    peak_memory_kind: str
    notices: list[str] = Field(default_factory=list)


class GeneratedVideo(BaseModel):
    model_config = ConfigDict(arbitrary_types_allowed=True)

    frames: np.ndarray = Field(repr=False, description="uint8 (T, H, W, 3)")
    fps: int
    metadata: GenerationMetadata


# ---------------------------------------------------------------------------------- helpers
def resolve_request(req: GenerationRequest, spec: ModelSpec) -> ResolvedRequest:
    """Fill defaults and refuse bad sizes/frame counts with a one-line ``InvalidInput``."""
    if req.preset is not None:
        if req.preset not in spec.presets:
            raise InvalidInput(
                f"unknown preset {req.preset!r} for the {spec.kind} model; "
                f"choose one of {', '.join(spec.presets)}"
            )
        if req.height is not None or req.width is not None:
            raise InvalidInput("give either a preset or height/width, not both")
        height, width = spec.presets[req.preset]
    else:
        dh, dw = spec.presets[spec.default_preset]
        height = req.height if req.height is not None else dh
        width = req.width if req.width is not None else dw
    for name, v in (("height", height), ("width", width)):
        if v % 16:
            lo, hi = v // 16 * 16, (v // 16 + 1) * 16
            raise InvalidInput(f"{name} {v} is not a multiple of 16; use {lo or 16} or {hi}")
    frames = req.frames if req.frames is not None else spec.frames
    if frames % 4 != 1:
        lo = (frames - 1) // 4 * 4 + 1
        raise InvalidInput(
            f"frames {frames} is not of the form 4n+1; use {lo if lo >= 1 else 5} or {lo + 4}"
        )
    if frames > spec.max_frames:
        raise InvalidInput(f"frames {frames} exceeds {spec.max_frames} for the {spec.kind} model")
    g1 = req.guidance_scale if req.guidance_scale is not None else spec.guidance_scale
    g2 = (
        req.guidance_scale_2
        if req.guidance_scale_2 is not None
        else (spec.guidance_scale_2 if req.guidance_scale is None else g1)
    )
    return ResolvedRequest(
        prompt=req.prompt.strip(),
        negative_prompt=req.negative_prompt,
        seed=req.seed,
        steps=req.steps if req.steps is not None else spec.steps[req.speed],
        guidance_scale=float(g1),
        guidance_scale_2=float(g2),
        height=height,
        width=width,
        frames=frames,
        fps=req.fps if req.fps is not None else spec.fps,
    )


def cache_key(
    request: GenerationRequest | ResolvedRequest, model_version: str, spec: ModelSpec = TINY_SPEC
) -> str:
    """Generation cache key: sha256 of (model version, prompt, seed, every parameter).

    Same key => same frames on the same device. ``fps`` is included because it is part of
    the produced asset even though it does not change the pixels.
    """
    r = request if isinstance(request, ResolvedRequest) else resolve_request(request, spec)
    payload = {"model_version": model_version, **r.model_dump()}
    blob = json.dumps(payload, sort_keys=True, ensure_ascii=False, separators=(",", ":"))
    return hashlib.sha256(blob.encode()).hexdigest()


def _file_sha256(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


_SHA_LOCK = threading.Lock()


def checkpoint_sha256(directory: Path, cache_file: Path | None = None) -> str:
    """sha256 over (relative path, file sha256) of every file of a checkpoint directory.

    Per-file digests are cached in ``cache_file`` keyed by (path, size, mtime) so a 60 GB
    production checkpoint is hashed once, not on every worker start.
    """
    directory = Path(directory).resolve()
    cache: dict[str, str] = {}
    if cache_file is not None and cache_file.exists():
        try:
            cache = json.loads(cache_file.read_text())
        except (OSError, ValueError):
            cache = {}
    h = hashlib.sha256()
    changed = False
    for p in sorted(x for x in directory.rglob("*") if x.is_file()):
        rel = p.relative_to(directory).as_posix()
        if rel.endswith(".md") or "/." in f"/{rel}":
            continue
        st = p.stat()
        key = f"{p}|{st.st_size}|{st.st_mtime_ns}"
        digest = cache.get(key)
        if digest is None:
            digest = _file_sha256(p)
            cache[key] = digest
            changed = True
        h.update(f"{rel}\0{digest}\n".encode())
    if cache_file is not None and changed:
        with _SHA_LOCK:
            cache_file.parent.mkdir(parents=True, exist_ok=True)
            tmp = cache_file.with_suffix(".tmp")
            tmp.write_text(json.dumps(cache))
            os.replace(tmp, cache_file)
    return h.hexdigest()


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
            raise InvalidInput(
                f"incomplete Wan checkpoint {d}: missing {sub}/diffusion_pytorch_model.safetensors"
                if sub != "text_encoder"
                else f"incomplete Wan checkpoint {d}: missing {sub}/model.safetensors"
            )
    tok = d / "tokenizer"
    if tok.is_dir() and not any(tok.iterdir()):
        raise InvalidInput(
            f"incomplete Wan checkpoint {d}: missing tokenizer/tokenizer_config.json"
        )
    try:
        index = json.loads((d / "model_index.json").read_text())
    except ValueError:
        raise InvalidInput(f"Wan checkpoint {d}: model_index.json is not valid JSON") from None
    if index.get("boundary_ratio") is None:
        raise InvalidInput(
            f"Wan checkpoint {d} has no boundary_ratio in model_index.json: not a two-expert "
            "Wan2.2 checkpoint"
        )
    return d


def resolve_device(device: str) -> str:
    import torch

    if device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise InvalidInput(f"device {device!r} requested but CUDA is not available; use cpu")
    if device != "cpu" and not device.startswith("cuda"):
        raise InvalidInput(f"unknown device {device!r}; use auto, cpu, cuda or cuda:N")
    return device


def _peak_rss_bytes() -> int:
    r = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return int(r if sys.platform == "darwin" else r * 1024)


# ---------------------------------------------------------------------------------- engine
@dataclass
class _RunStats:
    experts: list[str] = field(default_factory=list)
    step_times: list[float] = field(default_factory=list)
    step_experts: list[str] = field(default_factory=list)


@dataclass
class GpuOptions:
    """Memory options of the production (GPU) path."""

    group_offload: bool = False  # diffusers enable_group_offload (block level, with streams)
    fp8_layerwise: bool = False  # diffusers enable_layerwise_casting (fp8 storage, bf16 compute)
    vae_tiling: bool = True
    keep_both_experts: bool | None = None  # None: keep both on the GPU only if they fit
    prefetch: bool = True  # overlap the idle expert's upload with compute (CUDA streams)


OOM_HINT = (
    "CUDA out of memory during generation; lower the resolution/frames/batch or enable "
    "REELFORGE_GEN_GROUP_OFFLOAD=1 (group offload) or REELFORGE_GEN_FP8=1 (FP8 layerwise "
    "casting); the worker is still running"
)


class WanGenerator:
    """A loaded two-expert WanPipeline plus everything needed to serve requests."""

    def __init__(
        self,
        source: Literal["tiny", "wan"] = "tiny",
        checkpoint_dir: Path | None = None,
        device: str = "auto",
        gpu: GpuOptions | None = None,
        sha_cache: Path | None = None,
    ) -> None:
        import torch
        from diffusers import WanPipeline

        t0 = time.perf_counter()
        self.spec = SPECS[source]
        self.source = source
        self.device = resolve_device(device)
        self.gpu = gpu or GpuOptions()
        if source == "tiny":
            path = Path(checkpoint_dir) if checkpoint_dir else TINY_DIR
            if not (path / "model_index.json").exists():
                raise InvalidInput(
                    f"tiny model missing at {path} (model_index.json); run `reelforge model train`"
                )
            self.model_id = TINY_MODEL_ID
            dtype = torch.float32
        else:
            path = check_checkpoint_dir(checkpoint_dir)
            self.model_id = WAN_MODEL_ID
            dtype = torch.bfloat16 if self.device.startswith("cuda") else torch.float32
        self.path = path
        self.dtype = dtype
        self.checkpoint_sha256 = checkpoint_sha256(path, sha_cache)
        self.model_version = f"{source}-{self.checkpoint_sha256[:16]}"
        try:
            # Loading bars belong to interactive notebooks, not to CLI output and worker logs.
            diffusers.utils.logging.disable_progress_bar()
            transformers.utils.logging.disable_progress_bar()
            self.pipe = WanPipeline.from_pretrained(str(path), dtype=dtype)
        except (OSError, ValueError) as e:
            first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
            raise InvalidInput(f"cannot load checkpoint {path}: {first}") from None
        self.pipe.set_progress_bar_config(disable=True)
        if self.pipe.transformer_2 is None or self.pipe.config.boundary_ratio is None:
            raise InvalidInput(
                f"checkpoint {path} is not a two-expert (transformer_2) Wan2.2 model"
            )
        self._lock = threading.Lock()
        self._stats: _RunStats | None = None
        self._last_expert: str | None = None
        for name in ("transformer", "transformer_2"):
            getattr(self.pipe, name).register_forward_pre_hook(self._hook(name))
        self.placement = None
        if self.device.startswith("cuda"):
            from models.wan_gpu import place_on_gpu

            self.placement = place_on_gpu(self.pipe, self.device, self.gpu)
        else:
            self.pipe.to(self.device)
        self.load_seconds = time.perf_counter() - t0

    def _hook(self, name: str):
        def pre_hook(_module, _args):
            st = self._stats
            if st is not None:
                st.experts.append(name)

        return pre_hook

    def resolve(self, req: GenerationRequest) -> ResolvedRequest:
        return resolve_request(req, self.spec)

    def cache_key(self, req: GenerationRequest | ResolvedRequest) -> str:
        return cache_key(req, self.model_version, self.spec)

    def generate(self, req: GenerationRequest) -> GeneratedVideo:
        return self.generate_batch([req])[0]

    def generate_batch(
        self, reqs: Sequence[GenerationRequest | ResolvedRequest]
    ) -> list[GeneratedVideo]:
        """One pipeline call for compatible requests: high-noise phase for all, one swap."""
        import torch

        resolved = [r if isinstance(r, ResolvedRequest) else self.resolve(r) for r in reqs]
        if not resolved:
            return []
        keys = {r.batch_key() for r in resolved}
        if len(keys) != 1:
            raise InvalidInput(
                "generate_batch needs compatible requests (same size, frames, steps, guidance)"
            )
        r0 = resolved[0]
        with self._lock:
            stats = _RunStats()
            self._stats = stats
            t_last = [time.perf_counter()]

            def on_step(pipe, i, t, kw):
                now = time.perf_counter()
                stats.step_times.append(now - t_last[0])
                stats.step_experts.append(stats.experts[-1] if stats.experts else "?")
                t_last[0] = now
                if self.placement is not None:
                    self.placement.on_step_end(pipe, i)
                return {}

            if self.device.startswith("cuda"):
                torch.cuda.reset_peak_memory_stats(self.device)
            gens = [torch.Generator(device="cpu").manual_seed(r.seed) for r in resolved]
            t0 = time.perf_counter()
            t_last[0] = t0
            try:
                latents = self.pipe(
                    prompt=[r.prompt for r in resolved],
                    negative_prompt=[r.negative_prompt for r in resolved],
                    height=r0.height,
                    width=r0.width,
                    num_frames=r0.frames,
                    num_inference_steps=r0.steps,
                    guidance_scale=r0.guidance_scale,
                    guidance_scale_2=r0.guidance_scale_2,
                    generator=gens,
                    output_type="latent",
                    max_sequence_length=self.spec.max_sequence_length,
                    callback_on_step_end=on_step,
                ).frames
                t1 = time.perf_counter()
                video = self._decode(latents)
            except torch.OutOfMemoryError:
                self._recover_oom()
                raise ReelForgeError(OOM_HINT) from None
            finally:
                self._stats = None
            t2 = time.perf_counter()
        frames = (np.clip(video, 0.0, 1.0) * 255.0 + 0.5).astype(np.uint8)
        swaps = sum(
            1 for a, b in zip(stats.step_experts, stats.step_experts[1:], strict=False) if a != b
        )
        denoise = t1 - t0
        hi = sum(
            t
            for t, e in zip(stats.step_times, stats.step_experts, strict=False)
            if e == "transformer"
        )
        timings = {
            "denoise_s": round(denoise, 4),
            "high_noise_s": round(hi, 4),
            "low_noise_s": round(denoise - hi, 4),
            "decode_s": round(t2 - t1, 4),
            "batch_total_s": round(t2 - t0, 4),
            "per_video_s": round((t2 - t0) / len(resolved), 4),
        }
        if self.device.startswith("cuda"):
            peak, kind = int(torch.cuda.max_memory_allocated(self.device)), "cuda_max_allocated"
        else:
            peak, kind = _peak_rss_bytes(), "process_max_rss"
        steps_per_expert = {
            "transformer": stats.step_experts.count("transformer"),
            "transformer_2": stats.step_experts.count("transformer_2"),
        }
        sched = self.pipe.scheduler
        sched_cfg = {k: v for k, v in dict(sched.config).items() if not k.startswith("_")}
        out = []
        for i, r in enumerate(resolved):
            f = np.ascontiguousarray(frames[i])
            meta = GenerationMetadata(
                model_id=self.model_id,
                model_version=self.model_version,
                checkpoint_sha256=self.checkpoint_sha256,
                source=self.source,
                scheduler=type(sched).__name__,
                scheduler_config=json.loads(json.dumps(sched_cfg, default=str)),
                boundary_ratio=self.pipe.config.boundary_ratio,
                **r.model_dump(),
                cache_key=self.cache_key(r),
                frames_sha256=hashlib.sha256(f.tobytes()).hexdigest(),
                device=self.device,
                dtype=str(self.dtype).removeprefix("torch."),
                batch_size=len(resolved),
                batch_index=i,
                expert_swaps=swaps,
                expert_steps=steps_per_expert,
                timings=timings,
                peak_memory_bytes=peak,
                peak_memory_kind=kind,
            )
            out.append(GeneratedVideo(frames=f, fps=r.fps, metadata=meta))
        return out

    def _decode(self, latents):
        """Same maths as the tail of ``WanPipeline.__call__``; returns float (B, T, H, W, 3)."""
        import torch

        vae = self.pipe.vae
        with torch.no_grad():
            lat = latents.to(next(vae.parameters()).device, dtype=vae.dtype)
            mean = torch.tensor(vae.config.latents_mean).view(1, vae.config.z_dim, 1, 1, 1)
            std = torch.tensor(vae.config.latents_std).view(1, vae.config.z_dim, 1, 1, 1)
            lat = lat * std.to(lat) + mean.to(lat)
            video = vae.decode(lat, return_dict=False)[0]
            video = self.pipe.video_processor.postprocess_video(video, output_type="np")
        return np.asarray(video, dtype=np.float32)

    def _recover_oom(self) -> None:
        import gc

        import torch

        gc.collect()
        if self.device.startswith("cuda"):
            torch.cuda.empty_cache()
            if self.placement is not None:
                self.placement.reset_after_oom()


def default_generator(settings=None) -> WanGenerator:
    from reelforge.settings import get_settings

    s = settings or get_settings()
    sha_cache = Path(s.home).expanduser() / "cache" / "checkpoint-sha256.json"
    gpu = GpuOptions(group_offload=s.gen_group_offload, fp8_layerwise=s.gen_fp8)
    return WanGenerator(
        source=s.generator,
        checkpoint_dir=s.wan_checkpoint_dir if s.generator == "wan" else None,
        device=s.device,
        gpu=gpu,
        sha_cache=sha_cache,
    )
