"""Generation stage: a clip from the enhanced prompt, or the cached one for the same request."""

from __future__ import annotations

import tempfile
from pathlib import Path

from prefect import task

from db.models import AssetKind
from models.generator import GenerationRequest
from reelforge.core.caching import StageCache
from reelforge.core.failpoints import failpoint
from reelforge.core.jobs import VideoJob
from reelforge.core.orchestration import gpu_slot
from reelforge.core.retry import TRANSIENT
from tasks.generate.generate import generate_clip, generation_cache_key
from tasks.record import (
    AssetRef,
    Output,
    StageContext,
    failure_recorder,
    find_output,
    record_stage,
    register_reference,
)


def generation_request(job: VideoJob, prompt: str) -> GenerationRequest:
    return GenerationRequest.parse(
        {
            "prompt": prompt,
            "negative_prompt": job.negative_prompt,
            "seed": job.seed,
            "steps": job.steps,
            "speed": job.speed,
            "preset": job.generation_preset,
        }
    )


@task(
    name="generate",
    cache_policy=StageCache(stage="generate", with_model=True),
    on_failure=[failure_recorder("generate")],
    **TRANSIENT,
)
def generate(
    ctx: StageContext, job: VideoJob, enhanced: AssetRef, prompt: str
) -> tuple[AssetRef, bool]:
    """The raw clip and whether it came from the cache (same prompt, seed, params, model)."""
    failpoint("generate")
    request = generation_request(job, prompt)
    key = generation_cache_key(request)
    cached = find_output(ctx, AssetKind.raw_clip, cache_key=key)
    if cached is not None:
        return cached, True
    with tempfile.TemporaryDirectory(prefix="rf-gen-") as tmp:
        with gpu_slot():  # one of this machine's GPUs, leased
            result = generate_clip(request, out=Path(tmp) / "clip.mp4")
        meta = result.metadata
        checkpoint = register_reference(
            ctx,
            AssetKind.model_checkpoint,
            sha256=meta.checkpoint_sha256,
            uri=f"model://{meta.model_id}@{meta.model_version}",
            media={
                "model_id": meta.model_id,
                "model_version": meta.model_version,
                "source": meta.source,
            },
        )
        media = meta.model_dump(mode="json", exclude={"prompt", "negative_prompt"})
        (clip,) = record_stage(
            ctx,
            "generate",
            used=[(enhanced, "prompt"), (checkpoint, "model")],
            outputs=[
                Output(
                    path=result.path, kind=AssetKind.raw_clip, media=media, media_type="video/mp4"
                )
            ],
            parameters={
                k: media[k]
                for k in (
                    "seed",
                    "steps",
                    "guidance_scale",
                    "guidance_scale_2",
                    "height",
                    "width",
                    "frames",
                    "fps",
                    "boundary_ratio",
                    "scheduler",
                    "device",
                    "expert_swaps",
                    "timings",
                    "peak_memory_bytes",
                )
            },
            model_version=meta.model_version,
        )
    return clip, False
