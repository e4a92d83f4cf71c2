"""Generation stage: a clip from the enhanced prompt, or the cached one for the same request."""

from __future__ import annotations

import tempfile
from pathlib import Path

from prefect import task

from db.models import AssetKind
from models.generator import GenerationRequest
from reelforge.core.caching import StageCache
from reelforge.core.checkpoints import SPECS, frames_for_seconds
from reelforge.core.failpoints import failpoint
from reelforge.core.jobs import VideoJob
from reelforge.core.orchestration import gpu_slot
from reelforge.core.retry import TRANSIENT
from reelforge.core.settings import get_settings
from tasks.generate.generate import (
    generate_clip,
    generate_videos,
    generation_cache_key,
    refuse_collapsed_motion,
)
from tasks.record import (
    AssetRef,
    Output,
    StageContext,
    claim,
    failure_recorder,
    find_output,
    local_copy,
    record_stage,
    register_reference,
)
from tasks.safety.policy import load_policy
from tasks.styles import find_style


def generation_request(
    job: VideoJob, prompt: str, style: AssetRef | None = None
) -> GenerationRequest:
    """The job's generation request (``style``: the LoRA asset of ``job.style``)."""
    return GenerationRequest.parse(
        {
            "prompt": prompt,
            "negative_prompt": job.negative_prompt,
            "seed": job.seed,
            "steps": job.steps,
            "speed": job.speed,
            "preset": job.generation_preset,
            "frames": frames_for_seconds(SPECS[get_settings().generator], job.seconds),
            "style_lora": None if style is None else local_copy(style),
            "style_strength": job.style_strength,
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
    style = None if job.style is None else find_style(job.tenant, job.style)
    request = generation_request(job, prompt, style)
    key = generation_cache_key(request)
    # Identical jobs in flight generate once: the others wait for the claim, then reuse it.
    with claim(f"generate:{ctx.tenant_id}:{key}"):
        cached = find_output(ctx, AssetKind.raw_clip, cache_key=key)
        if cached is not None:
            return cached, True
        motion_collapse = load_policy(job.policy, tenant=job.tenant).motion_collapse
        clip = make_clip(ctx, request, enhanced, motion_collapse=motion_collapse, style=style)
        return clip, False


@task(
    name="generate-batch",
    cache_policy=StageCache(stage="generate-batch", with_model=True),
    on_failure=[failure_recorder("generate")],
    **TRANSIENT,
)
def generate_batch(ctx: StageContext, jobs: list[VideoJob], prompts: list[str]) -> int:
    """Several clips (an ad's shots) in one pass of the model where it allows: the requests
    not in the tenant's generation cache are generated together (compatible ones share a
    batch, so one expert swap), and the resident service keeps the results, so each one's own
    ``generate`` then records its clip without generating it again. How many were missing."""
    failpoint("generate")
    requests = []
    for job, prompt in zip(jobs, prompts, strict=True):
        style = None if job.style is None else find_style(job.tenant, job.style)
        request = generation_request(job, prompt, style)
        if find_output(ctx, AssetKind.raw_clip, cache_key=generation_cache_key(request)) is None:
            requests.append(request)
    if len(requests) > 1:  # one alone is just as cheap in its own `generate`
        generate_videos(requests, slot=gpu_slot)
    return len(requests)


def make_clip(
    ctx: StageContext,
    request: GenerationRequest,
    enhanced: AssetRef,
    *,
    motion_collapse: str,
    style: AssetRef | None = None,
) -> AssetRef:
    """Generate the clip on a GPU slot and record it with its model checkpoint and style
    (``motion_collapse``: the policy's rule for fast clips whose motion collapsed)."""
    with tempfile.TemporaryDirectory(prefix="rf-gen-") as tmp:
        # one of this machine's GPUs, leased, unless the batch before already made the clip
        result = generate_clip(
            request, out=Path(tmp) / "clip.mp4", motion_guard=get_settings().motion_guard,
            slot=gpu_slot,
        )  # fmt: skip
        meta = result.metadata
        refuse_collapsed_motion(meta, motion_collapse)
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
            used=[
                (enhanced, "prompt"),
                (checkpoint, "model"),
                *([] if style is None else [(style, "style")]),
            ],
            outputs=[
                Output(
                    path=result.path, kind=AssetKind.raw_clip, media=media, media_type="video/mp4"
                )
            ],
            parameters={
                k: media[k]
                for k in (
                    "seed",
                    "speed",
                    "step_cache",
                    "speed_lora_sha256",
                    "style_sha256",
                    "style_strength",
                    "motion",
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
    return clip
