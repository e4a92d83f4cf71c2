"""Versions and review from the CLI, the API and the repairs: start a versions run, list and
show reviews, and decide them (approve starts the publishing run, reject publishes nothing).

No process waits for a decision: the versions run ends after the previews, and each decision
is recorded before its publishing run starts, so an approval whose process died is resumed by
approving the same take again (the stages' claims publish it once).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import select

from db.models import Campaign, Review, ReviewStatus
from db.session import session_scope
from reelforge.core.errors import InvalidInput
from reelforge.core.jobs import VideoJob, VideoResult
from reelforge.core.settings import get_settings
from reelforge.ops.run import run_here
from tasks.record import context_for
from tasks.review.decision import decide, find_review, review_json
from tasks.review.stage import ReviewOpened

SYSTEM = "system"  # the agent of automatic decisions (a timed-out review)
AUTO_BEST = "auto: best_score"

OnStage = Callable[[str, int, int], None] | None


def check_versions(versions: int, review: bool, ask: str = "--review") -> None:
    """A job's takes: 1 to REELFORGE_MAX_VERSIONS, and more than one only with a review
    (nobody would choose among them); ``ask``: how the caller asks for one."""
    most = get_settings().max_versions
    if not 1 <= versions <= most:
        raise InvalidInput(f"versions {versions}: between 1 and {most} (REELFORGE_MAX_VERSIONS)")
    if versions > 1 and not review:
        raise InvalidInput(f"versions {versions} need a review: add {ask}")


def start_versions(
    job: VideoJob, versions: int, *, on_timeout: str | None = None, on_stage: OnStage = None
) -> ReviewOpened:
    """Run the versions flow here: N takes, previewed and scored, held in a new review."""
    from tasks.preflight import check_job

    check_versions(versions, review=True)
    check_job(job)  # bad input fails here: no flow run, nothing stored
    parameters = {"job": job, "versions": versions, "on_timeout": on_timeout}
    return run_here("versions", parameters, tenant=job.tenant, on_stage=on_stage)


def list_reviews(
    tenant: str, *, status: str | None = None, campaign: str | None = None, limit: int = 100
) -> list[dict[str, Any]]:
    """The tenant's reviews, newest first (``status``: e.g. awaiting_review)."""
    ctx = context_for(tenant)
    with session_scope() as session:
        query = select(Review).where(Review.tenant_id == ctx.tenant_id)
        if status is not None:
            try:
                query = query.where(Review.status == ReviewStatus(status))
            except ValueError:
                known = ", ".join(s.value for s in ReviewStatus)
                raise InvalidInput(f"status {status!r}: one of {known}") from None
        if campaign is not None:
            query = query.join(Campaign, Campaign.id == Review.campaign_id).where(
                Campaign.name == campaign
            )
        rows = session.scalars(query.order_by(Review.created_at.desc()).limit(limit))
        return [review_json(row) for row in rows]


def show_review(tenant: str, review_id: str) -> dict[str, Any]:
    ctx = context_for(tenant)
    with session_scope() as session:
        return review_json(find_review(session, ctx.tenant_id, review_id))


def approve(
    tenant: str,
    review_id: str,
    pick: int,
    *,
    agent: str,
    note: str | None = None,
    on_stage: OnStage = None,
) -> VideoResult:
    """Record the approval of take ``pick``, then publish it: the same result as the video
    flow's. Approving the same take again while its publishing had not finished resumes it."""
    row = record_approval(tenant, review_id, pick, agent=agent, note=note)
    return publish_approved(row, on_stage=on_stage)


def record_approval(
    tenant: str, review_id: str, pick: int, *, agent: str, note: str | None = None
) -> Review:
    """The approval recorded (or found, for the same take again): the review to publish."""
    row, _ = decide(context_for(tenant), review_id, approve=True, pick=pick, note=note, agent=agent)
    return row


def stored_takes(review_id: str) -> list[dict[str, Any]]:
    """A review's takes as stored (asset refs included): for presigning their previews."""
    with session_scope() as session:
        row = session.get_one(Review, review_id)
        return list(row.takes)


def publish_approved(row: Review, *, on_stage: OnStage = None) -> VideoResult:
    """The approved review's chosen take published (its stored result if it was already)."""
    if row.status is ReviewStatus.published and row.result is not None:
        return VideoResult.model_validate(row.result)
    tenant = VideoJob.model_validate(row.job).tenant
    return run_here("review", {"review_id": row.id}, tenant=tenant, on_stage=on_stage)


def reject(tenant: str, review_id: str, *, agent: str, reason: str | None) -> dict[str, Any]:
    """Record the rejection: nothing is published, the takes stay private."""
    ctx = context_for(tenant)
    row, _ = decide(ctx, review_id, approve=False, note=reason, agent=agent)
    return review_json(row)


def check_more(tenant: str, review_id: str, versions: int) -> dict[str, Any]:
    """The versions run's parameters for ``versions`` more takes of a waiting review (seeds
    after the last take's), or why not."""
    ctx = context_for(tenant)
    with session_scope() as session:
        row = find_review(session, ctx.tenant_id, review_id)
        if row.status is not ReviewStatus.awaiting_review:
            raise InvalidInput(f"review {row.id} is already decided ({row.status.value})")
        job, have, key = VideoJob.model_validate(row.job), len(row.takes), row.id
    most = get_settings().max_versions
    if versions < 1 or have + versions > most:
        raise InvalidInput(
            f"review {key} has {have} takes: at most {most - have} more (REELFORGE_MAX_VERSIONS)"
        )
    return {"job": job, "versions": versions, "first": have + 1, "review_id": key}


def more(tenant: str, review_id: str, versions: int, *, on_stage: OnStage = None) -> ReviewOpened:
    """``versions`` more takes of a waiting review, added to it."""
    parameters = check_more(tenant, review_id, versions)
    return run_here("versions", parameters, tenant=tenant, on_stage=on_stage)


def best_take(review: dict[str, Any]) -> int | None:
    """The passing take with the best score (the first of equals); None if none is scored."""
    scored = [t for t in review["takes"] if t["passed"] and t["score"] is not None]
    return max(scored, key=lambda t: (t["score"], -t["take"]))["take"] if scored else None


def approve_best(
    tenant: str, campaign: str, *, agent: str, note: str | None = None
) -> list[dict[str, Any]]:
    """Approve the best-scored take of each of the campaign's waiting reviews and publish
    them; a review with no scored take is left waiting (one row each, what happened)."""
    done = []
    for review in list_reviews(tenant, status="awaiting_review", campaign=campaign, limit=1000):
        pick = best_take(review)
        if pick is None:
            done.append({"review_id": review["review_id"], "pick": None, "asset_id": None})
            continue
        result = approve(tenant, review["review_id"], pick, agent=agent, note=note)
        done.append(
            {"review_id": review["review_id"], "pick": pick, "asset_id": str(result.video.asset_id)}
        )
    return done


def expire_reviews(now: datetime | None = None) -> list[dict[str, Any]]:
    """Decide the reviews whose time ran out (the API dispatcher's watch, `doctor --repair`):
    rejected by ``system``, or with ``auto: best_score`` the best-scoring take approved by
    ``system`` and published. One row per review: its id and what became of it."""
    now = now or datetime.now(UTC)
    with session_scope() as session:
        due = session.execute(
            select(Review.id, Review.job["tenant"].astext, Review.on_timeout).where(
                Review.status == ReviewStatus.awaiting_review, Review.expires_at <= now
            )
        ).all()
    decided = []
    for review_id, tenant, on_timeout in due:
        pick = best_take(show_review(tenant, str(review_id))) if on_timeout == AUTO_BEST else None
        note = f"timed out ({on_timeout})"
        try:
            if pick is not None:
                result = approve(tenant, str(review_id), pick, agent=SYSTEM, note=note)
                decided.append({"review_id": str(review_id), "status": "published", "pick": pick,
                                "asset_id": str(result.video.asset_id)})  # fmt: skip
            else:
                reject(tenant, str(review_id), agent=SYSTEM, reason=note)
                decided.append({"review_id": str(review_id), "status": "rejected", "pick": None})
        except InvalidInput:  # decided by a person in the meantime
            continue
    return decided


def published_asset(tenant: str, review_id: str) -> str | None:
    """The published rendition of a review, if it was published."""
    ctx = context_for(tenant)
    with session_scope() as session:
        row = find_review(session, ctx.tenant_id, review_id)
        return (row.result or {}).get("video", {}).get("asset_id")
