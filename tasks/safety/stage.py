"""Safety stages: the text gate (and the logo) before any GPU time, the visual gate after each
render (the rendition's inside the post-processing task, on its render pass's own frames).

Both fail closed: an error inside moderation is recorded as a failing verdict and stops
the run, so nothing unchecked can reach the publish stage (PostgreSQL also refuses it).
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from pathlib import Path

from prefect import task
from sqlalchemy.orm import Session

from db.models import Asset, AssetKind, SafetyGate
from db.webhooks import enqueue_event
from reelforge.core.caching import StageCache
from reelforge.core.failpoints import failpoint
from reelforge.core.jobs import VideoJob
from reelforge.core.retry import TRANSIENT
from reelforge.core.storage import ObjectStore
from tasks.record import (
    AssetRef,
    StageContext,
    Verdict,
    failure_recorder,
    local_copy,
    record_stage,
    webhook_subject,
)
from tasks.safety.text import check_text
from tasks.safety.verdicts import TextBlocked, VisualBlocked, VisualVerdict
from tasks.safety.visual import RenderFrames, moderate_file


def _queue_blocked(
    ctx: StageContext, gate: str, categories: list[str | None]
) -> Callable[[Session, list[Asset]], None] | None:
    """When a gate blocks, the tenant's ``video.blocked`` webhooks are queued in the
    transaction that records the verdicts."""
    if not categories:
        return None

    def queue(session: Session, _rows: list[Asset]) -> None:
        blocked = {**webhook_subject(ctx), "gate": gate, "categories": categories}
        enqueue_event(session, ctx.tenant_id, "video.blocked", blocked)

    return queue


def check_text_assets(
    ctx: StageContext, texts: dict[str, tuple[AssetRef, str]], policy: str
) -> None:
    """Check every text (raw prompt, enhanced prompt, overlays); record all verdicts."""
    checked = [
        (ref, check_text(text, field=field, policy=policy)) for field, (ref, text) in texts.items()
    ]
    record_stage(
        ctx,
        "text_safety",
        used=[(ref, field) for field, (ref, _) in texts.items()],
        verdicts=[
            Verdict(
                asset=ref,
                gate=SafetyGate.text,
                passed=v.passed,
                category=v.category,
                policy_version=v.policy_version,
                model_version=f"terms:{v.term_list_version}",
                details={"field": v.field, "rule_id": v.rule_id, "policy": v.policy_name},
            )
            for ref, v in checked
        ],
        parameters={"policy": policy},
        then=_queue_blocked(ctx, "text", [v.category for _, v in checked if not v.passed]),
    )
    blocked = [v for _, v in checked if not v.passed]
    if blocked:
        raise TextBlocked(blocked[0], blocked)


@task(
    name="text-safety",
    cache_policy=StageCache(stage="text-safety"),
    on_failure=[failure_recorder("text_safety")],
    **TRANSIENT,
)
def check_texts(
    ctx: StageContext,
    inputs: dict[AssetKind, AssetRef],
    enhanced: AssetRef,
    enhanced_text: str,
    job: VideoJob,
    logo: AssetRef | None = None,
) -> None:
    """The raw prompt, the enhanced prompt (an enhancer can bring risk back) and overlays;
    then the brand's logo through the visual gate (its own ``visual_safety`` activity and
    verdict), in this one task run since both come before any GPU time."""
    failpoint("text-safety")
    texts = {
        "prompt": (inputs[AssetKind.prompt], job.prompt),
        "enhanced_prompt": (enhanced, enhanced_text),
    }
    if job.text:
        texts["overlay_text"] = (inputs[AssetKind.overlay_text], job.text)
    check_text_assets(ctx, texts, job.policy)
    if logo is not None:
        judge(ctx, [logo], job.policy)


@task(
    name="visual-safety",
    cache_policy=StageCache(stage="visual-safety"),
    on_failure=[failure_recorder("visual_safety")],
    **TRANSIENT,
)
def moderate(
    ctx: StageContext, refs: list[AssetRef], policy: str, store: ObjectStore | None = None
) -> list[VisualVerdict]:
    """Moderate images and videos and record a verdict for each; blocked ones are quarantined.

    A thumbnail that post-processing cut from a rendition in the same call (its media has
    ``at``) is judged as that rendition's frame, in one pass with it, and shares its verdict.
    """
    failpoint("visual-safety")
    return judge(ctx, refs, policy, store)


def judge_rendition(
    ctx: StageContext,
    rendition: AssetRef,
    thumbnail: AssetRef,
    policy: str,
    frames: RenderFrames | None,
) -> list[VisualVerdict]:
    """The gate on a rendition and its thumbnail, inside the post-processing task that made
    them: the rendition is judged on the frames of its own render pass (``frames``, checked
    against the file; None: the file is decoded), the thumbnail as its frame, and the
    verdicts are recorded as a ``visual_safety`` activity before anything can be published.
    Blocked or failed: the two are quarantined and ``VisualBlocked`` is raised, as by
    ``moderate``."""
    return judge(ctx, [rendition, thumbnail], policy, None, frames)


def judge(
    ctx: StageContext,
    refs: list[AssetRef],
    policy: str,
    store: ObjectStore | None = None,
    frames: RenderFrames | None = None,
) -> list[VisualVerdict]:
    """Judge ``refs``, record every verdict (fail closed: an error is a failing verdict) and
    quarantine and raise ``VisualBlocked`` if any did not pass. ``frames``: the render pass's
    samples of the rendition among ``refs``."""
    store = store or ObjectStore()
    items = [(ref, local_copy(ref, store)) for ref in refs]
    pair = _rendition_and_its_thumbnail(items)
    found: dict[uuid.UUID, VisualVerdict] = {}
    for ref, path in items:
        if pair and ref is pair[1][0]:
            continue  # judged with the rendition
        extra: dict = {}
        if pair and ref is pair[0][0]:
            thumb, thumb_path = pair[1]
            extra = dict(thumbnail=thumb_path, thumbnail_time=float(thumb.media["at"]),
                         thumbnail_is_frame=True)  # fmt: skip
        if frames is not None and ref.kind == AssetKind.rendition:
            extra["rendered"] = frames
        try:
            found[ref.id] = moderate_file(path, policy=policy, **extra)
        except Exception as exc:  # fail closed: the error is the verdict
            found[ref.id] = VisualVerdict.failed_closed(exc, path=path.name)
    if pair:
        found[pair[1][0].id] = found[pair[0][0].id]
    verdicts = [found[ref.id] for ref, _ in items]
    record_stage(
        ctx,
        "visual_safety",
        used=[(ref, "input") for ref, _ in items],
        verdicts=[
            Verdict(
                asset=ref,
                gate=SafetyGate.visual,
                passed=v.passed,
                category=v.category,
                policy_version=v.policy_version or "unknown",
                model_version=f"{v.model.model_id}@{v.model.sha256[:12]}" if v.model else None,
                details=v.model_dump(mode="json", exclude={"frames"}),
            )
            for (ref, _), v in zip(items, verdicts, strict=True)
        ],
        parameters={"policy": policy},
        then=_queue_blocked(ctx, "visual", [v.category for v in verdicts if not v.passed]),
    )
    failed = [(ref, v) for (ref, _), v in zip(items, verdicts, strict=True) if not v.passed]
    if failed:
        _quarantine(store, [ref for ref, _ in failed])
        raise VisualBlocked(failed[0][1])
    return verdicts


def _rendition_and_its_thumbnail(
    items: list[tuple[AssetRef, Path]],
) -> tuple[tuple[AssetRef, Path], tuple[AssetRef, Path]] | None:
    """The rendition and the thumbnail post-processing cut from it (its media has ``at``)."""
    video = next((i for i in items if i[0].kind == AssetKind.rendition), None)
    thumb = next(
        (i for i in items if i[0].kind == AssetKind.thumbnail and "at" in i[0].media), None
    )
    return (video, thumb) if video and thumb else None


def _quarantine(store: ObjectStore, refs: list[AssetRef]) -> None:
    """Tag blocked objects for review; they already live only in the private bucket."""
    from minio.commonconfig import Tags

    from reelforge.core.storage import parse_uri

    for ref in refs:
        bucket, key = parse_uri(ref.uri)
        tags = Tags.new_object_tags()
        tags["reelforge-quarantine"] = "true"
        store.client.set_object_tags(bucket, key, tags)
