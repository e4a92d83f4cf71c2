"""Reviews over HTTP and on the dashboard: the caller's tenant's reviews, and decisions.

A decision is recorded before the answer (404 for an unknown or another tenant's review, 422
for a pick out of range, 409 for a second decision); an approval's publishing run (and the
takes of `more`) then runs in this API process, in a small pool of its own. If the process
dies first, approving the same take again resumes it (reelforge/ops/reviews.py).
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from fastapi import HTTPException

from reelforge.api.keys import Principal
from reelforge.api.schemas import ReviewDecisionIn, ReviewOut
from reelforge.core.errors import InvalidInput
from reelforge.core.storage import ObjectStore
from reelforge.ops import reviews
from tasks.review.decision import UnknownReview

_pool_lock = threading.Lock()


def agent_of(principal: Principal) -> str:
    """A decision's agent in lineage: the API key that made it."""
    return f"key:{principal.key_id}"


def with_previews(review: dict[str, Any], objects: ObjectStore) -> ReviewOut:
    """A review with presigned URLs of its takes' previews (private objects)."""
    from tasks.review.stage import Take  # the stored takes, for their preview URIs

    out = ReviewOut.model_validate(review)
    stored = reviews.stored_takes(review["review_id"])
    uris = {t.take: t.preview.uri for t in map(Take.model_validate, stored) if t.preview}
    for take in out.takes:
        if take.take in uris:
            take.preview_url = objects.presign(uris[take.take], internal=True)  # reviewers
    return out


def get(principal: Principal, review_id: str, objects: ObjectStore) -> ReviewOut:
    try:
        return with_previews(reviews.show_review(principal.tenant, review_id), objects)
    except UnknownReview:
        raise HTTPException(404, detail="no review with this id") from None


def decide(
    principal: Principal,
    review_id: str,
    body: ReviewDecisionIn,
    objects: ObjectStore,
    background: Callable[[Callable[[], Any]], Any],
) -> ReviewOut:
    """Record the decision now; publish (or make the takes) in ``background``."""
    tenant, agent = principal.tenant, agent_of(principal)
    try:
        if body.decision == "approve":
            if body.pick is None:
                raise InvalidInput("approve needs pick: the take to publish (1, 2, ...)")
            row = reviews.record_approval(tenant, review_id, body.pick, agent=agent,
                                          note=body.note)  # fmt: skip
            background(lambda: reviews.publish_approved(row))
        elif body.decision == "reject":
            reviews.reject(tenant, review_id, agent=agent, reason=body.note)
        else:
            reviews.check_more(tenant, review_id, body.versions)
            background(lambda: reviews.more(tenant, review_id, body.versions))
    except UnknownReview:
        raise HTTPException(404, detail="no review with this id") from None
    except InvalidInput as exc:
        status = 409 if "already decided" in str(exc) else 422
        raise HTTPException(status, detail=str(exc)) from None
    return get(principal, review_id, objects)


def in_background(state: Any, workers: int) -> Callable[[Callable[[], Any]], Any]:
    """Run work in this API process's review pool (made on first use)."""
    with _pool_lock:
        if getattr(state, "review_work", None) is None:
            state.review_work = ThreadPoolExecutor(
                max_workers=workers, thread_name_prefix="reelforge-review"
            )
    return state.review_work.submit
