"""Prefect tasks of the enhancement stage (thin wrappers over tasks.enhance.stage)."""

from __future__ import annotations

from prefect import task

from db.models import AssetKind
from reelforge.caching import StageCache
from reelforge.failpoints import failpoint
from reelforge.jobs import VideoJob
from reelforge.retry import TRANSIENT
from tasks.enhance.enhancer import EnhanceResult
from tasks.enhance.stage import enhance_stage, record_inputs_stage
from tasks.record import AssetRef, StageContext


@task(name="record-inputs", cache_policy=StageCache(stage="inputs"), **TRANSIENT)
def record_inputs(ctx: StageContext, job: VideoJob) -> dict[AssetKind, AssetRef]:
    failpoint("inputs")
    return record_inputs_stage(ctx, job)


@task(name="enhance-prompt", cache_policy=StageCache(stage="enhance"), **TRANSIENT)
def enhance_prompt(
    ctx: StageContext, job: VideoJob, prompt: AssetRef
) -> tuple[AssetRef, EnhanceResult]:
    failpoint("enhance")
    return enhance_stage(ctx, job, prompt)
