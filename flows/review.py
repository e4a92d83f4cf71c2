"""The review flow: an approved take, rendered, checked again and published.

    the review's chosen take -> post-process each rendition (+ rendition safety) -> publish
                             -> close the review

Started by the decision (`reelforge review approve`, POST /v1/reviews/{id}/decision, a timed-out
review's `auto: best_score`), which is already recorded (tasks/review/decision.py). Its stages
are the video flow's own, with their claims: a run killed half way and started again by the
same approval publishes once.
"""

from __future__ import annotations

import uuid

from prefect import flow, runtime

from reelforge.core.jobs import VideoResult
from reelforge.core.orchestration import RESULTS_BLOCK, claim_process
from reelforge.core.progress import StageProgress
from tasks.context import job_context
from tasks.postprocess.stage import postprocess
from tasks.publish.stage import publish
from tasks.review.stage import close_review, load_plan

STAGES = ("decision", "post-process", "rendition safety", "publish", "review")


@flow(
    name="review",
    retries=0,
    log_prints=True,
    persist_result=True,
    result_storage=RESULTS_BLOCK,
    on_running=[claim_process],
)
def review_flow(review_id: uuid.UUID) -> VideoResult:
    plan = load_plan(review_id)
    ctx = job_context(plan.jobs[0], flow_run_id=runtime.flow_run.id)
    progress = StageProgress(f"review-{runtime.flow_run.id}", STAGES)
    progress.step("decision")

    # post-processing ends with the rendition's safety gate: a blocked rendition stops here
    rendered = [
        postprocess(ctx, job, plan.take.clip, plan.brand, plan.overlay) for job in plan.jobs
    ]
    progress.step("post-process")
    progress.step("rendition safety")

    videos = [publish(ctx, r) for r in rendered]  # every requested rendition
    progress.step("publish")

    result = VideoResult(
        flow_run_id=ctx.flow_run_id,
        prompt_asset_id=plan.prompt.id,
        enhanced_prompt=plan.take.enhanced_prompt,
        raw_clip_asset_id=plan.take.clip.id,
        generation_cached=plan.take.generation_cached,
        video=videos[0],
    )
    close_review(ctx, plan, result)
    progress.step("review")
    return result
