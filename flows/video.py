"""The video flow: prompt in, a safe, branded, published rendition out, with lineage.

    enhance -> text safety -> generate -> visual safety -> post-process
            -> safety on renditions -> publish

Every stage records its own lineage in the same transaction as its outputs, persists its
result to S3 and has a content-derived cache key (reelforge/core/caching.py): retrying a failed
run re-runs only the stages that did not finish. Two gates share their neighbour's Prefect task
run (docs/orchestration.md, "Task runs"): the logo's with text safety, before any GPU time, and
the rendition's with post-processing, where it judges the render pass's own frames; each still
records its own ``visual_safety`` activity and verdicts. Personalised jobs (an audience) render
only their overlay on top of the shared, cached base.
"""

from __future__ import annotations

from prefect import flow, runtime

from db.models import AssetKind
from reelforge.core.jobs import VideoJob, VideoResult
from reelforge.core.orchestration import RESULTS_BLOCK, claim_process
from reelforge.core.progress import StageProgress
from tasks.context import job_context
from tasks.enhance.stage import enhance_prompt
from tasks.generate.stage import generate
from tasks.inputs import ingest_brand_kit, record_inputs
from tasks.postprocess.stage import personalise, postprocess
from tasks.publish.stage import publish
from tasks.safety.stage import check_texts, moderate

STAGES = ("inputs", "enhance", "text safety", "generate", "visual safety", "post-process",
          "rendition safety", "publish")  # fmt: skip


@flow(
    name="video",
    retries=0,
    log_prints=True,
    persist_result=True,
    result_storage=RESULTS_BLOCK,
    on_running=[
        claim_process
    ],  # records the process, so a crash is found (reelforge/core/orchestration.py)
)
def video_flow(job: VideoJob) -> VideoResult:
    ctx = job_context(job, flow_run_id=runtime.flow_run.id)
    progress = StageProgress(f"video-{runtime.flow_run.id}", STAGES)

    inputs = record_inputs(ctx, job)
    brand = ingest_brand_kit(ctx, job)
    progress.step("inputs")

    enhanced, enhancement = enhance_prompt(ctx, job, inputs[AssetKind.prompt])
    progress.step("enhance")

    check_texts(ctx, inputs, enhanced, enhancement.enhanced_prompt, job, brand.logo)  # + logo
    progress.step("text safety")

    clip, cached = generate(ctx, job, enhanced, enhancement.enhanced_prompt)
    progress.step("generate")

    moderate(ctx, [clip], job.policy)
    progress.step("visual safety")

    render = personalise if job.audience else postprocess
    # post-processing ends with the rendition's safety gate: a blocked rendition stops here
    rendered = render(ctx, job, clip, brand, inputs.get(AssetKind.overlay_text))
    progress.step("post-process")
    progress.step("rendition safety")

    video = publish(ctx, rendered)
    progress.step("publish")

    return VideoResult(
        flow_run_id=ctx.flow_run_id,
        prompt_asset_id=inputs[AssetKind.prompt].id,
        enhanced_prompt=enhancement.enhanced_prompt,
        raw_clip_asset_id=clip.id,
        generation_cached=cached,
        video=video,
    )
