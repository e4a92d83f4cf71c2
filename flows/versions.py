"""The versions flow: a job's N takes, checked, previewed and scored, held for a decision.

    inputs -> enhance -> text safety -> generate N takes in one batch -> visual safety per
           take -> a preview per take -> a score per take -> record the review

The takes share one rewrite of the prompt (and its text check) unless the enhancer is an LLM,
which samples a rewrite per seed.

The run ENDS here: nothing (no process, worker or GPU slot) waits for the decision. Approving
starts the publishing run (flows/review.py); a kill -9 while the review waits loses nothing.
Take k is the job with seed + k - 1 (tasks/review/stage.py): each has its own generation cache
key, and the ones not cached are generated together (one expert swap for the batch).
"""

from __future__ import annotations

import uuid

from prefect import flow, runtime

from db.models import AssetKind
from reelforge.core.jobs import VideoJob
from reelforge.core.orchestration import RESULTS_BLOCK, claim_process
from reelforge.core.progress import StageProgress
from tasks.context import job_context
from tasks.enhance.stage import enhance_prompt
from tasks.generate.stage import generate, generate_batch
from tasks.inputs import ingest_brand_kit, record_inputs
from tasks.review.stage import (
    ReviewOpened,
    collect_takes,
    gate_takes,
    open_review,
    preview_takes,
    rewritten_takes,
    score_takes,
    take_jobs,
)
from tasks.safety.stage import check_texts

STAGES = ("inputs", "enhance", "text safety", "generate", "visual safety", "preview", "score",
          "review")  # fmt: skip


@flow(
    name="versions",
    retries=0,
    log_prints=True,
    persist_result=True,
    result_storage=RESULTS_BLOCK,
    on_running=[claim_process],
)
def versions_flow(
    job: VideoJob,
    versions: int,
    first: int = 1,
    review_id: uuid.UUID | None = None,
    on_timeout: str | None = None,
    renditions: list[VideoJob] | None = None,  # a campaign product's: published on approval
) -> ReviewOpened:
    ctx = job_context(job, flow_run_id=runtime.flow_run.id)
    progress = StageProgress(f"versions-{runtime.flow_run.id}", STAGES)
    jobs = take_jobs(job, versions, first)

    inputs = record_inputs(ctx, job)
    brand = ingest_brand_kit(ctx, job)
    progress.step("inputs")

    rewritten = rewritten_takes(jobs)  # all of them under an LLM, else the first
    rewrites = [enhance_prompt(ctx, take, inputs[AssetKind.prompt]) for take in rewritten]
    progress.step("enhance")

    for n, (take, (ref, e)) in enumerate(zip(rewritten, rewrites, strict=True)):
        check_texts(ctx, inputs, ref, e.enhanced_prompt, take, brand.logo if n == 0 else None)
    progress.step("text safety")

    enhanced = [rewrites[k % len(rewrites)] for k in range(len(jobs))]  # each take's rewrite

    generate_batch(ctx, jobs, [e.enhanced_prompt for _, e in enhanced])  # one batch
    made = [
        generate(ctx, take, ref, e.enhanced_prompt)
        for take, (ref, e) in zip(jobs, enhanced, strict=True)
    ]
    clips = [clip for clip, _ in made]
    progress.step("generate")

    blocked = gate_takes(ctx, clips, job.policy)  # a blocked take stays, marked, unpickable
    progress.step("visual safety")

    previews = preview_takes(ctx, clips, blocked, first)
    progress.step("preview")

    scores = score_takes(ctx, clips, blocked, job.prompt)
    progress.step("score")

    takes = collect_takes(jobs, enhanced, made, blocked, previews, scores, first)
    review = open_review(ctx, job, inputs, brand, takes, on_timeout, review_id, renditions)
    progress.step("review")
    return review
