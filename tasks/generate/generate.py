"""Plain (Prefect-free) generation functions used by the flow, the CLI and the tests."""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

import numpy as np
from pydantic import BaseModel

from models.generator import GeneratedVideo, GenerationMetadata, GenerationRequest
from models.service import get_service


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
    """Encode uint8 (T, H, W, 3) frames as H.264 (yuv420p, +faststart); returns sha256."""
    import imageio_ffmpeg

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    _t, h, w, _ = frames.shape
    writer = imageio_ffmpeg.write_frames(
        str(path),
        (w, h),
        fps=fps,
        codec="libx264",
        pix_fmt_in="rgb24",
        pix_fmt_out="yuv420p",
        output_params=["-crf", str(crf), "-movflags", "+faststart"],
        macro_block_size=1 if (h % 2 == 0 and w % 2 == 0) else 2,
        ffmpeg_log_level="error",
    )
    writer.send(None)
    for f in frames:
        writer.send(np.ascontiguousarray(f))
    writer.close()
    return hashlib.sha256(path.read_bytes()).hexdigest()


def generate_videos(requests: list[GenerationRequest | dict[str, Any]]) -> list[GeneratedVideo]:
    """Generate in-process on the resident service (batched, cached by cache key)."""
    return get_service().generate_many([as_request(r) for r in requests])


def generate_clip(
    request: GenerationRequest | dict[str, Any], out: Path | None = None
) -> GenerationResult:
    """One clip; written to ``out`` as mp4 when given."""
    video = generate_videos([request])[0]
    sha = write_mp4(video.frames, video.fps, out) if out is not None else None
    return GenerationResult(path=out, sha256=sha, metadata=video.metadata)


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
