"""What a campaign run shows in Prefect: a progress artifact while it runs, then a table
artifact with a link to every published video (and a markdown list of the same links)."""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy.orm import Session

from db import lineage
from db.session import session_scope
from db.webhooks import enqueue_event
from reelforge.campaigns.plan import (
    CampaignReport,
    ProductPlan,
    ProductResult,
    report_markdown,
    report_rows,
    summarise,
)
from reelforge.campaigns.spec import CampaignSpec
from reelforge.core.errors import ReelForgeError
from reelforge.core.fanout import Throttle


def register(spec: CampaignSpec, *, session: Session | None = None) -> uuid.UUID:
    """The campaign's lineage row, with the spec this run uses (in ``session``'s transaction
    when given: the API writes it together with the job, after the queue check)."""
    from tasks.context import register_campaign

    schedule = spec.schedule
    return register_campaign(
        spec.tenant,
        spec.name,
        spec=spec.model_dump(mode="json"),
        cron=schedule.cron if schedule else None,
        timezone=schedule.timezone if schedule else None,
        session=session,
    )


class CampaignProgress:
    """A Prefect progress artifact updated as products finish (at most once a second)."""

    def __init__(self, name: str, flow_run_id: Any, total: int) -> None:
        from prefect.artifacts import create_progress_artifact

        self.total = max(total, 1)
        self.artifact_id = create_progress_artifact(
            0.0,
            key=f"campaign-{name}-progress",
            description=f"campaign {name}: {total} products (run {flow_run_id})",
        )
        self._update = Throttle(self._write, seconds=1.0)

    def _write(self, done: int) -> None:
        from prefect.artifacts import update_progress_artifact

        update_progress_artifact(self.artifact_id, round(100.0 * done / self.total, 2))

    def __call__(self, done: int, _state: Any) -> None:
        self._update(done, final=done >= self.total)


def _one_line(state: Any) -> str:
    try:
        state.result()
    except Exception as exc:
        return " ".join(f"{type(exc).__name__}: {exc}".split())[:300]
    return " ".join((state.message or state.name).split())[:300]


def results_of(
    spec: CampaignSpec, plans: list[ProductPlan], states: list[Any], *, dry_run: bool
) -> CampaignReport:
    results = []
    for plan, state in zip(plans, states, strict=True):
        if state is not None and state.is_completed():
            result: ProductResult = state.result()
            if state.name == "Cached":
                result = result.model_copy(update={"status": "cached"})
        else:
            error = _one_line(state) if state is not None else "not run"
            result = ProductResult(sku=plan.sku, name=plan.name, status="failed", error=error)
        results.append(result)
    runs = sorted({v.flow_run_id for r in results if r.status == "made" for v in r.videos
                   if v.flow_run_id and not v.generation_cached})  # fmt: skip
    with session_scope() as session:
        gpu = lineage.gpu_seconds_of_runs(session, runs)
    return summarise(spec, results, dry_run=dry_run, gpu_seconds=gpu)


def publish_report(report: CampaignReport) -> None:
    """Table and markdown artifacts; then fail the run if any product failed (a retry of the
    run re-makes only those: the others come back from the cache)."""
    from prefect.artifacts import create_markdown_artifact, create_table_artifact

    from reelforge.core.storage import ObjectStore

    store = ObjectStore()
    rows = report_rows(report, lambda uri: store.presign(uri))
    key = f"campaign-{report.campaign}"
    create_table_artifact(rows, key=f"{key}-report", description=report_markdown(report, []))
    create_markdown_artifact(report_markdown(report, rows), key=f"{key}-links")
    if not report.dry_run:
        queue_completed(report)
    if report.failed:
        first = next(r for r in report.results if r.status == "failed")
        raise ReelForgeError(
            f"campaign {report.campaign}: {report.failed} of {report.products} products failed "
            f"(first: {first.sku}: {first.error}); `reelforge retry` re-makes only those"
        )


def queue_completed(report: CampaignReport) -> None:
    """The tenant's ``campaign.completed`` webhooks (counts, not the products' content)."""
    counts = report.model_dump(include={"products", "made", "cached", "failed", "videos"})
    data = {"tenant": report.tenant, "campaign": report.campaign, **counts}
    if report.flow_run_id is not None:
        data["flow_run_id"] = str(report.flow_run_id)
    with session_scope() as session:
        tenant = lineage.ensure_tenant(session, report.tenant)
        enqueue_event(session, tenant.id, "campaign.completed", data)
