"""Prefect task of the generation stage (a thin wrapper over tasks.generate.stage)."""

from __future__ import annotations

from prefect import task

from reelforge.jobs import VideoJob
from reelforge.retry import TRANSIENT
from tasks.generate.stage import generate_stage
from tasks.record import AssetRef, StageContext


@task(name="generate", **TRANSIENT)
def generate_clip_task(
    ctx: StageContext, job: VideoJob, enhanced: AssetRef, prompt: str
) -> tuple[AssetRef, bool]:
    return generate_stage(ctx, job, enhanced, prompt)
