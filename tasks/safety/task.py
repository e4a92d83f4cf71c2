"""Prefect tasks of the safety gates (thin wrappers over tasks.safety.stage)."""

from __future__ import annotations

from prefect import task

from db.models import AssetKind
from reelforge.caching import StageCache
from reelforge.failpoints import failpoint
from reelforge.jobs import VideoJob
from reelforge.retry import TRANSIENT
from tasks.record import AssetRef, StageContext
from tasks.safety.stage import check_job_texts_stage, moderate_stage
from tasks.safety.verdicts import VisualVerdict


@task(name="text-safety", cache_policy=StageCache(stage="text-safety"), **TRANSIENT)
def check_texts(
    ctx: StageContext,
    inputs: dict[AssetKind, AssetRef],
    enhanced: AssetRef,
    enhanced_text: str,
    job: VideoJob,
) -> None:
    failpoint("text-safety")
    check_job_texts_stage(ctx, job, inputs, enhanced, enhanced_text)


@task(name="visual-safety", cache_policy=StageCache(stage="visual-safety"), **TRANSIENT)
def moderate(ctx: StageContext, refs: list[AssetRef], policy: str) -> list[VisualVerdict]:
    failpoint("visual-safety")
    return moderate_stage(ctx, refs, policy)
