"""A review's decision: one transaction records it as a ``review_decision`` activity (its
agent, the chosen take as ``chosen``, every take as ``considered``, the note or reason) and
closes the review to any other decision. Approving then starts the publishing run
(flows/review.py); rejecting publishes nothing (the takes stay private assets).
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from db.models import Asset, Review, ReviewStatus
from db.session import session_scope
from reelforge.core.errors import InvalidInput
from tasks.record import AssetRef, StageContext, record_stage


class UnknownReview(InvalidInput):
    """No such review for this tenant (the API answers 404: another tenant's is unknown)."""


def find_review(session: Session, tenant_id: uuid.UUID, review_id: str | uuid.UUID) -> Review:
    """The tenant's review, or ``UnknownReview`` (also for another tenant's)."""
    try:
        key = uuid.UUID(str(review_id))
    except ValueError:
        raise UnknownReview(f"no review {review_id!r} (expected a review id)") from None
    row = session.scalars(
        select(Review).where(Review.id == key, Review.tenant_id == tenant_id)
    ).one_or_none()
    if row is None:
        raise UnknownReview(f"no review {key}: `reelforge review list` shows the open ones")
    return row


def decide(
    ctx: StageContext,
    review_id: str | uuid.UUID,
    *,
    approve: bool,
    agent: str,
    pick: int | None = None,
    note: str | None = None,
) -> tuple[Review, bool]:
    """Record the decision; the review (detached) and whether it was decided just now (False:
    the same approval again while its publishing had not finished, so it is resumed)."""
    with session_scope() as session:
        row = find_review(session, ctx.tenant_id, review_id)
        takes = row.takes
        if approve:
            _check_pick(row, pick)
        if row.status is not ReviewStatus.awaiting_review:
            if approve and row.status is ReviewStatus.approved and row.pick == pick:
                session.expunge(row)
                return row, False  # decided before, publishing interrupted: resume it
            raise InvalidInput(f"review {row.id} is already decided ({_decided(row)})")
    chosen = [t for t in takes if t["take"] == pick]
    used = [(AssetRef.model_validate(t["clip"]), "chosen") for t in chosen]
    used += [(AssetRef.model_validate(t["clip"]), "considered") for t in takes]
    decided_at = datetime.now(UTC)
    status = ReviewStatus.approved if approve else ReviewStatus.rejected

    def close(session: Session, _rows: list[Asset]) -> None:
        done = session.execute(
            update(Review)
            .where(Review.id == row.id, Review.status == ReviewStatus.awaiting_review)
            .values(
                status=status,
                pick=pick if approve else None,
                decided_by=agent,
                note=note,
                decided_at=decided_at,
            )
        )
        if done.rowcount != 1:  # decided in the meantime by someone else
            raise InvalidInput(f"review {row.id} is already decided")

    record_stage(
        ctx,
        "review_decision",
        used=used,
        parameters={
            "review_id": str(row.id),
            "decision": status.value,
            "pick": pick,
            "agent": agent,
            "note": note,
            "takes": len(takes),
        },
        then=close,
    )
    with session_scope() as session:
        fresh = session.get_one(Review, row.id)
        session.expunge(fresh)
        return fresh, True


def _check_pick(row: Review, pick: int | None) -> None:
    numbers = [t["take"] for t in row.takes]
    if pick is None or pick not in numbers:
        raise InvalidInput(
            f"pick {pick} is out of range: review {row.id} has takes 1-{max(numbers, default=0)}"
        )
    take = next(t for t in row.takes if t["take"] == pick)
    if not take["passed"]:
        raise InvalidInput(f"take {pick} was blocked by the visual gate ({take['category']})")


def _decided(row: Review) -> str:
    how = f"take {row.pick} approved" if row.pick else row.status.value
    return f"{how} by {row.decided_by}" if row.decided_by else how


def review_json(row: Review) -> dict[str, Any]:
    """A review as the CLI's --json and the API show it."""
    return {
        "review_id": str(row.id),
        "status": row.status.value,
        "created_at": row.created_at.isoformat() if row.created_at else None,
        "expires_at": row.expires_at.isoformat() if row.expires_at else None,
        "prompt": row.job.get("prompt"),
        "campaign_id": str(row.campaign_id) if row.campaign_id else None,
        "flow_run_id": str(row.flow_run_id) if row.flow_run_id else None,
        "pick": row.pick,
        "decided_by": row.decided_by,
        "note": row.note,
        "decided_at": row.decided_at.isoformat() if row.decided_at else None,
        "publishing_run_id": str(row.decision_flow_run_id) if row.decision_flow_run_id else None,
        "takes": [
            {
                "take": t["take"],
                "seed": t["seed"],
                "clip_id": t["clip"]["id"],
                "preview_id": t["preview"]["id"] if t.get("preview") else None,
                "passed": t["passed"],
                "category": t.get("category"),
                "score": t.get("score"),
                "enhanced_prompt": t.get("enhanced_prompt"),
            }
            for t in row.takes
        ],
    }
