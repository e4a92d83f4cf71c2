"""What the API routes and the dashboard both do, scoped to one tenant."""

from __future__ import annotations

import tempfile
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any, BinaryIO, TypeVar

from pydantic import BaseModel
from sqlalchemy import func, select, text
from sqlalchemy.orm import Session

from db import lineage as graph
from db.models import (
    Activity,
    Asset,
    Campaign,
    Generated,
    IdempotencyKey,
    JobRecord,
    JobStatus,
    SafetyVerdict,
    Used,
)
from models.styles import MAX_BYTES
from reelforge.api import schemas, store
from reelforge.api.keys import Principal, key_labels
from reelforge.core.caching import digest
from reelforge.core.errors import InvalidInput
from reelforge.core.settings import Settings
from reelforge.core.storage import ObjectStore
from reelforge.ops.reviews import check_versions
from tasks.safety.policy import load_policy
from tasks.styles import StyleInfo, register_style

Accepted = TypeVar("Accepted", bound=BaseModel)


def submit_video(
    session: Session, settings: Settings, principal: Principal, body: schemas.VideoIn
) -> JobRecord:
    from reelforge.core.jobs import VideoJob
    from tasks.preflight import check_job

    check_versions(body.versions, review=body.review, ask='"review": true')
    fields = body.model_dump(exclude_none=False, exclude={"versions", "review"})
    job = VideoJob(tenant=principal.tenant, **fields)
    load_policy(job.policy, tenant=principal.tenant)  # another tenant's policy: 404
    check_job(job)  # a prompt that cannot run is a 422 now, not a failed job later
    (row,) = store.enqueue(
        session,
        principal,
        requests=[job.model_dump(mode="json")],
        executor=settings.api_executor,
        limit=settings.api_max_queued,
        retry_after=settings.api_retry_after_seconds,
        review=body.review,
        versions=body.versions,
    )
    return row


def campaign_spec(principal: Principal, body: schemas.CampaignIn) -> Any:
    from reelforge.campaigns.spec import CampaignSpec

    data = body.model_dump(exclude={"lut"})
    data["brand"] = {"lut": body.lut} if body.lut else {}
    return CampaignSpec.model_validate({**data, "tenant": principal.tenant})


def submit_campaign(
    session: Session, settings: Settings, principal: Principal, body: schemas.CampaignIn
) -> tuple[JobRecord, Any, uuid.UUID]:
    """All or nothing, in the request's transaction: the queue check first, then the
    campaign's lineage row with its spec, then the job (a refused campaign writes nothing)."""
    from reelforge.campaigns.report import register

    spec = campaign_spec(principal, body)
    load_policy(spec.policy, tenant=principal.tenant)  # another tenant's policy: 404
    request = spec.model_dump(mode="json")
    store.check_storable(request)
    store.admit(
        session,
        principal,
        videos=len(spec.products) * len(spec.renditions),
        limit=settings.api_max_queued,
        retry_after=settings.api_retry_after_seconds,
    )
    campaign_id = register(spec, session=session)
    (row,) = store.insert_jobs(
        session,
        principal,
        kind="campaign",
        requests=[request],
        executor=settings.api_executor,
        campaign_id=campaign_id,
    )
    return row, spec, campaign_id


def submit_ad(
    session: Session, settings: Settings, principal: Principal, body: schemas.AdIn
) -> tuple[JobRecord, Any]:
    """Validate the storyboard as `reelforge ad` does (problems by field, 422 before anything
    is queued), then queue one job that runs the ad flow."""
    from pathlib import Path

    from reelforge.campaigns.storyboard import parse_storyboard

    data = body.model_dump(exclude={"lut"}, exclude_none=True)
    data["brand"] = {"lut": body.lut} if body.lut else {}
    ad = parse_storyboard({**data, "tenant": principal.tenant}, shown="request", base=Path("/"))
    load_policy(ad.policy, tenant=principal.tenant)  # another tenant's policy: 404
    request = ad.model_dump(mode="json")
    store.check_storable(request)
    store.admit(session, principal, videos=len(ad.renditions), limit=settings.api_max_queued,
                retry_after=settings.api_retry_after_seconds)  # fmt: skip
    (row,) = store.insert_jobs(
        session, principal, kind="ad", requests=[request], executor=settings.api_executor
    )
    return row, ad


def submit_personalisations(
    session: Session, settings: Settings, principal: Principal, body: schemas.PersonalisationsIn
) -> list[JobRecord]:
    from reelforge.campaigns.spec import CampaignSpec, PersonalisationRequest, personal_job

    campaign = session.scalars(
        select(Campaign).where(
            Campaign.tenant_id == principal.tenant_id, Campaign.name == body.campaign
        )
    ).one_or_none()
    if campaign is None:
        raise LookupError(f"no campaign {body.campaign!r}")
    spec = CampaignSpec.model_validate(campaign.spec)
    if spec.personalisation is None:
        raise InvalidInput(f"campaign {spec.name} has no personalisation section")
    jobs = [
        personal_job(spec, PersonalisationRequest.model_validate(user.model_dump())).model_dump(
            mode="json"
        )
        for user in body.users
    ]
    return store.enqueue(
        session,
        principal,
        requests=jobs,
        executor=settings.api_executor,
        limit=settings.api_max_queued,
        retry_after=settings.api_retry_after_seconds,
        campaign_id=campaign.id,
    )


def idempotent(
    session: Session,
    principal: Principal,
    key: str | None,
    *,
    endpoint: str,
    body: BaseModel,
    answer: Callable[[], Accepted],
    model: type[Accepted],
) -> Accepted:
    """``answer()`` once per ``Idempotency-Key`` of the tenant: the same key with the same
    request gets the stored answer again (no new job); with another request, 422.

    The key is written in the request's transaction, so a refused submission (429, 422)
    stores nothing and may be sent again with the same key. A per-key advisory lock makes
    concurrent requests with one key wait for the first one's answer.
    """
    if key is None:
        return answer()
    session.execute(
        text("SELECT pg_advisory_xact_lock(hashtextextended(:key, 0))"),
        {"key": f"reelforge-idempotency:{principal.tenant_id}:{key}"},
    )
    request_sha256 = digest(endpoint, body.model_dump(mode="json"))
    earlier = session.get(IdempotencyKey, (principal.tenant_id, key))
    if earlier is not None:
        if (earlier.endpoint, earlier.request_sha256) != (endpoint, request_sha256):
            raise InvalidInput(
                f"Idempotency-Key {key!r} was already used with a different request "
                f"({earlier.endpoint}): send a new key with a new request"
            )
        return model.model_validate(earlier.response)
    made = answer()
    session.add(
        IdempotencyKey(
            tenant_id=principal.tenant_id,
            key=key,
            endpoint=endpoint,
            request_sha256=request_sha256,
            response=made.model_dump(mode="json"),
        )
    )
    session.flush()
    return made


# --- reading videos -----------------------------------------------------------------------------


def rendition_asset_id(job: JobRecord) -> uuid.UUID | None:
    video = (job.result or {}).get("video") or {}
    try:
        return uuid.UUID(str(video["asset_id"]))
    except (KeyError, ValueError):
        return None


def thumbnail_of(session: Session, principal: Principal, asset_id: uuid.UUID) -> Asset | None:
    """The thumbnail made by the same activity as the rendition."""
    made_by = select(Generated.activity_id).where(Generated.asset_id == asset_id)
    return session.scalars(
        select(Asset)
        .join(Generated, Generated.asset_id == Asset.id)
        .where(
            Generated.activity_id.in_(made_by),
            Asset.kind == "thumbnail",
            Asset.tenant_id == principal.tenant_id,
        )
        .limit(1)
    ).first()


def ad_view(
    session: Session, principal: Principal, objects: ObjectStore, job: JobRecord
) -> schemas.Ad:
    """An ad job as the API shows it: its published renditions, each with the captions
    published beside it (the files its publish activity used as attachments)."""
    videos = []
    for video in (job.result or {}).get("videos", []):
        asset = session.scalars(
            select(Asset).where(
                Asset.id == uuid.UUID(str(video["asset_id"])),
                Asset.tenant_id == principal.tenant_id,
                Asset.published_uri.is_not(None),
            )
        ).one_or_none()
        if asset is None:
            continue
        published_with = select(Used.activity_id).where(
            Used.asset_id == asset.id, Used.role == "rendition"
        )
        beside = session.scalars(
            select(Asset)
            .join(Used, Used.asset_id == Asset.id)
            .where(
                Used.activity_id.in_(published_with),
                Used.role == "attachment",
                Asset.published_uri.is_not(None),
            )
        ).all()
        media = asset.media or {}
        videos.append(
            schemas.AdVideo(
                asset_id=asset.id,
                url=objects.presign(asset.published_uri),
                width=_int(media.get("width")),
                height=_int(media.get("height")),
                duration=_float(media.get("duration")),
                captions={
                    str(c.media.get("format") or Path(c.uri).suffix.lstrip(".")): objects.presign(
                        c.published_uri
                    )
                    for c in beside
                },
            )
        )
    return schemas.Ad(
        id=job.id,
        name=str((job.request or {}).get("name", "")),
        status=job.status.value,
        error=job.error,
        flow_run_id=job.flow_run_id,
        videos=videos,
    )


def video_view(
    session: Session,
    principal: Principal,
    objects: ObjectStore | None,
    job: JobRecord,
    *,
    internal: bool = False,
) -> schemas.Video:
    """A job as the API shows it; presigned URLs only for the caller's published objects
    (``internal``: the dashboard may also show private thumbnails to the tenant's reviewers)."""
    request = job.request or {}
    result = job.result or {}
    renditions: list[schemas.Rendition] = []
    verdicts: list[schemas.Verdict] = []
    asset_id = rendition_asset_id(job) if job.status == JobStatus.completed else None
    if asset_id is not None:
        asset = session.scalars(
            select(Asset).where(Asset.id == asset_id, Asset.tenant_id == principal.tenant_id)
        ).one_or_none()
        if asset is not None:
            media = asset.media or {}
            url = thumb_url = None
            if objects is not None and asset.published_uri:
                url = objects.presign(asset.published_uri)
                thumb = thumbnail_of(session, principal, asset.id)
                if thumb is not None:
                    if thumb.published_uri:
                        thumb_url = objects.presign(thumb.published_uri)
                    elif internal:
                        thumb_url = objects.presign(thumb.uri, internal=True)
            renditions.append(
                schemas.Rendition(
                    asset_id=asset.id,
                    aspect=request.get("aspect"),
                    width=_int(media.get("width")),
                    height=_int(media.get("height")),
                    duration=_float(media.get("duration")),
                    sha256=asset.sha256,
                    url=url,
                    thumbnail_url=thumb_url,
                )
            )
            verdicts = verdicts_for(session, principal, asset.id)
    return schemas.Video(
        id=job.id,
        status=job.status.value,
        stage=job.stage,
        stages_done=job.stages_done,
        stages_total=job.stages_total,
        flow_run_id=job.flow_run_id,
        attempts=job.attempts,
        error=job.error,
        created_at=job.created_at,
        updated_at=job.updated_at,
        finished_at=job.finished_at,
        review=job.review,
        versions=job.versions,
        review_id=result.get("review_id"),
        submitted_by=key_labels(session, [job.key_id]).get(job.key_id) if job.key_id else None,
        prompt=str(request.get("prompt", "")),
        enhanced_prompt=result.get("enhanced_prompt"),
        generation_cached=result.get("generation_cached"),
        renditions=renditions,
        verdicts=verdicts,
    )


def verdicts_for(
    session: Session, principal: Principal, asset_id: uuid.UUID
) -> list[schemas.Verdict]:
    """Every safety verdict on the asset's upstream chain and on its thumbnail."""
    ids = {node.asset_id for node in graph.upstream(session, asset_id)}
    thumb = thumbnail_of(session, principal, asset_id)
    if thumb is not None:
        ids.add(thumb.id)
    rows = session.execute(
        select(SafetyVerdict, Asset.kind)
        .join(Asset, Asset.id == SafetyVerdict.asset_id)
        .where(SafetyVerdict.asset_id.in_(ids), SafetyVerdict.tenant_id == principal.tenant_id)
        .order_by(SafetyVerdict.created_at)
    )
    out = []
    for verdict, kind in rows:
        details = verdict.details or {}
        flags = details.get("flags") if isinstance(details.get("flags"), list) else []
        out.append(
            schemas.Verdict(
                asset_id=verdict.asset_id,
                asset_kind=str(kind),
                gate=str(verdict.gate),
                passed=verdict.passed,
                category=verdict.category,
                policy_version=verdict.policy_version,
                model_version=verdict.model_version,
                flags=[f for f in flags if isinstance(f, dict)][:50],
                created_at=verdict.created_at,
            )
        )
    return out


def lineage_of(
    session: Session, principal: Principal, asset_id: uuid.UUID, direction: str = "upstream"
) -> list[graph.LineageNode] | None:
    """The asset's lineage, or None if it is not the caller's."""
    owner = session.scalar(select(Asset.tenant_id).where(Asset.id == asset_id))
    if owner != principal.tenant_id:
        return None
    walk = graph.downstream if direction == "downstream" else graph.upstream
    return walk(session, asset_id)


def activity_parameters(session: Session, ids: set[uuid.UUID]) -> dict[uuid.UUID, dict[str, Any]]:
    if not ids:
        return {}
    rows = session.execute(select(Activity.id, Activity.parameters).where(Activity.id.in_(ids)))
    return {aid: params or {} for aid, params in rows}


# --- campaigns ------------------------------------------------------------------------------------


def campaign_summary(session: Session, principal: Principal, campaign: Campaign) -> dict[str, Any]:
    spec = campaign.spec or {}
    products = [str(p.get("sku")) for p in spec.get("products", []) if isinstance(p, dict)]
    jobs = store.list_jobs(session, principal, campaign_id=campaign.id, limit=200)
    by_status: dict[str, int] = {}
    cache_hits = 0
    runs = []
    for job in jobs:
        if job.kind == "campaign":
            report = job.result or {}
            for key in ("made", "cached", "failed", "would_make"):
                if report.get(key):
                    by_status[key] = by_status.get(key, 0) + int(report[key])
            cache_hits += int(report.get("cached") or 0)
            runs.append(
                {
                    "id": str(job.id),
                    "status": job.status.value,
                    "flow_run_id": str(job.flow_run_id) if job.flow_run_id else None,
                    "created_at": job.created_at.isoformat(),
                    "error": job.error,
                }
            )
        else:
            by_status[f"video:{job.status.value}"] = by_status.get(f"video:{job.status.value}", 0) + 1  # fmt: skip
            if (job.result or {}).get("generation_cached"):
                cache_hits += 1
    gpu = session.scalar(
        select(func.coalesce(func.sum(graph.gpu_seconds()), 0))
        .select_from(Activity)
        .join(Generated, Generated.activity_id == Activity.id)
        .join(Asset, Asset.id == Generated.asset_id)
        .where(
            Activity.stage == "generate",
            Activity.tenant_id == principal.tenant_id,
            Asset.campaign_id == campaign.id,
            Asset.kind == "raw_clip",
        )
    )
    return {
        "id": campaign.id,
        "name": campaign.name,
        "products": products,
        "videos_by_status": by_status,
        "gpu_seconds": round(float(gpu or 0), 3),
        "cache_hits": cache_hits,
        "runs": runs,
    }


def campaigns_of(session: Session, principal: Principal) -> list[Campaign]:
    return list(
        session.scalars(
            select(Campaign)
            .where(Campaign.tenant_id == principal.tenant_id)
            .order_by(Campaign.created_at.desc())
            .limit(100)
        )
    )


def _int(value: Any) -> int | None:
    try:
        return int(value)
    except (TypeError, ValueError):
        return None


def _float(value: Any) -> float | None:
    try:
        return float(value)
    except (TypeError, ValueError):
        return None


def add_style(principal: Principal, name: str, upload: BinaryIO) -> StyleInfo:
    """Register an uploaded LoRA as the caller's style ``name``: streamed to a temporary
    file and refused as soon as it passes ``MAX_BYTES`` (no disk filled), then checked and
    stored; the temporary file is removed."""
    with tempfile.TemporaryDirectory(prefix="rf-style-") as tmp:
        path = Path(tmp) / "style.safetensors"
        size = 0
        with path.open("wb") as out:
            while chunk := upload.read(1024 * 1024):
                size += len(chunk)
                if size > MAX_BYTES:
                    raise InvalidInput(
                        f"style file is over {MAX_BYTES // 1024**3} GB: not a style LoRA"
                    )
                out.write(chunk)
        return register_style(principal.tenant, name, path)
