"""Versions and review stages: a job's takes checked, previewed and scored, then held in a
review row for a person's decision (flows/versions.py); the chosen take's publishing run reads
the review back and closes it (flows/review.py).

Take k (1-based) is the job with seed ``job.seed + k - 1``: its own generation cache key, so
the takes are generated together in one batch (``generate_batch``) and each is recorded by the
ordinary ``generate`` stage. A take the visual gate blocks stays in the review, marked blocked
and never pickable; only when every take is blocked does the run stop as blocked.
"""

from __future__ import annotations

import tempfile
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
from prefect import task
from pydantic import BaseModel
from sqlalchemy.dialects.postgresql import insert

from db.models import AssetKind, Review, ReviewStatus
from db.session import session_scope
from models.scoring import scorer_for
from reelforge.core.caching import StageCache
from reelforge.core.errors import InvalidInput
from reelforge.core.failpoints import failpoint
from reelforge.core.jobs import VideoJob, VideoResult
from reelforge.core.retry import TRANSIENT
from reelforge.core.settings import get_settings
from tasks.enhance.enhancer import rewrite_varies_with_seed
from tasks.inputs import BrandKit
from tasks.postprocess.renditions import make_previews
from tasks.record import AssetRef, Output, StageContext, failure_recorder, local_copy, record_stage
from tasks.safety.stage import judge
from tasks.safety.verdicts import VisualBlocked

PREVIEW_WIDTH = 256  # a preview is for choosing, not for publishing
RENDITION_FIELDS = ("aspect", "quality", "fps")  # what differs between a job's renditions


class Take(BaseModel):
    """One take as the review shows it."""

    take: int  # 1-based, as `review approve --pick K` names it
    seed: int
    clip: AssetRef
    enhanced: AssetRef
    enhanced_prompt: str
    generation_cached: bool
    passed: bool
    category: str | None = None  # why the visual gate blocked it
    preview: AssetRef | None = None
    score: float | None = None
    score_details: dict[str, Any] = {}


class ReviewOpened(BaseModel):
    """What a versions run returns: the review waiting for a decision."""

    flow_run_id: uuid.UUID | None
    review_id: uuid.UUID
    status: ReviewStatus
    takes: list[Take]


class ReviewPlan(BaseModel):
    """What the publishing run of an approved review needs."""

    review_id: uuid.UUID
    jobs: list[VideoJob]  # the chosen take's job (its seed) for each requested rendition
    take: Take
    prompt: AssetRef
    overlay: AssetRef | None
    brand: BrandKit


def take_jobs(job: VideoJob, versions: int, first: int = 1) -> list[VideoJob]:
    """The jobs of takes ``first`` .. ``first + versions - 1``: the job with seed + k - 1."""
    return [
        job.model_copy(update={"seed": job.seed + k - 1}) for k in range(first, first + versions)
    ]


def rewritten_takes(jobs: list[VideoJob]) -> list[VideoJob]:
    """The takes whose prompt is rewritten: each one when the enhancer samples a rewrite per
    seed (an LLM), else the first, whose rewrite (and text check) every take shares."""
    return jobs if rewrite_varies_with_seed(jobs[0].template) else jobs[:1]


@task(
    name="visual-safety-takes",
    cache_policy=StageCache(stage="visual-safety-takes"),
    on_failure=[failure_recorder("visual_safety")],
    **TRANSIENT,
)
def gate_takes(ctx: StageContext, clips: list[AssetRef], policy: str) -> list[str | None]:
    """The visual gate on each take, each its own ``visual_safety`` activity and verdict
    (``judge``, the gate every clip goes through): None for a passing take, the category of a
    blocked one (quarantined). Every take blocked: the run stops as blocked."""
    failpoint("visual-safety")
    blocked: list[VisualBlocked] = []
    found: list[str | None] = []
    for clip in clips:
        try:
            judge(ctx, [clip], policy)
            found.append(None)
        except VisualBlocked as exc:
            blocked.append(exc)
            found.append(exc.category)
    if len(blocked) == len(clips):
        raise blocked[0]
    return found


@task(
    name="preview-takes",
    cache_policy=StageCache(stage="preview-takes"),
    on_failure=[failure_recorder("preview")],
    **TRANSIENT,
)
def preview_takes(
    ctx: StageContext, clips: list[AssetRef], blocked: list[str | None], first: int = 1
) -> list[AssetRef | None]:
    """A small looping preview (animated WebP, ``make_previews``: one ffmpeg for all) of each
    passing take, marked ``review_preview``: a private asset for the review page, never published (it has no
    verdict of its own, and PostgreSQL refuses to publish an asset without one)."""
    failpoint("preview")
    shown = [(number, clip) for number, (clip, category)
             in enumerate(zip(clips, blocked, strict=True), start=first) if category is None]  # fmt: skip
    previews: dict[int, AssetRef] = {}
    with tempfile.TemporaryDirectory(prefix="rf-takes-") as tmp:
        made = make_previews(
            [(local_copy(clip), Path(tmp) / f"take-{number}.webp") for number, clip in shown],
            width=PREVIEW_WIDTH,
        )
        for (number, clip), out in zip(shown, made, strict=True):
            (previews[number],) = record_stage(
                ctx,
                "preview",
                used=[(clip, "take")],
                outputs=[
                    Output(
                        Path(out.path),
                        AssetKind.preview,
                        {"width": out.width, "take": number, "review_preview": True},
                        "image/webp",
                    )
                ],
                parameters={"take": number, "width": PREVIEW_WIDTH},
            )
    return [previews.get(number) for number in range(first, first + len(clips))]  # blocked: None


@task(
    name="score-takes",
    cache_policy=StageCache(stage="score-takes", with_model=True),
    on_failure=[failure_recorder("score")],
    **TRANSIENT,
)
def score_takes(
    ctx: StageContext, clips: list[AssetRef], blocked: list[str | None], prompt: str
) -> list[dict[str, Any] | None]:
    """Each passing take's automatic score against the job's prompt, recorded as a ``score``
    activity on the take; None where the generator has no scorer or the scorer cannot judge
    the prompt. Shown in the review, never deciding alone."""
    failpoint("score")
    scorer = scorer_for(get_settings().generator)
    found: list[dict[str, Any] | None] = []
    for clip, category in zip(clips, blocked, strict=True):
        score = None if scorer is None or category else scorer.score(_frames(clip), prompt)
        if score is None:
            found.append(None)
            continue
        record_stage(
            ctx,
            "score",
            used=[(clip, "take")],
            parameters={"score": score.value, "scorer": score.scorer, **score.details},
            model_version=score.scorer,
        )
        found.append({"value": score.value, "scorer": score.scorer, **score.details})
    return found


def _frames(clip: AssetRef) -> np.ndarray:
    """The clip's frames as uint8 (T, H, W, 3)."""
    import av

    with av.open(str(local_copy(clip))) as container:
        return np.stack([f.to_ndarray(format="rgb24") for f in container.decode(video=0)])


def review_id_of(flow_run_id: uuid.UUID | None) -> uuid.UUID:
    """A versions run's review: one per run, so a retried run opens no second one."""
    if flow_run_id is None:
        return uuid.uuid4()
    return uuid.uuid5(uuid.NAMESPACE_URL, f"reelforge:review:{flow_run_id}")


@task(
    name="open-review",
    cache_policy=StageCache(stage="open-review"),
    on_failure=[failure_recorder("review")],
    **TRANSIENT,
)
def open_review(
    ctx: StageContext,
    job: VideoJob,
    inputs: dict[AssetKind, AssetRef],
    brand: BrandKit,
    takes: list[Take],
    on_timeout: str | None = None,
    review_id: uuid.UUID | None = None,
    renditions: list[VideoJob] | None = None,
) -> ReviewOpened:
    """Hold the takes for a decision in a ``reviews`` row (``review_id``: add them to that
    open review, `review more`; ``renditions``: the jobs of every rendition to publish, by
    default the job's own). Nothing waits for it: the run ends here."""
    failpoint("review")
    settings = get_settings()
    timeout = settings.review_timeout_seconds
    with session_scope() as session:
        if review_id is not None:
            row = session.get(Review, review_id, with_for_update=True)
            if row is None or row.status is not ReviewStatus.awaiting_review:
                raise InvalidInput(f"review {review_id} is no longer waiting for a decision")
            known = {t["take"] for t in row.takes}
            row.takes = row.takes + [
                t.model_dump(mode="json") for t in takes if t.take not in known
            ]
        else:
            review_id = review_id_of(ctx.flow_run_id)
            session.execute(
                insert(Review)
                .values(
                    id=review_id,
                    tenant_id=ctx.tenant_id,
                    status=ReviewStatus.awaiting_review,
                    job=job.model_dump(mode="json"),
                    inputs={
                        "prompt": inputs[AssetKind.prompt].model_dump(mode="json"),
                        "overlay": _dump(inputs.get(AssetKind.overlay_text)),
                        "brand": brand.model_dump(mode="json"),
                        "renditions": [
                            {k: getattr(r, k) for k in RENDITION_FIELDS} for r in renditions or []
                        ],
                    },
                    takes=[t.model_dump(mode="json") for t in takes],
                    flow_run_id=ctx.flow_run_id,
                    campaign_id=ctx.campaign_id,
                    on_timeout=on_timeout or settings.review_on_timeout,
                    expires_at=datetime.now(UTC) + timedelta(seconds=timeout) if timeout else None,
                )
                .on_conflict_do_nothing(index_elements=["id"])
            )
        row = session.get_one(Review, review_id)
        return ReviewOpened(
            flow_run_id=ctx.flow_run_id,
            review_id=row.id,
            status=row.status,
            takes=[Take.model_validate(t) for t in row.takes],
        )


def _dump(ref: AssetRef | None) -> dict[str, Any] | None:
    return None if ref is None else ref.model_dump(mode="json")


def collect_takes(
    jobs: list[VideoJob],
    enhanced: list[tuple[AssetRef, Any]],
    made: list[tuple[AssetRef, bool]],
    blocked: list[str | None],
    previews: list[AssetRef | None],
    scores: list[dict[str, Any] | None],
    first: int = 1,
) -> list[Take]:
    """The takes, as the review shows them, from the stages' outputs in take order."""
    rows = zip(jobs, enhanced, made, blocked, previews, scores, strict=True)
    return [
        Take(
            take=number,
            seed=job.seed,
            clip=clip,
            enhanced=ref,
            enhanced_prompt=result.enhanced_prompt,
            generation_cached=cached,
            passed=category is None,
            category=category,
            preview=preview,
            score=None if score is None else score["value"],
            score_details=score or {},
        )
        for number, (job, (ref, result), (clip, cached), category, preview, score) in enumerate(
            rows, start=first
        )
    ]


def load_plan(review_id: uuid.UUID) -> ReviewPlan:
    """An approved review's chosen take and what its publishing run needs."""
    with session_scope() as session:
        row = session.get(Review, review_id)
        if row is None or row.pick is None:
            raise InvalidInput(f"review {review_id} has no approved take")
        take = Take.model_validate(next(t for t in row.takes if t["take"] == row.pick))
        job = VideoJob.model_validate(row.job).model_copy(update={"seed": take.seed})
        renditions = row.inputs.get("renditions") or [{}]
        overlay = row.inputs.get("overlay")
        return ReviewPlan(
            review_id=row.id,
            jobs=[job.model_copy(update=r) for r in renditions],
            take=take,
            prompt=AssetRef.model_validate(row.inputs["prompt"]),
            overlay=None if overlay is None else AssetRef.model_validate(overlay),
            brand=BrandKit.model_validate(row.inputs.get("brand") or {}),
        )


@task(
    name="close-review",
    cache_policy=StageCache(stage="close-review"),
    on_failure=[failure_recorder("review")],
    **TRANSIENT,
)
def close_review(ctx: StageContext, plan: ReviewPlan, result: VideoResult) -> VideoResult:
    """Mark the review published with what was published (what `approve --json` prints)."""
    failpoint("close-review")
    with session_scope() as session:
        row = session.get_one(Review, plan.review_id, with_for_update=True)
        if row.status is ReviewStatus.approved:
            row.status = ReviewStatus.published
            row.result = result.model_dump(mode="json")
            row.decision_flow_run_id = ctx.flow_run_id
    return result
