"""Publish stage: copy safe renditions to the published bucket and mark them published.

PostgreSQL refuses the mark without a passing verdict; if it refuses (or fails), the
published copies this call made are removed, so the bucket never holds an unrecorded video.
With REELFORGE_C2PA_SIGNING on (the default), a rendition without a valid ReelForge C2PA
manifest is refused before anything is copied.
"""

from __future__ import annotations

import contextlib

from prefect import task
from sqlalchemy.orm import Session

from db.lineage import mark_published
from db.models import Asset
from db.session import session_scope
from db.webhooks import enqueue_event
from reelforge.core.caching import StageCache
from reelforge.core.failpoints import failpoint
from reelforge.core.jobs import PublishedVideo
from reelforge.core.retry import TRANSIENT
from reelforge.core.settings import get_settings
from reelforge.core.storage import ObjectStore
from tasks.postprocess.stage import Rendered, require_signed
from tasks.record import (
    AssetRef,
    StageContext,
    claim,
    failure_recorder,
    record_stage,
    webhook_subject,
)


def _published_uris(targets: list[AssetRef]) -> dict[str, str] | None:
    """Where the targets were published, if all of them already were: by an identical job
    (they share one rendition) or by this run before a crash that followed the commit.
    Recording it again would say it happened twice."""
    with session_scope() as session:
        rows = [session.get_one(Asset, ref.id) for ref in targets]
        if any(row.published_uri is None for row in rows):
            return None
        return {ref.uri: str(row.published_uri) for ref, row in zip(targets, rows, strict=True)}


def _publish_once(
    ctx: StageContext, rendered: Rendered, store: ObjectStore, beside: list[AssetRef]
) -> dict[str, str]:
    """Copy and mark the rendition, thumbnail and the files ``beside`` them, unless they were
    published already; the published URI of each by its private URI."""
    targets: list[AssetRef] = [rendered.rendition, rendered.thumbnail, *beside]
    earlier = _published_uris(targets)
    if earlier is not None:
        return earlier  # nothing to copy or record: the objects and rows are there
    published: dict[str, str] = {}
    created: list[str] = []
    try:
        for ref in targets:
            uri = store.published_uri(ref.uri, tenant=ctx.tenant)
            if not store.exists(uri):
                store.publish(ref.uri, tenant=ctx.tenant)
                created.append(uri)
            published[ref.uri] = uri

        def mark(session: Session, _rows: list[Asset]) -> None:
            for ref in targets:
                mark_published(session, session.get_one(Asset, ref.id), published[ref.uri])
            video = rendered.rendition
            completed = {
                **webhook_subject(ctx),
                "asset_id": str(video.id),
                "sha256": video.sha256,
                "published_uri": published[video.uri],
                "thumbnail_uri": published[rendered.thumbnail.uri],
                "width": rendered.width,
                "height": rendered.height,
                "duration": rendered.duration,
            }
            enqueue_event(session, ctx.tenant_id, "video.completed", completed)

        record_stage(
            ctx,
            "publish",
            used=[(rendered.rendition, "rendition"), (rendered.thumbnail, "thumbnail")]
            + [(ref, "attachment") for ref in beside],
            parameters={"published": list(published.values())},
            then=mark,
        )
    except BaseException:
        for uri in created:
            with contextlib.suppress(Exception):
                store.delete(uri)
        raise
    return published


@task(
    name="publish",
    cache_policy=StageCache(stage="publish"),
    on_failure=[failure_recorder("publish")],
    **TRANSIENT,
)
def publish(
    ctx: StageContext,
    rendered: Rendered,
    store: ObjectStore | None = None,
    attachments: dict[str, AssetRef] | None = None,
) -> PublishedVideo:
    """Copy the checked rendition and thumbnail to the published bucket and mark them;
    ``attachments`` (an ad's captions, by name) are published beside them, each with its own
    passing verdict (PostgreSQL refuses the mark without one)."""
    failpoint("publish")
    if get_settings().c2pa_signing:
        require_signed(rendered.rendition)  # nothing unsigned is published
    store = store or ObjectStore()
    # Identical jobs in flight publish once: the others wait for the claim, then reuse it.
    with claim(f"publish:{rendered.rendition.id}"):
        published = _publish_once(ctx, rendered, store, list((attachments or {}).values()))
    failpoint("published")  # crash tests: published and recorded, the run not yet finished
    video_uri = published[rendered.rendition.uri]
    return PublishedVideo(
        asset_id=rendered.rendition.id,
        uri=video_uri,
        url=store.presign(video_uri),
        sha256=rendered.rendition.sha256,
        width=rendered.width,
        height=rendered.height,
        duration=rendered.duration,
        thumbnail_url=store.presign(published[rendered.thumbnail.uri]),
        attachments={
            name: store.presign(published[ref.uri]) for name, ref in (attachments or {}).items()
        },
    )
