"""Prefect task of personalised post-processing (a thin wrapper over tasks.personalise.stage)."""

from __future__ import annotations

from prefect import task

from reelforge.caching import StageCache
from reelforge.failpoints import failpoint
from reelforge.jobs import VideoJob
from reelforge.retry import TRANSIENT
from tasks.personalise.stage import personalise_stage
from tasks.postprocess.stage import BrandKit, Rendered
from tasks.record import AssetRef, StageContext


@task(name="personalise", cache_policy=StageCache(stage="personalise"), **TRANSIENT)
def personalise(
    ctx: StageContext, job: VideoJob, clip: AssetRef, brand: BrandKit, overlay: AssetRef | None
) -> Rendered:
    failpoint("postprocess")
    return personalise_stage(ctx, job, clip, brand, overlay)
