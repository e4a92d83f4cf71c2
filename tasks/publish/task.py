"""Prefect task of the publish stage (a thin wrapper over tasks.publish.stage)."""

from __future__ import annotations

from prefect import task

from reelforge.caching import StageCache
from reelforge.failpoints import failpoint
from reelforge.jobs import PublishedVideo
from reelforge.retry import TRANSIENT
from tasks.postprocess.stage import Rendered
from tasks.publish.stage import publish_stage
from tasks.record import StageContext


@task(name="publish", cache_policy=StageCache(stage="publish"), **TRANSIENT)
def publish(ctx: StageContext, rendered: Rendered) -> PublishedVideo:
    failpoint("publish")
    video = publish_stage(ctx, rendered)
    failpoint("published")  # crash tests: published and recorded, the run not yet finished
    return video
