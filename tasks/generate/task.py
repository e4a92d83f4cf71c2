"""Prefect task of the generation stage (a thin wrapper over tasks.generate.stage)."""

from __future__ import annotations

from prefect import task

from reelforge.caching import StageCache
from reelforge.failpoints import failpoint
from reelforge.jobs import VideoJob
from reelforge.orchestration import gpu_slot
from reelforge.retry import TRANSIENT
from tasks.generate.stage import generate_stage
from tasks.record import AssetRef, StageContext


@task(name="generate", cache_policy=StageCache(stage="generate", with_model=True), **TRANSIENT)
def generate_clip_task(
    ctx: StageContext, job: VideoJob, enhanced: AssetRef, prompt: str
) -> tuple[AssetRef, bool]:
    failpoint("generate")
    with gpu_slot():  # one of this machine's GPUs, leased
        return generate_stage(ctx, job, enhanced, prompt)
