"""/v1: videos, campaigns, personalisations, lineage, retries. Every query is the caller's
tenant's: another tenant's ids answer 404, exactly like ids that do not exist."""

from __future__ import annotations

import uuid
from typing import Literal

from fastapi import APIRouter, Depends, File, Form, HTTPException, Query, Request, UploadFile
from fastapi.responses import RedirectResponse
from sqlalchemy import select
from sqlalchemy.orm import Session

from db.models import Campaign, JobRecord, JobStatus
from reelforge.api import ops_view, reviews, schemas, service, store
from reelforge.api.deps import (
    get_idempotency_key,
    get_principal,
    get_session,
    get_settings_dep,
    get_store,
)
from reelforge.api.keys import Principal
from reelforge.core.errors import InvalidInput
from reelforge.core.settings import Settings
from reelforge.core.storage import ObjectStore
from reelforge.ops import reviews as ops_reviews
from reelforge.ops import webhooks
from tasks import styles

ERRORS = {
    401: {"model": schemas.Problem, "description": "Missing or invalid API key."},
    404: {"model": schemas.Problem, "description": "Not found (or not the caller's)."},
    422: {"model": schemas.Problem, "description": "Invalid input."},
}
BUSY = {429: {"model": schemas.Problem, "description": "Too many waiting jobs: see Retry-After."}}
router = APIRouter(prefix="/v1", responses=ERRORS)


def _not_found(what: str) -> HTTPException:
    return HTTPException(status_code=404, detail=f"no {what} with this id")


def _callers_video(
    video_id: uuid.UUID,
    principal: Principal = Depends(get_principal),
    session: Session = Depends(get_session),
) -> JobRecord:
    """The path's video, if it is the caller's (another tenant's answers 404 too)."""
    job = store.get_job(session, principal, video_id, kind="video")
    if job is None:
        raise _not_found("video")
    return job


def _links(job_id: uuid.UUID) -> dict[str, str]:
    return {"self": f"/v1/videos/{job_id}", "content": f"/v1/videos/{job_id}/content"}


@router.post("/videos", status_code=202, response_model=schemas.JobAccepted, responses=BUSY)
def create_video(
    body: schemas.VideoIn,
    principal: Principal = Depends(get_principal),
    session: Session = Depends(get_session),
    settings: Settings = Depends(get_settings_dep),
    idempotency_key: str | None = Depends(get_idempotency_key),
) -> schemas.JobAccepted:
    """Accept a video job; it runs asynchronously (poll GET /v1/videos/{id})."""

    def accept() -> schemas.JobAccepted:
        row = service.submit_video(session, settings, principal, body)
        return schemas.JobAccepted(id=row.id, status=row.status.value, links=_links(row.id))

    return service.idempotent(
        session,
        principal,
        idempotency_key,
        endpoint="POST /v1/videos",
        body=body,
        answer=accept,
        model=schemas.JobAccepted,
    )


@router.get("/videos", response_model=schemas.VideoList)
def list_videos(
    status: Literal[
        "queued", "retrying", "submitted", "running", "completed", "failed", "cancelled"
    ]
    | None = None,
    limit: int = Query(default=20, ge=1, le=200),
    offset: int = Query(default=0, ge=0, le=100_000),
    principal: Principal = Depends(get_principal),
    session: Session = Depends(get_session),
    objects: ObjectStore = Depends(get_store),
) -> schemas.VideoList:
    jobs = store.list_jobs(
        session,
        principal,
        kind="video",
        status=JobStatus(status) if status else None,
        limit=limit,
        offset=offset,
    )
    videos = [service.video_view(session, principal, objects, job) for job in jobs]
    return schemas.VideoList(videos=videos, count=len(videos))


@router.get("/videos/{video_id}", response_model=schemas.Video)
def get_video(
    job: JobRecord = Depends(_callers_video),
    principal: Principal = Depends(get_principal),
    session: Session = Depends(get_session),
    objects: ObjectStore = Depends(get_store),
) -> schemas.Video:
    """Status, stage progress, renditions with presigned URLs, safety verdicts."""
    return service.video_view(session, principal, objects, job)


@router.post("/videos/{video_id}/cancel", status_code=202, response_model=schemas.Video)
def cancel_video(
    job: JobRecord = Depends(_callers_video),
    principal: Principal = Depends(get_principal),
    session: Session = Depends(get_session),
    objects: ObjectStore = Depends(get_store),
) -> schemas.Video:
    """Cancel a video job: a queued one at once (it never starts), a running one through its
    flow run. 409 for a job that has finished."""
    try:
        ops_view.cancel_job(session, job)
    except InvalidInput as exc:
        raise HTTPException(409, detail=str(exc)) from None
    return service.video_view(session, principal, objects, job)


@router.get(
    "/videos/{video_id}/content",
    status_code=307,
    responses={
        307: {"description": "Redirect to the presigned URL."},
        409: {"model": schemas.Problem},
    },
    response_class=RedirectResponse,
)
def video_content(
    job: JobRecord = Depends(_callers_video),
    principal: Principal = Depends(get_principal),
    session: Session = Depends(get_session),
    objects: ObjectStore = Depends(get_store),
) -> RedirectResponse:
    view = service.video_view(session, principal, objects, job)
    url = next((r.url for r in view.renditions if r.url), None)
    if url is None:
        raise HTTPException(status_code=409, detail=f"video {job.id} is {job.status.value}: not published yet")  # fmt: skip
    return RedirectResponse(url, status_code=307)


@router.post("/campaigns", status_code=202, response_model=schemas.CampaignAccepted, responses=BUSY)
def create_campaign(
    body: schemas.CampaignIn,
    principal: Principal = Depends(get_principal),
    session: Session = Depends(get_session),
    settings: Settings = Depends(get_settings_dep),
    idempotency_key: str | None = Depends(get_idempotency_key),
) -> schemas.CampaignAccepted:
    """Run a campaign now: every product in every rendition (unchanged products from cache)."""

    def accept() -> schemas.CampaignAccepted:
        row, spec, campaign_id = service.submit_campaign(session, settings, principal, body)
        return schemas.CampaignAccepted(
            id=row.id,
            campaign_id=campaign_id,
            name=spec.name,
            products=len(spec.products),
            videos=len(spec.products) * len(spec.renditions),
            status=row.status.value,
        )

    return service.idempotent(
        session,
        principal,
        idempotency_key,
        endpoint="POST /v1/campaigns",
        body=body,
        answer=accept,
        model=schemas.CampaignAccepted,
    )


@router.post("/ads", status_code=202, response_model=schemas.AdAccepted, responses=BUSY)
def create_ad(
    body: schemas.AdIn,
    principal: Principal = Depends(get_principal),
    session: Session = Depends(get_session),
    settings: Settings = Depends(get_settings_dep),
    idempotency_key: str | None = Depends(get_idempotency_key),
) -> schemas.AdAccepted:
    """Make a storyboard ad (docs/ads.md): validated before 202, then run as one job."""

    def accept() -> schemas.AdAccepted:
        row, ad = service.submit_ad(session, settings, principal, body)
        return schemas.AdAccepted(id=row.id, name=ad.name, shots=len(ad.shots),
                                  duration_s=ad.duration, status=row.status.value)  # fmt: skip

    return service.idempotent(
        session,
        principal,
        idempotency_key,
        endpoint="POST /v1/ads",
        body=body,
        answer=accept,
        model=schemas.AdAccepted,
    )


@router.get("/ads/{ad_id}", response_model=schemas.Ad)
def get_ad(
    ad_id: uuid.UUID,
    principal: Principal = Depends(get_principal),
    session: Session = Depends(get_session),
    objects: ObjectStore = Depends(get_store),
) -> schemas.Ad:
    """Status of an ad job; once published, each rendition with its WebVTT and SRT URLs."""
    job = store.get_job(session, principal, ad_id, kind="ad")
    if job is None:
        raise _not_found("ad")
    return service.ad_view(session, principal, objects, job)


@router.get("/campaigns/{campaign_id}", response_model=schemas.Campaign)
def get_campaign(
    campaign_id: uuid.UUID,
    principal: Principal = Depends(get_principal),
    session: Session = Depends(get_session),
) -> schemas.Campaign:
    campaign = session.scalars(
        select(Campaign).where(
            Campaign.id == campaign_id, Campaign.tenant_id == principal.tenant_id
        )
    ).one_or_none()
    if campaign is None:
        raise _not_found("campaign")
    return schemas.Campaign(**service.campaign_summary(session, principal, campaign))


@router.post(
    "/personalisations",
    status_code=202,
    response_model=schemas.PersonalisationsAccepted,
    responses=BUSY,
)
def create_personalisations(
    body: schemas.PersonalisationsIn,
    principal: Principal = Depends(get_principal),
    session: Session = Depends(get_session),
    settings: Settings = Depends(get_settings_dep),
    idempotency_key: str | None = Depends(get_idempotency_key),
) -> schemas.PersonalisationsAccepted:
    """One personalised video per user (the shared base clip comes from the cache)."""

    def accept() -> schemas.PersonalisationsAccepted:
        try:
            rows = service.submit_personalisations(session, settings, principal, body)
        except LookupError:
            raise _not_found("campaign") from None
        return schemas.PersonalisationsAccepted(
            campaign=body.campaign, ids=[r.id for r in rows], count=len(rows)
        )

    return service.idempotent(
        session,
        principal,
        idempotency_key,
        endpoint="POST /v1/personalisations",
        body=body,
        answer=accept,
        model=schemas.PersonalisationsAccepted,
    )


@router.get("/assets/{asset_id}/lineage", response_model=schemas.LineageOut)
def asset_lineage(
    asset_id: uuid.UUID,
    direction: Literal["upstream", "downstream"] = "upstream",
    principal: Principal = Depends(get_principal),
    session: Session = Depends(get_session),
) -> schemas.LineageOut:
    """Where the asset came from (upstream) or what was derived from it (downstream)."""
    nodes = service.lineage_of(session, principal, asset_id, direction)
    if not nodes:
        raise _not_found("asset")
    return schemas.LineageOut(
        asset_id=asset_id,
        direction=direction,
        nodes=[
            schemas.LineageNodeOut(
                asset_id=n.asset_id,
                kind=n.kind,
                sha256=n.sha256,
                depth=n.depth,
                child_id=n.child_id,
                role=n.role,
                stage=n.stage,
                activity_id=n.activity_id,
                model_version=n.model_version,
                published=n.published_uri is not None,
            )
            for n in nodes
        ],
    )


@router.post(
    "/runs/{run_id}/retry",
    status_code=202,
    response_model=schemas.RetryAccepted,
    responses={409: {"model": schemas.Problem, "description": "Not failed."}},
)
def retry_run(
    run_id: uuid.UUID,
    principal: Principal = Depends(get_principal),
    session: Session = Depends(get_session),
) -> schemas.RetryAccepted:
    """Retry a failed job by its flow-run id (or job id): finished stages come back cached."""
    job = store.request_retry(session, principal, run_id)
    if job is None:
        raise _not_found("run")
    return schemas.RetryAccepted(id=job.id, flow_run_id=job.flow_run_id, status=job.status.value)


# --- webhooks ----------------------------------------------------------------------------------


@router.post("/webhooks", status_code=201, response_model=schemas.WebhookCreated)
def create_webhook(
    body: schemas.WebhookIn, principal: Principal = Depends(get_principal)
) -> schemas.WebhookCreated:
    """Register an endpoint for the caller's events; the signing secret is shown only here."""
    endpoint, secret = webhooks.add_endpoint(principal.tenant, body.url, list(body.events))
    return schemas.WebhookCreated(**endpoint.model_dump(), secret=secret)


@router.get("/webhooks", response_model=schemas.WebhookList)
def list_webhooks(principal: Principal = Depends(get_principal)) -> schemas.WebhookList:
    return schemas.WebhookList(endpoints=webhooks.list_endpoints(principal.tenant))


@router.delete("/webhooks/{endpoint_id}", status_code=204)
def delete_webhook(endpoint_id: uuid.UUID, principal: Principal = Depends(get_principal)) -> None:
    try:
        webhooks.remove_endpoint(endpoint_id, tenant=principal.tenant)
    except InvalidInput:
        raise _not_found("webhook endpoint") from None


@router.get("/webhooks/deliveries", response_model=schemas.DeliveryList)
def list_webhook_deliveries(
    principal: Principal = Depends(get_principal),
    limit: int = Query(50, ge=1, le=500),
) -> schemas.DeliveryList:
    """The caller's newest events and how their last delivery went."""
    return schemas.DeliveryList(deliveries=webhooks.recent_deliveries(principal.tenant, limit))


@router.post("/webhooks/deliveries/{event_id}/redeliver", status_code=202)
def redeliver_webhook(event_id: uuid.UUID, principal: Principal = Depends(get_principal)) -> None:
    """Queue an event again (same webhook-id); the dispatcher delivers it."""
    try:
        webhooks.redeliver(event_id, tenant=principal.tenant)
    except InvalidInput:
        raise _not_found("webhook event") from None


# --- styles ------------------------------------------------------------------------------------


@router.post("/styles", status_code=201, response_model=schemas.StyleOut)
def create_style(
    name: str = Form(..., description="The style's name: lowercase letters, digits, '-'."),
    file: UploadFile = File(..., description="The LoRA, .safetensors in diffusers' format."),
    principal: Principal = Depends(get_principal),
) -> schemas.StyleOut:
    """Check an uploaded LoRA against the model and register it as the caller's style NAME
    (only uploads: the server never reads a path a caller names)."""
    return schemas.StyleOut.model_validate(
        service.add_style(principal, name, file.file).model_dump()
    )


@router.get("/styles", response_model=schemas.StyleList)
def list_styles(principal: Principal = Depends(get_principal)) -> schemas.StyleList:
    return schemas.StyleList(
        styles=[
            schemas.StyleOut.model_validate(s.model_dump())
            for s in styles.list_styles(principal.tenant)
        ]
    )


@router.delete("/styles/{name}", status_code=204)
def delete_style(name: str, principal: Principal = Depends(get_principal)) -> None:
    """Remove a style name; videos made with it keep it in their lineage."""
    try:
        styles.remove_style(principal.tenant, name)
    except InvalidInput:
        raise _not_found("style") from None


# --- reviews (docs/review.md) -----------------------------------------------------------------


@router.get("/reviews", response_model=schemas.ReviewList)
def list_reviews(
    status: Literal["awaiting_review", "approved", "published", "rejected"] | None = None,
    principal: Principal = Depends(get_principal),
) -> schemas.ReviewList:
    """The tenant's reviews, newest first (``status=awaiting_review``: the open ones)."""
    rows = [schemas.ReviewOut.model_validate(r) for r in
            ops_reviews.list_reviews(principal.tenant, status=status)]  # fmt: skip
    return schemas.ReviewList(reviews=rows, count=len(rows))


@router.get("/reviews/{review_id}", response_model=schemas.ReviewOut)
def get_review(
    review_id: uuid.UUID,
    principal: Principal = Depends(get_principal),
    objects: ObjectStore = Depends(get_store),
) -> schemas.ReviewOut:
    """A review's takes with their preview URLs, verdicts and scores."""
    return reviews.get(principal, str(review_id), objects)


@router.post(
    "/reviews/{review_id}/decision",
    status_code=202,
    response_model=schemas.ReviewOut,
    responses={409: {"model": schemas.Problem, "description": "Already decided."}},
)
def decide_review(
    review_id: uuid.UUID,
    body: schemas.ReviewDecisionIn,
    request: Request,
    principal: Principal = Depends(get_principal),
    objects: ObjectStore = Depends(get_store),
    settings: Settings = Depends(get_settings_dep),
) -> schemas.ReviewOut:
    """approve (``pick``): publish that take; reject (``note``: why): publish nothing; more
    (``versions``): more takes. Recorded before the answer; publishing follows (poll GET)."""
    background = reviews.in_background(request.app.state, settings.api_local_concurrency)
    return reviews.decide(principal, str(review_id), body, objects, background)
