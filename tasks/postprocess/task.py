"""Prefect tasks of the post-processing stage (thin wrappers over tasks.postprocess.stage)."""

from __future__ import annotations

from prefect import task

from reelforge.caching import StageCache
from reelforge.failpoints import failpoint
from reelforge.jobs import VideoJob
from reelforge.retry import TRANSIENT
from tasks.postprocess.stage import BrandKit, Rendered, ingest_brand_kit, postprocess_stage
from tasks.record import AssetRef, StageContext


@task(name="ingest-brand-kit", cache_policy=StageCache(stage="brand"), **TRANSIENT)
def ingest_brand_kit_task(ctx: StageContext, job: VideoJob) -> BrandKit:
    failpoint("brand")
    return ingest_brand_kit(ctx, job)


@task(name="post-process", cache_policy=StageCache(stage="postprocess"), **TRANSIENT)
def postprocess(
    ctx: StageContext, job: VideoJob, clip: AssetRef, brand: BrandKit, overlay: AssetRef | None
) -> Rendered:
    failpoint("postprocess")
    return postprocess_stage(ctx, job, clip, brand, overlay)
