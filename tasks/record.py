"""Storing stage outputs and recording their lineage, all-or-nothing.

Objects are uploaded first, then one database transaction writes the assets, the
activity, its edges and any verdicts. If the transaction fails, the objects this call
uploaded are deleted again: no orphan objects, no half-recorded lineage.
"""

from __future__ import annotations

import contextlib
import mimetypes
import shutil
import uuid
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from prefect.context import FlowRunContext, TaskRunContext
from pydantic import BaseModel
from sqlalchemy import text
from sqlalchemy.orm import Session

from db import lineage
from db.models import ActivityStatus, Asset, AssetKind, Generated, SafetyGate
from db.session import session_scope
from db.webhooks import enqueue_event
from reelforge.core.errors import BlockedBySafety
from reelforge.core.failpoints import failpoint
from reelforge.core.orchestration import queue_wait_seconds
from reelforge.core.storage import ObjectStore, content_key, sha256_file
from tasks.openlineage import emit_stage_run


class AssetRef(BaseModel):
    """A recorded asset, small enough to pass between Prefect tasks."""

    id: uuid.UUID
    kind: AssetKind
    uri: str
    sha256: str
    media: dict[str, Any] = {}

    @classmethod
    def of(cls, asset: Asset) -> AssetRef:
        return cls(
            id=asset.id, kind=asset.kind, uri=asset.uri, sha256=asset.sha256, media=asset.media
        )


class StageContext(BaseModel):
    """Who a stage works for and which run it belongs to."""

    tenant: str
    tenant_id: uuid.UUID
    flow_run_id: uuid.UUID | None = None
    task_run_id: uuid.UUID | None = None
    campaign_id: uuid.UUID | None = None
    audience_id: uuid.UUID | None = None


@dataclass
class Output:
    """A file a stage produced, to be stored as an asset."""

    path: Path
    kind: AssetKind
    media: dict[str, Any] = field(default_factory=dict)
    media_type: str | None = None


@dataclass
class Verdict:
    """A safety verdict to record on an asset in the stage's transaction."""

    asset: AssetRef | int  # an existing asset, or the index of one of this stage's outputs
    gate: SafetyGate
    passed: bool
    policy_version: str
    category: str | None = None
    model_version: str | None = None
    details: dict[str, Any] = field(default_factory=dict)


def context_for(tenant: str, **ids: Any) -> StageContext:
    with session_scope() as session:
        row = lineage.ensure_tenant(session, tenant)
        return StageContext(tenant=tenant, tenant_id=row.id, **ids)


def record_stage(
    ctx: StageContext,
    stage: str,
    *,
    used: Sequence[tuple[AssetRef, str]] = (),
    outputs: Sequence[Output] = (),
    verdicts: Sequence[Verdict] = (),
    parameters: dict[str, Any] | None = None,
    model_version: str | None = None,
    started_at: datetime | None = None,
    store: ObjectStore | None = None,
    then: Callable[[Session, list[Asset]], None] | None = None,
) -> list[AssetRef]:
    """Upload ``outputs``, then record them, the activity and ``verdicts`` in one transaction.

    ``then`` runs inside that transaction with the output rows (for example, to mark them
    published), so it commits or fails together with the lineage. ``started_at`` and the
    task run id default to the current Prefect task run's (``_in_task_run``).
    """
    ctx, started_at = _in_task_run(ctx, started_at)
    store = store or ObjectStore()
    prepared = [_prepare(ctx, out, store) for out in outputs]
    uploaded: list[str] = []
    try:
        for item in prepared:
            if not item.exists:
                store.put_file(
                    item.output.path,
                    tenant=ctx.tenant,
                    kind=item.output.kind.value,
                    asset_id=item.asset_id,
                    content_type=item.media_type,
                    sha256=item.sha256,
                )
                uploaded.append(item.uri)
        failpoint(f"record-{stage}")  # crash tests: objects stored, lineage not yet written
        with session_scope() as session:
            rows = [_asset_row(session, ctx, item) for item in prepared]
            activity = lineage.record_activity(
                session,
                tenant_id=ctx.tenant_id,
                stage=stage,
                used=[(_load(session, ref), role) for ref, role in used],
                generated=rows,
                parameters=_with_queue_wait(parameters),
                model_version=model_version,
                flow_run_id=ctx.flow_run_id,
                task_run_id=ctx.task_run_id,
                started_at=started_at,
                status=ActivityStatus.succeeded,
            )
            for verdict in verdicts:
                target = (
                    rows[verdict.asset]
                    if isinstance(verdict.asset, int)
                    else _load(session, verdict.asset)
                )
                lineage.record_verdict(
                    session,
                    tenant_id=ctx.tenant_id,
                    asset=target,
                    gate=verdict.gate,
                    passed=verdict.passed,
                    policy_version=verdict.policy_version,
                    category=verdict.category,
                    model_version=verdict.model_version,
                    details=verdict.details,
                    activity=activity,
                )
            if then is not None:
                then(session, rows)
            refs = [AssetRef.of(row) for row in rows]
    except BaseException:
        for uri in uploaded:
            _best_effort_delete(store, uri)
        raise
    emit_stage_run(
        stage,
        flow_run_id=ctx.flow_run_id,
        task_run_id=ctx.task_run_id,
        inputs=[ref for ref, _ in used],
        outputs=refs,
        model_version=model_version,
        started_at=started_at,
    )
    return refs


def _in_task_run(
    ctx: StageContext, started_at: datetime | None
) -> tuple[StageContext, datetime | None]:
    """The stage's task run id and start time, from the current Prefect task run where the
    caller gave none (outside a task run: as given).

    A stage is one task run, so the attempt's start is when the stage started: taking it
    here gives every activity its real duration without each stage timing itself. A task
    that records several activities passes each one's own ``started_at``.
    """
    context = TaskRunContext.get()
    if context is None:
        return ctx, started_at
    if ctx.task_run_id is None:
        ctx = ctx.model_copy(update={"task_run_id": context.task_run.id})
    return ctx, started_at or context.task_run.start_time


def _with_queue_wait(parameters: dict[str, Any] | None) -> dict[str, Any] | None:
    """A stage's parameters with its flow run's queue wait (``queue_wait_s``), where the
    stage runs in a flow run: lineage keeps how long the work waited for a worker."""
    context = FlowRunContext.get()
    wait = queue_wait_seconds(context.flow_run) if context and context.flow_run else None
    if wait is None:
        return parameters
    return {**(parameters or {}), "queue_wait_s": wait}


def record_failure(
    ctx: StageContext,
    stage: str,
    error: str,
    *,
    used: Sequence[tuple[AssetRef, str]] = (),
    started_at: datetime | None = None,
) -> None:
    """Record a failed stage run (no outputs), so ops see what failed and with which inputs;
    the tenant's ``video.failed`` webhooks are queued in the same transaction."""
    ctx, started_at = _in_task_run(ctx, started_at)
    with session_scope() as session:
        lineage.record_activity(
            session,
            tenant_id=ctx.tenant_id,
            stage=stage,
            used=[(_load(session, ref), role) for ref, role in used],
            parameters=_with_queue_wait(None),
            flow_run_id=ctx.flow_run_id,
            task_run_id=ctx.task_run_id,
            started_at=started_at,
            status=ActivityStatus.failed,
            error=error[:2000],
        )
        enqueue_event(
            session,
            ctx.tenant_id,
            "video.failed",
            {**webhook_subject(ctx), "stage": stage, "error": error[:500]},
        )
    emit_stage_run(
        stage,
        flow_run_id=ctx.flow_run_id,
        task_run_id=ctx.task_run_id,
        inputs=[ref for ref, _ in used],
        error=error[:2000],
        started_at=started_at,
    )


def webhook_subject(ctx: StageContext) -> dict[str, Any]:
    """Who and which run a webhook event is about (ids only: no prompts, no personal data)."""
    ids = {
        "tenant": ctx.tenant,
        "flow_run_id": ctx.flow_run_id,
        "campaign_id": ctx.campaign_id,
        "audience_id": ctx.audience_id,
    }
    return {key: str(value) for key, value in ids.items() if value is not None}


def failure_recorder(stage: str) -> Callable[[Any, Any, Any], None]:
    """An ``on_failure`` hook for a stage task: its final failure (after retries) becomes an
    activity with status ``failed``, the error and the inputs it was given.

    Content blocked by a safety gate is not a failure: its verdict is already recorded.
    """

    def record_failed_stage(task: Any, task_run: Any, state: Any) -> None:
        run = TaskRunContext.get()
        parameters = run.parameters if run is not None and run.parameters else {}
        ctx = parameters.get("ctx")
        error = state.result(raise_on_failure=False)
        if not isinstance(ctx, StageContext) or isinstance(error, BlockedBySafety):
            return
        used = [(ref, name) for name, value in parameters.items() for ref in _asset_refs(value)]
        message = " ".join(str(error).split()) if isinstance(error, BaseException) else ""
        record_failure(
            ctx,
            stage,
            f"{type(error).__name__}: {message}" if message else str(state.message),
            used=used,
            started_at=task_run.start_time,
        )

    return record_failed_stage


def _asset_refs(value: Any) -> list[AssetRef]:
    """The assets a stage argument names: itself, or those in a dict or list of them."""
    if isinstance(value, AssetRef):
        return [value]
    if isinstance(value, dict):
        value = list(value.values())
    if isinstance(value, list | tuple):
        return [item for item in value if isinstance(item, AssetRef)]
    return []


def find_output(ctx: StageContext, kind: AssetKind, **media: str) -> AssetRef | None:
    """An earlier output of this tenant with matching media fields (e.g. a cache key)."""
    from sqlalchemy import select

    with session_scope() as session:
        query = select(Asset).where(Asset.tenant_id == ctx.tenant_id, Asset.kind == kind)
        for key, value in media.items():
            query = query.where(Asset.media[key].astext == value)
        row = session.scalars(query.order_by(Asset.created_at).limit(1)).first()
        return AssetRef.of(row) if row else None


@contextlib.contextmanager
def claim(key: str) -> Iterator[None]:
    """Hold the claim on ``key`` (a stage's cache key) for the block, across every process
    and machine on this database: a PostgreSQL advisory lock held by a transaction of its
    own. Identical jobs in flight then share one output: the second waits here while the
    first makes it, then finds it (check for an existing output inside the block)."""
    with session_scope() as session:
        session.execute(
            text("SELECT pg_advisory_xact_lock(hashtextextended(:key, 0))"),
            {"key": f"reelforge-claim:{key}"},
        )
        yield


def made_with(ref: AssetRef) -> dict[AssetKind, AssetRef]:
    """The assets the activity that made ``ref`` made along with it, by kind (a
    rendition's thumbnail and preview)."""
    from sqlalchemy import select

    with session_scope() as session:
        made_by = select(Generated.activity_id).where(Generated.asset_id == ref.id)
        rows = session.scalars(
            select(Asset)
            .join(Generated, Generated.asset_id == Asset.id)
            .where(Generated.activity_id.in_(made_by))
        )
        return {row.kind: AssetRef.of(row) for row in rows}


@dataclass
class _Prepared:
    output: Output
    sha256: str
    media_type: str
    asset_id: uuid.UUID
    uri: str
    exists: bool


def _prepare(ctx: StageContext, out: Output, store: ObjectStore) -> _Prepared:
    sha = sha256_file(out.path)
    media_type = (
        out.media_type or mimetypes.guess_type(out.path.name)[0] or "application/octet-stream"
    )
    with session_scope() as session:
        existing = lineage.find_asset(session, tenant_id=ctx.tenant_id, kind=out.kind, sha256=sha)
        if existing is not None:
            return _Prepared(out, sha, media_type, existing.id, existing.uri, True)
    asset_id = uuid.uuid4()
    key = content_key(ctx.tenant, out.kind.value, sha, out.path.suffix.lower())
    return _Prepared(out, sha, media_type, asset_id, f"s3://{store.private}/{key}", False)


def _asset_row(session: Session, ctx: StageContext, item: _Prepared) -> Asset:
    row, _ = lineage.get_or_create_asset(
        session,
        tenant_id=ctx.tenant_id,
        kind=item.output.kind,
        sha256=item.sha256,
        size_bytes=item.output.path.stat().st_size,
        uri=item.uri,
        media_type=item.media_type,
        media=item.output.media,
        asset_id=item.asset_id,
        campaign_id=ctx.campaign_id,
        audience_id=ctx.audience_id,
    )
    return row


def _load(session: Session, ref: AssetRef) -> Asset:
    return session.get_one(Asset, ref.id)


def _best_effort_delete(store: ObjectStore, uri: str) -> None:
    # Whatever survives this is found by the orphan sweep (`reelforge doctor --repair`).
    with contextlib.suppress(Exception):
        store.delete(uri)


def register_reference(
    ctx: StageContext, kind: AssetKind, *, sha256: str, uri: str, media: dict[str, Any]
) -> AssetRef:
    """An asset that stays where it is (a model checkpoint directory): a row, no upload."""
    with session_scope() as session:
        row, _ = lineage.get_or_create_asset(
            session,
            tenant_id=ctx.tenant_id,
            kind=kind,
            sha256=sha256,
            size_bytes=int(media.get("size_bytes", 0)),
            uri=uri,
            media_type="application/x-diffusers-checkpoint",
            media=media,
        )
        return AssetRef.of(row)


def local_copy(ref: AssetRef, store: ObjectStore | None = None) -> Path:
    """The asset's bytes on local disk, from a content-addressed cache under REELFORGE_HOME.

    Stages exchange asset refs, not paths, so a retried task on another machine works
    the same; the cache makes that free on the machine that wrote the file.
    """
    from reelforge.core.settings import get_settings

    suffix = Path(ref.uri).suffix
    path = get_settings().home_dir / "cache" / "assets" / f"{ref.sha256}{suffix}"
    if path.exists() and sha256_file(path) == ref.sha256:
        return path
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex}")
    (store or ObjectStore()).download(ref.uri, tmp)
    tmp.replace(path)
    return path


def cache_file(path: Path, sha256: str) -> Path:
    """Keep a just-written output in the local asset cache (saves a download later)."""
    from reelforge.core.settings import get_settings

    target = get_settings().home_dir / "cache" / "assets" / f"{sha256}{path.suffix.lower()}"
    if not target.exists():
        target.parent.mkdir(parents=True, exist_ok=True)
        tmp = target.with_name(f".{target.name}.{uuid.uuid4().hex}")
        shutil.copyfile(path, tmp)
        tmp.replace(target)
    return target


def text_output(directory: Path, name: str, text: str, kind: AssetKind, **media: Any) -> Output:
    """A text (prompt, overlay) written to ``directory/name`` as a UTF-8 text asset."""
    path = directory / name
    path.write_text(text, encoding="utf-8")
    return Output(path=path, kind=kind, media=media, media_type="text/plain; charset=utf-8")
