"""One text-to-video generator interface over diffusers' two-expert ``WanPipeline``.

Two sources, chosen by settings (``generator: tiny|wan``):

* ``tiny``: the small model shipped in ``models/tiny`` (diffusers format, CPU);
* ``wan``:  a Wan2.2-T2V-A14B checkpoint directory in diffusers format (GPU, bf16).

Both load through ``WanPipeline.from_pretrained`` and run through the same code path.
``WanGenerator`` is built the way diffusers builds a pipeline: from its components (a loaded
pipeline, the model spec, the device); ``WanGenerator.from_checkpoint`` loads them, and
``GeneratorConfig.from_settings`` is the one place settings decide what gets loaded.
Checkpoint facts (specs, paths, checks, digest, model version) live in the torch-free
``reelforge.core.checkpoints``.

Bad input policy: frame counts that are not 4n+1 and sizes that are not multiples of 16 are
*refused* with a one-line ``InvalidInput`` naming the nearest valid values (never silently
rounded), so that the cache key always describes exactly what was generated.
"""

from __future__ import annotations

import gc
import hashlib
import json
import resource
import sys
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import diffusers.utils.logging
import numpy as np
import torch
import transformers.utils.logging
from diffusers.hooks import FirstBlockCacheConfig
from diffusers.utils.torch_utils import get_module_execution_device
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from models.loras import activate_loras, load_lora_into_experts, lora_digest
from models.wan_gpu import GpuOptions, GpuPlacement, place_on_gpu
from reelforge.core.checkpoints import (
    SPECS,
    TINY_DIR,
    TINY_SPEC,
    ModelSpec,
    Source,
    check_checkpoint,
    check_preset,
    checkpoint_digest,
    configured_checkpoint,
    model_version_of,
    sha_cache_file,
)
from reelforge.core.errors import InvalidInput, ReelForgeError
from reelforge.core.jobs import Speed
from reelforge.core.settings import Settings
from reelforge.core.storage import sha256_file

__all__ = [
    "OOM_HINT",
    "SPECS",
    "TINY_DIR",
    "TINY_SPEC",
    "ExpertTrace",
    "GeneratedVideo",
    "GenerationMetadata",
    "GenerationRequest",
    "GeneratorConfig",
    "GpuOptions",
    "ModelSpec",
    "MotionCheck",
    "ResolvedRequest",
    "SpeedProfile",
    "WanGenerator",
    "cache_key",
    "motion_check",
    "resolve_device",
    "resolve_request",
]

EXPERTS = ("transformer", "transformer_2")  # high-noise expert, low-noise expert

# Speed profiles. Steps per profile are the model's (ModelSpec.steps); on top of fewer steps,
# fast and turbo skip the tail blocks of an expert's forward when its first block's residual
# changed by less than this fraction since the last step (diffusers' FirstBlockCache, on both
# experts). Per model: the tiny model's few steps change the residual by 7-40% a step (so
# 0.05 would never skip); Wan's 40 steps by a few percent (0.05-0.1 are the values reported
# for 1.5-2x on Wan). A configured step-distillation LoRA (settings.speed_lora) makes turbo
# the distilled recipe instead: DISTILLED_STEPS steps, no CFG, no cache.
STEP_CACHE_THRESHOLD: dict[Source, dict[Speed, float | None]] = {
    "tiny": {"quality": None, "fast": 0.1, "turbo": 0.25},
    "wan": {"quality": None, "fast": 0.05, "turbo": 0.1},
}
DISTILLED_STEPS = 4
SPEED_LORA_ADAPTER = "speed-distill"
# A fast clip whose mean frame-to-frame change is below this fraction of the quality clip's
# (same prompt and seed) has collapsed motion: the known failure of step distillation.
MOTION_COLLAPSE_RATIO = 0.5


@dataclass(frozen=True)
class SpeedProfile:
    """How one speed profile runs on one model."""

    steps: int
    step_cache: float | None  # FirstBlockCache threshold on both experts; None: no cache
    speed_lora_sha256: str | None = None  # the distillation LoRA active in both experts
    guidance_scale: float | None = None  # overrides the model's CFG scale (distilled: 1.0)

    @classmethod
    def of(cls, spec: ModelSpec, speed: Speed, speed_lora_sha256: str | None = None):
        if speed == "turbo" and speed_lora_sha256 is not None:
            return cls(DISTILLED_STEPS, None, speed_lora_sha256, guidance_scale=1.0)
        return cls(spec.steps[speed], STEP_CACHE_THRESHOLD[spec.kind][speed])


class GenerationRequest(BaseModel):
    """What the caller asks for. Unset fields take the model's defaults."""

    model_config = ConfigDict(extra="forbid")

    prompt: str = Field(min_length=1, max_length=2000)
    negative_prompt: str = Field(default="", max_length=2000)
    seed: int = Field(default=0, ge=0, lt=2**63)
    steps: int | None = Field(default=None, ge=1, le=200)
    speed: Speed = "quality"
    guidance_scale: float | None = Field(default=None, ge=0.0, le=30.0)
    guidance_scale_2: float | None = Field(default=None, ge=0.0, le=30.0)
    preset: str | None = None
    height: int | None = Field(default=None, ge=16, le=2048)
    width: int | None = Field(default=None, ge=16, le=2048)
    frames: int | None = Field(default=None, ge=1, le=1001)
    fps: int | None = Field(default=None, ge=1, le=120)
    style_lora: Path | None = Field(default=None, description="A brand style's LoRA file.")
    style_strength: float = Field(default=1.0, ge=0.0, le=2.0)

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
    speed: Speed = "quality"
    step_cache: float | None = None
    speed_lora_sha256: str | None = None
    style_sha256: str | None = None  # the brand style's LoRA in both experts
    style_strength: float | None = None

    def batch_key(self) -> tuple:
        """Requests with equal keys can share one pipeline call."""
        return (
            self.style_sha256,
            self.style_strength,
            self.speed,
            self.step_cache,
            self.speed_lora_sha256,
            self.steps,
            self.guidance_scale,
            self.guidance_scale_2,
            self.height,
            self.width,
            self.frames,
        )


class MotionCheck(BaseModel):
    """A fast clip's motion against the quality clip of the same prompt and seed."""

    mean_change: float = Field(description="Mean absolute frame-to-frame change, 0..1.")
    reference: float = Field(description="The same for the quality profile's clip.")
    ratio: float
    collapsed: bool = Field(description=f"ratio < {MOTION_COLLAPSE_RATIO}")


class GenerationMetadata(ResolvedRequest):
    """The resolved request as it ran, and what lineage needs to know about the run."""

    model_config = ConfigDict(frozen=False)

    model_id: str
    model_version: str
    checkpoint_sha256: str
    source: Source
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
    motion: MotionCheck | None = None


class GeneratedVideo(BaseModel):
    model_config = ConfigDict(arbitrary_types_allowed=True)

    frames: np.ndarray = Field(repr=False, description="uint8 (T, H, W, 3)")
    fps: int
    metadata: GenerationMetadata


# ---------------------------------------------------------------------------------- helpers
def resolve_request(
    req: GenerationRequest, spec: ModelSpec, speed_lora_sha256: str | None = None
) -> ResolvedRequest:
    """Fill defaults and refuse bad sizes/frame counts with a one-line ``InvalidInput``.
    ``speed_lora_sha256``: the loaded step-distillation LoRA, if any."""
    if req.preset is not None:
        check_preset(spec, req.preset)
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
    profile = SpeedProfile.of(spec, req.speed, speed_lora_sha256)
    g1 = req.guidance_scale if req.guidance_scale is not None else spec.guidance_scale
    g2 = (
        req.guidance_scale_2
        if req.guidance_scale_2 is not None
        else (spec.guidance_scale_2 if req.guidance_scale is None else g1)
    )
    if profile.guidance_scale is not None and req.guidance_scale is None:
        g1 = g2 = profile.guidance_scale
    return ResolvedRequest(
        prompt=req.prompt.strip(),
        negative_prompt=req.negative_prompt,
        seed=req.seed,
        steps=req.steps if req.steps is not None else profile.steps,
        guidance_scale=float(g1),
        guidance_scale_2=float(g2),
        height=height,
        width=width,
        frames=frames,
        fps=req.fps if req.fps is not None else spec.fps,
        speed=req.speed,
        step_cache=profile.step_cache,
        speed_lora_sha256=profile.speed_lora_sha256,
        style_sha256=None if req.style_lora is None else sha256_file(req.style_lora),
        style_strength=None if req.style_lora is None else req.style_strength,
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


def motion_change(frames: np.ndarray) -> float:
    """Mean absolute change between consecutive uint8 frames, as a fraction of full scale."""
    if len(frames) < 2:
        return 0.0
    diffs = np.abs(np.diff(frames.astype(np.int16), axis=0))
    return float(diffs.mean() / 255.0)


def motion_check(clip: np.ndarray, reference: np.ndarray) -> MotionCheck:
    """``clip``'s motion against ``reference`` (the quality profile's clip)."""
    mean, ref = motion_change(clip), motion_change(reference)
    ratio = mean / ref if ref > 0 else 1.0
    return MotionCheck(
        mean_change=round(mean, 6),
        reference=round(ref, 6),
        ratio=round(ratio, 4),
        collapsed=ratio < MOTION_COLLAPSE_RATIO,
    )


def _style_adapter(style_sha256: str) -> str:
    """A style's adapter name: by content, so a re-registered name loads the new file."""
    return f"style-{style_sha256[:16]}"


def resolve_device(device: str) -> str:
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
@dataclass(frozen=True)
class GeneratorConfig:
    """What decides which generator gets loaded: equal configs can share one."""

    source: Source
    checkpoint_dir: Path | None
    device: str
    gpu: GpuOptions
    sha_cache: Path | None = None
    speed_lora: Path | None = None

    @classmethod
    def from_settings(
        cls,
        settings: Settings,
        *,
        source: Source | None = None,
        checkpoint_dir: Path | None = None,
        device: str | None = None,
    ) -> GeneratorConfig:
        """The configured generator; arguments override single settings."""
        source = source or settings.generator
        return cls(
            source=source,
            checkpoint_dir=checkpoint_dir or configured_checkpoint(settings, source),
            device=device or settings.device,
            gpu=GpuOptions(
                group_offload=settings.gen_group_offload, fp8_layerwise=settings.gen_fp8
            ),
            sha_cache=sha_cache_file(settings),
            speed_lora=settings.speed_lora,
        )


@dataclass
class _BatchRun:
    """What one batch did: the expert and duration of every denoising step, and when each
    phase ended."""

    expert_calls: list[str] = field(default_factory=list)  # one per expert forward
    step_times: list[float] = field(default_factory=list)
    step_experts: list[str] = field(default_factory=list)
    started: float = 0.0
    last_step: float = 0.0
    denoised: float = 0.0
    decoded: float = 0.0

    def start(self) -> None:
        self.started = self.last_step = time.perf_counter()

    def step_done(self) -> None:
        now = time.perf_counter()
        self.step_times.append(now - self.last_step)
        self.step_experts.append(self.expert_calls[-1] if self.expert_calls else "?")
        self.last_step = now

    def expert_swaps(self) -> int:
        pairs = zip(self.step_experts, self.step_experts[1:], strict=False)
        return sum(1 for a, b in pairs if a != b)

    def expert_steps(self) -> dict[str, int]:
        return {name: self.step_experts.count(name) for name in EXPERTS}

    def timings(self, batch_size: int) -> dict[str, float]:
        denoise = self.denoised - self.started
        high = sum(
            t
            for t, e in zip(self.step_times, self.step_experts, strict=False)
            if e == "transformer"
        )
        total = self.decoded - self.started
        return {
            "denoise_s": round(denoise, 4),
            "high_noise_s": round(high, 4),
            "low_noise_s": round(denoise - high, 4),
            "decode_s": round(self.decoded - self.denoised, 4),
            "batch_total_s": round(total, 4),
            "per_video_s": round(total / batch_size, 4),
        }


class ExpertTrace:
    """Forward pre-hooks on both experts: which one ran, recorded into the current batch."""

    def __init__(self) -> None:
        self.run: _BatchRun | None = None

    @classmethod
    def attach(cls, pipe) -> ExpertTrace:
        trace = cls()
        for name in EXPERTS:
            getattr(pipe, name).register_forward_pre_hook(trace._hook(name))
        return trace

    def _hook(self, name: str):
        def pre_hook(_module, _args):
            run = self.run
            if run is not None:
                run.expert_calls.append(name)

        return pre_hook


OOM_HINT = (
    "CUDA out of memory during generation; lower the resolution/frames/batch or enable "
    "REELFORGE_GEN_GROUP_OFFLOAD=1 (group offload) or REELFORGE_GEN_FP8=1 (FP8 layerwise "
    "casting); the worker is still running"
)


class WanGenerator:
    """A loaded two-expert WanPipeline plus everything needed to serve requests."""

    def __init__(
        self,
        pipe,
        spec: ModelSpec,
        *,
        device: str,
        dtype: torch.dtype,
        path: Path,
        checkpoint_sha256: str,
        trace: ExpertTrace,
        placement: GpuPlacement | None = None,
        load_seconds: float = 0.0,
        speed_lora_sha256: str | None = None,
    ) -> None:
        self.pipe = pipe
        self.spec = spec
        self.source: Source = spec.kind
        self.model_id = spec.model_id
        self.device = device
        self.dtype = dtype
        self.path = path
        self.checkpoint_sha256 = checkpoint_sha256
        self.model_version = model_version_of(spec.kind, checkpoint_sha256)
        self.trace = trace
        self.placement = placement
        self.load_seconds = load_seconds
        self.speed_lora_sha256 = speed_lora_sha256
        self._lock = threading.Lock()

    @classmethod
    def from_checkpoint(
        cls,
        path: Path | None,
        *,
        source: Source = "tiny",
        device: str = "auto",
        gpu: GpuOptions | None = None,
        sha_cache: Path | None = None,
        speed_lora: Path | None = None,
    ) -> WanGenerator:
        """Load a checkpoint directory (``None``: the shipped tiny model, or for ``wan`` the
        one-line "not configured" error) and place it on ``device``; ``speed_lora``: the
        turbo profile's step-distillation LoRA, loaded into both experts."""
        t0 = time.perf_counter()
        device = resolve_device(device)
        path = check_checkpoint(source, path)
        digest = checkpoint_digest(path, sha_cache)
        dtype = torch.bfloat16 if source == "wan" and device.startswith("cuda") else torch.float32
        pipe = _load_pipeline(path, dtype)
        speed_lora_sha256 = None
        if speed_lora is not None:
            load_lora_into_experts(pipe, speed_lora, SPEED_LORA_ADAPTER)
            speed_lora_sha256 = lora_digest(speed_lora)
        # Traced before placement, which keeps the hook order: swap mode's upload (prepended),
        # this trace, then the wait for the first uploaded block.
        trace = ExpertTrace.attach(pipe)
        placement = _place(pipe, device, gpu or GpuOptions())
        return cls(
            pipe,
            SPECS[source],
            device=device,
            dtype=dtype,
            path=path,
            checkpoint_sha256=digest,
            trace=trace,
            placement=placement,
            load_seconds=time.perf_counter() - t0,
            speed_lora_sha256=speed_lora_sha256,
        )

    @classmethod
    def from_config(cls, config: GeneratorConfig) -> WanGenerator:
        return cls.from_checkpoint(
            config.checkpoint_dir,
            source=config.source,
            device=config.device,
            gpu=config.gpu,
            sha_cache=config.sha_cache,
            speed_lora=config.speed_lora,
        )

    def resolve(self, req: GenerationRequest) -> ResolvedRequest:
        resolved = resolve_request(req, self.spec, self.speed_lora_sha256)
        if req.style_lora is not None and resolved.style_sha256 is not None:
            with self._lock:  # not while a batch runs with the adapters it chose
                load_lora_into_experts(
                    self.pipe, req.style_lora, _style_adapter(resolved.style_sha256)
                )
        return resolved

    def cache_key(self, req: GenerationRequest | ResolvedRequest) -> str:
        r = req if isinstance(req, ResolvedRequest) else self.resolve(req)
        return cache_key(r, self.model_version, self.spec)

    def generate(self, req: GenerationRequest) -> GeneratedVideo:
        return self.generate_batch([req])[0]

    def generate_batch(
        self, reqs: Sequence[GenerationRequest | ResolvedRequest]
    ) -> list[GeneratedVideo]:
        """One pipeline call for compatible requests: high-noise phase for all, one swap."""
        # 1. Check the batch: resolved requests that can share one pipeline call.
        batch = self._check_batch(reqs)
        if not batch:
            return []
        run = _BatchRun()
        with self._lock:
            self.trace.run = run
            try:
                # 2-4. High-noise phase, switch, low-noise phase: one pipeline call; the step
                # callback times each step and lets the placement bring in the low-noise expert.
                # The batch's speed profile: its LoRAs and step cache on both experts.
                activate_loras(self.pipe, self._loras(batch[0]))
                with self._step_cache(batch[0].step_cache):
                    latents = self._denoise(batch, run)
                run.denoised = time.perf_counter()
                # 5. Decode.
                video = self._decode(latents)
            except torch.OutOfMemoryError:
                self._recover_oom()
                raise ReelForgeError(OOM_HINT) from None
            finally:
                self.trace.run = None
            run.decoded = time.perf_counter()
        # Quantised outside the lock: the next batch need not wait for it.
        frames = (np.clip(video, 0.0, 1.0) * 255.0 + 0.5).astype(np.uint8)
        # 6. Metadata.
        return self._videos(batch, frames, run)

    def _check_batch(
        self, reqs: Sequence[GenerationRequest | ResolvedRequest]
    ) -> list[ResolvedRequest]:
        batch = [r if isinstance(r, ResolvedRequest) else self.resolve(r) for r in reqs]
        if len({r.batch_key() for r in batch}) > 1:
            raise InvalidInput(
                "generate_batch needs compatible requests (same size, frames, steps, guidance)"
            )
        return batch

    def _loras(self, r: ResolvedRequest) -> dict[str, float]:
        """Adapter name -> strength of the LoRAs this request runs with."""
        loras = {SPEED_LORA_ADAPTER: 1.0} if r.speed_lora_sha256 is not None else {}
        if r.style_sha256 is not None and r.style_strength is not None:
            loras[_style_adapter(r.style_sha256)] = r.style_strength
        return loras

    @contextmanager
    def _step_cache(self, threshold: float | None) -> Iterator[None]:
        """FirstBlockCache on both experts for one pipeline call: enabled fresh for each call,
        so a clip never depends on the residuals cached by the call before."""
        if threshold is None:
            yield
            return
        experts = [getattr(self.pipe, name) for name in EXPERTS]
        for expert in experts:
            expert.enable_cache(FirstBlockCacheConfig(threshold=threshold))
        try:
            yield
        finally:
            for expert in experts:
                expert.disable_cache()

    def _denoise(self, batch: list[ResolvedRequest], run: _BatchRun) -> torch.Tensor:
        """Latents of the batch (``output_type="latent"``: decoding is timed on its own)."""

        def on_step_end(pipe, i, _t, _kw):
            run.step_done()
            if self.placement is not None:
                self.placement.on_step_end(pipe, i)
            return {}

        r0 = batch[0]
        if self.device.startswith("cuda"):
            torch.cuda.reset_peak_memory_stats(self.device)
        # One CPU generator per video: a video's noise depends on its seed only, not on the
        # device or on the batch it shares.
        generators = [torch.Generator(device="cpu").manual_seed(r.seed) for r in batch]
        run.start()
        return self.pipe(
            prompt=[r.prompt for r in batch],
            negative_prompt=[r.negative_prompt for r in batch],
            height=r0.height,
            width=r0.width,
            num_frames=r0.frames,
            num_inference_steps=r0.steps,
            guidance_scale=r0.guidance_scale,
            guidance_scale_2=r0.guidance_scale_2,
            generator=generators,
            output_type="latent",
            max_sequence_length=self.spec.max_sequence_length,
            callback_on_step_end=on_step_end,
        ).frames

    def _decode(self, latents: torch.Tensor) -> np.ndarray:
        """Float (B, T, H, W, 3) frames in [0, 1]: the tail of ``WanPipeline.__call__`` with the
        pipeline's own VAE and video processor. Un-normalised as ``latents * std + mean``
        where diffusers divides by ``1 / std``: the two round differently, and this form is the
        one every cached clip and recorded ``frames_sha256`` was made with."""
        vae = self.pipe.vae
        with torch.no_grad():
            lat = latents.to(get_module_execution_device(vae), dtype=vae.dtype)
            mean = torch.tensor(vae.config.latents_mean).view(1, vae.config.z_dim, 1, 1, 1)
            std = torch.tensor(vae.config.latents_std).view(1, vae.config.z_dim, 1, 1, 1)
            lat = lat * std.to(lat) + mean.to(lat)
            video = vae.decode(lat, return_dict=False)[0]
            video = self.pipe.video_processor.postprocess_video(video, output_type="np")
        return np.asarray(video, dtype=np.float32)

    def _videos(
        self, batch: list[ResolvedRequest], frames: np.ndarray, run: _BatchRun
    ) -> list[GeneratedVideo]:
        timings = run.timings(len(batch))
        peak, peak_kind = self._peak_memory()
        swaps, steps_per_expert = run.expert_swaps(), run.expert_steps()
        sched = self.pipe.scheduler
        sched_cfg = {k: v for k, v in dict(sched.config).items() if not k.startswith("_")}
        out = []
        for i, r in enumerate(batch):
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
                batch_size=len(batch),
                batch_index=i,
                expert_swaps=swaps,
                expert_steps=steps_per_expert,
                timings=timings,
                peak_memory_bytes=peak,
                peak_memory_kind=peak_kind,
            )
            out.append(GeneratedVideo(frames=f, fps=r.fps, metadata=meta))
        return out

    def _peak_memory(self) -> tuple[int, str]:
        if self.device.startswith("cuda"):
            return int(torch.cuda.max_memory_allocated(self.device)), "cuda_max_allocated"
        return _peak_rss_bytes(), "process_max_rss"

    def _recover_oom(self) -> None:
        gc.collect()
        if self.device.startswith("cuda"):
            torch.cuda.empty_cache()
            if self.placement is not None:
                self.placement.reset_after_oom()


def _load_pipeline(path: Path, dtype: torch.dtype):
    """``WanPipeline.from_pretrained``, refusing with one line what cannot be a two-expert
    Wan2.2 model."""
    # Imported here: the pipeline classes cost seconds to import, and orchestrators import
    # this module for the request models only.
    from diffusers import WanPipeline

    try:
        # Loading bars belong to interactive notebooks, not to CLI output and worker logs.
        diffusers.utils.logging.disable_progress_bar()
        transformers.utils.logging.disable_progress_bar()
        pipe = WanPipeline.from_pretrained(str(path), dtype=dtype)
    except (OSError, ValueError) as e:
        first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise InvalidInput(f"cannot load checkpoint {path}: {first}") from None
    pipe.set_progress_bar_config(disable=True)
    if pipe.transformer_2 is None or pipe.config.boundary_ratio is None:
        raise InvalidInput(f"checkpoint {path} is not a two-expert (transformer_2) Wan2.2 model")
    return pipe


def _place(pipe, device: str, gpu: GpuOptions) -> GpuPlacement | None:
    if device.startswith("cuda"):
        return place_on_gpu(pipe, device, gpu)
    pipe.to(device)
    return None
