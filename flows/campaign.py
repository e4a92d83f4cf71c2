"""The campaign flow: one video flow per product and rendition, bounded, cached per product.

    plan products -> fan out (at most spec.concurrency at once) -> report (table artifact)

A product whose inputs did not change since a finished run is a cache hit: nothing is
generated or published again. ``executor="pool"`` sends each video to the video deployment
(workers of the gpu pool, on any machine); ``"local"`` runs them here as subflows.
"""

from __future__ import annotations

from prefect import flow, runtime, tags, task
from prefect.context import TaskRunContext
from prefect.deployments import run_deployment

from flows.versions import versions_flow
from flows.video import video_flow
from reelforge.campaigns.plan import (
    CampaignReport,
    Executor,
    ProductPlan,
    ProductResult,
    ProductVideo,
    plan_products,
)
from reelforge.campaigns.report import CampaignProgress, publish_report, register, results_of
from reelforge.campaigns.spec import CampaignSpec
from reelforge.core.caching import KeyField, model_version
from reelforge.core.errors import ReelForgeError
from reelforge.core.failpoints import failpoint
from reelforge.core.fanout import fan_out
from reelforge.core.jobs import VideoJob, VideoResult
from reelforge.core.orchestration import RESULTS_BLOCK, claim_process, video_deployment


def run_video_job(job: VideoJob, executor: Executor) -> VideoResult:
    """One video: as a subflow here (local) or as a run of the video deployment (pool)."""
    tenant = f"tenant:{job.tenant}"  # the tenant's ops view lists runs by this tag
    if executor == "local":
        with tags(tenant):
            return video_flow(job)
    run = run_deployment(
        video_deployment(),
        parameters={"job": job.model_dump(mode="json")},
        tags=["reelforge", tenant],
        as_subflow=True,
        timeout=None,
        poll_interval=2,
    )
    state = run.state
    if state is None or not state.is_completed():
        name = state.name if state else "unknown"
        message = " ".join((state.message or "").split())[:300] if state else ""
        raise ReelForgeError(f"video run {run.id} ended {name}: {message}", flow_run_id=str(run.id))
    return state.result()


@task(name="product", cache_policy=KeyField(argument="plan"), task_run_name="product-{plan.sku}")
def make_product(plan: ProductPlan, executor: Executor) -> ProductResult:
    failpoint("product")
    if plan.review:  # the takes wait for a decision; approving publishes every rendition
        opened = versions_flow(plan.jobs[0], plan.versions, on_timeout=plan.review_timeout,
                               renditions=plan.jobs)  # fmt: skip
        return ProductResult(sku=plan.sku, name=plan.name, status="awaiting_review",
                             review_id=opened.review_id)  # fmt: skip
    videos = [ProductVideo.of(job, run_video_job(job, executor)) for job in plan.jobs]
    return ProductResult(sku=plan.sku, name=plan.name, status="made", videos=videos)


@task(name="product-dry-run", task_run_name="dry-{plan.sku}", persist_result=False)
def check_product(plan: ProductPlan, executor: Executor) -> ProductResult:
    store = TaskRunContext.get().result_store
    if store.exists(plan.cache_key):
        made: ProductResult = store.read(plan.cache_key).result
        return made.model_copy(update={"status": "cached"})
    return ProductResult(sku=plan.sku, name=plan.name, status="would-make")


@flow(
    name="campaign",
    persist_result=True,
    result_storage=RESULTS_BLOCK,
    on_running=[claim_process],
)
def campaign_flow(
    spec: CampaignSpec, executor: Executor = "local", dry_run: bool = False
) -> CampaignReport:
    register(spec)
    plans = plan_products(spec, model_version())
    progress = CampaignProgress(spec.name, runtime.flow_run.id, len(plans))

    step = check_product if dry_run else make_product
    states = fan_out(
        lambda plan: step.submit(plan, executor), plans, limit=spec.concurrency, on_done=progress
    )

    report = results_of(spec, plans, states, dry_run=dry_run)
    publish_report(report)
    return report
