"""Plain (Prefect-free) generation functions used by the flow, the CLI and the tests."""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from contextlib import AbstractContextManager, nullcontext
from fractions import Fraction
from pathlib import Path
from typing import Any

import numpy as np
from pydantic import BaseModel

from models.generator import GeneratedVideo, GenerationMetadata, GenerationRequest, motion_check
from models.service import get_service
from reelforge.core.errors import BlockedBySafety
from tasks.postprocess.ffmpeg import run_ffmpeg


class GenerationResult(BaseModel):
    """What the flow/lineage needs about one generated clip (the frames stay in memory)."""

    path: Path | None
    sha256: str | None  # sha256 of the written mp4
    media_type: str = "video/mp4"
    metadata: GenerationMetadata


def as_request(request: GenerationRequest | dict[str, Any]) -> GenerationRequest:
    if isinstance(request, GenerationRequest):
        return request
    return GenerationRequest.parse(request)


def generation_cache_key(request: GenerationRequest | dict[str, Any]) -> str:
    """The cache key the flow should use: (prompt, seed, params, model version)."""
    return get_service().generator().cache_key(as_request(request))


def write_mp4(frames: np.ndarray, fps: int, path: Path, crf: int = 12) -> str:
    """Encode uint8 (T, H, W, 3) frames as H.264 (yuv420p, +faststart); returns sha256. The
    frames go to ffmpeg's stdin from the array itself, no copy (a writer thread per clip cost
    more than the encode); odd sizes are scaled up to even ones, which yuv420p needs."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    _t, h, w, _ = frames.shape
    even = ["-vf", f"scale={w + w % 2}:{h + h % 2}"] if (h % 2 or w % 2) else []
    run_ffmpeg(
        ["-v", "error", "-f", "rawvideo", "-vcodec", "rawvideo", "-s", f"{w}x{h}",
         "-pix_fmt", "rgb24", "-r", str(Fraction(fps).limit_denominator()), "-i", "pipe:0",
         "-an", "-vcodec", "libx264", "-pix_fmt", "yuv420p", *even, "-crf", str(crf),
         "-movflags", "+faststart", str(path)],
        what="write clip", stdin=np.ascontiguousarray(frames, dtype=np.uint8).reshape(-1).data,
    )  # fmt: skip
    return hashlib.sha256(path.read_bytes()).hexdigest()


def generate_videos(
    requests: list[GenerationRequest | dict[str, Any]],
    slot: Callable[[], AbstractContextManager[object]] = nullcontext,
) -> list[GeneratedVideo]:
    """Generate in-process on the resident service (batched, cached by cache key), holding
    ``slot`` (a GPU slot) only while something is generated."""
    return get_service().generate_many([as_request(r) for r in requests], slot=slot)


def generate_clip(
    request: GenerationRequest | dict[str, Any],
    out: Path | None = None,
    *,
    motion_guard: bool = False,
    slot: Callable[[], AbstractContextManager[object]] = nullcontext,
) -> GenerationResult:
    """One clip; written to ``out`` as mp4 when given. With ``motion_guard``, a fast or turbo
    clip's motion is measured against the quality clip of the same prompt and seed (generated
    too: the guard costs a quality generation) and recorded as ``metadata.motion``."""
    request = as_request(request)
    if motion_guard and request.speed != "quality":
        reference = request.model_copy(update={"speed": "quality", "steps": None})
        video, quality = generate_videos([request, reference], slot)
        # A copy: the service's result cache keeps the metadata as generated.
        meta = video.metadata.model_copy(
            update={"motion": motion_check(video.frames, quality.frames)}
        )
    else:
        video = generate_videos([request], slot)[0]
        meta = video.metadata
    sha = write_mp4(video.frames, video.fps, out) if out is not None else None
    return GenerationResult(path=out, sha256=sha, metadata=meta)


def refuse_collapsed_motion(meta: GenerationMetadata, motion_collapse: str) -> None:
    """``BlockedBySafety`` (exit 3) when the policy refuses a clip whose motion collapsed."""
    if motion_collapse == "refuse" and meta.motion is not None and meta.motion.collapsed:
        raise BlockedBySafety(
            f"the {meta.speed} clip's motion collapsed ({meta.motion.ratio:.2f} of the quality "
            "clip's frame-to-frame change); use --speed quality, or a policy with "
            "motion_collapse: allow",
            category="motion",
        )


def generate_clips(
    requests: list[GenerationRequest | dict[str, Any]], out_dir: Path | None = None
) -> list[GenerationResult]:
    """Several clips in compatible batches; files are named by cache key."""
    videos = generate_videos(requests)
    results = []
    for v in videos:
        path = None if out_dir is None else Path(out_dir) / f"{v.metadata.cache_key[:24]}.mp4"
        sha = write_mp4(v.frames, v.fps, path) if path is not None else None
        results.append(GenerationResult(path=path, sha256=sha, metadata=v.metadata))
    return results
