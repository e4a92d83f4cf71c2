"""The ops dashboard: server-rendered pages (Jinja2) and a little plain JavaScript.

Login with the tenant's API key opens a session held in PostgreSQL (``dashboard_sessions``);
the cookie is signed (itsdangerous; secret from settings) and holds only the session's id and a
CSRF token, never the key. Logout deletes the session, and revoking or expiring the key ends it,
so an old cookie is worthless at once. Every form carries the CSRF token. Tenants see their runs
as our API shows them; only operator keys get links to the Prefect UI.
"""

from __future__ import annotations

import hmac
import secrets
import threading
import uuid
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from pathlib import Path
from typing import Any

from fastapi import APIRouter, Depends, HTTPException, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from fastapi.templating import Jinja2Templates
from itsdangerous import BadSignature, URLSafeTimedSerializer
from pydantic import ValidationError
from sqlalchemy.orm import Session

from reelforge.api import ops_view, reviews, schemas, service, store
from reelforge.api.deps import get_session
from reelforge.api.keys import (
    KeyExpired,
    Principal,
    authenticate,
    close_session,
    open_session,
    session_principal,
)
from reelforge.api.lineage_svg import layout
from reelforge.api.store import Backpressure, Conflict
from reelforge.core.errors import InvalidInput
from reelforge.core.settings import Settings
from reelforge.ops import reviews as ops_reviews
from reelforge.ops.runs import cancel_run
from reelforge.ops.webhooks import recent_deliveries, redeliver

TEMPLATES = Jinja2Templates(directory=str(Path(__file__).resolve().parent / "templates"))
COOKIE = "rf_session"
LOGIN_COOKIE = "rf_login"
SESSION_SECONDS = 12 * 3600
_PROCESS_SECRET = secrets.token_urlsafe(32)

router = APIRouter(prefix="/dashboard", include_in_schema=False)
root_router = APIRouter(include_in_schema=False)


@root_router.get("/")
def root() -> RedirectResponse:
    """The server's root URL is the dashboard (the API lives under /v1, its docs at /docs)."""
    return RedirectResponse("/dashboard/runs", status_code=303)


class LoginRequired(Exception):
    pass


def _serializer(settings: Settings) -> URLSafeTimedSerializer:
    secret = (
        settings.api_session_secret.get_secret_value()
        if settings.api_session_secret is not None
        else _PROCESS_SECRET
    )
    return URLSafeTimedSerializer(secret, salt="reelforge-dashboard")


def _settings(request: Request) -> Settings:
    return request.app.state.settings


def _read_cookie(request: Request, name: str, max_age: int) -> dict[str, Any] | None:
    raw = request.cookies.get(name)
    if not raw:
        return None
    try:
        data = _serializer(_settings(request)).loads(raw, max_age=max_age)
    except (BadSignature, ValueError, TypeError):
        return None
    return data if isinstance(data, dict) else None


def _set_cookie(request: Request, response: Response, name: str, data: dict[str, Any], max_age: int) -> None:  # fmt: skip
    response.set_cookie(
        name,
        _serializer(_settings(request)).dumps(data),
        max_age=max_age,
        httponly=True,
        samesite="strict",
        secure=_secure(request),
        path="/dashboard",
    )


def _secure(request: Request) -> bool:
    configured = _settings(request).api_cookie_secure
    return request.url.scheme == "https" if configured is None else configured


class Viewer:
    def __init__(self, principal: Principal, csrf: str, session_id: uuid.UUID) -> None:
        self.principal = principal
        self.csrf = csrf
        self.session_id = session_id


def viewer(request: Request, session: Session = Depends(get_session)) -> Viewer:
    data = _read_cookie(request, COOKIE, SESSION_SECONDS)
    if data is None:
        raise LoginRequired()
    try:
        session_id = uuid.UUID(str(data.get("s")))
    except ValueError:
        raise LoginRequired() from None
    principal = session_principal(session, session_id)
    if principal is None:
        raise LoginRequired()
    return Viewer(principal, str(data.get("c", "")), session_id)


async def _form(request: Request) -> dict[str, str]:
    try:
        form = await request.form()
    except Exception:
        return {}
    return {k: v for k, v in form.items() if isinstance(v, str)}


def _csrf_ok(expected: str, given: str | None) -> bool:
    return bool(expected) and given is not None and hmac.compare_digest(expected, given)


def _page(request: Request, name: str, context: dict[str, Any], status: int = 200) -> HTMLResponse:
    """A page; ``prefect_ui`` (the Prefect UI's address) only for an operator's session."""
    settings = _settings(request)
    who = context.get("viewer")
    ui = None
    if who is not None and who.principal.operator:
        ui = (settings.prefect_ui_url or settings.prefect_api.removesuffix("/api")).rstrip("/")
    return TEMPLATES.TemplateResponse(
        request, name, {"prefect_ui": ui, **context}, status_code=status
    )


def _forbidden(request: Request) -> HTMLResponse:
    return HTMLResponse("<h1>403</h1><p>The form expired: reload the page and try again.</p>", 403)


# --- login ------------------------------------------------------------------------------------


@router.get("", response_class=HTMLResponse)
@router.get("/", response_class=HTMLResponse)
def home() -> RedirectResponse:
    return RedirectResponse("/dashboard/runs", status_code=303)


@router.get("/login", response_class=HTMLResponse)
def login_page(request: Request, error: str | None = None) -> HTMLResponse:
    token = secrets.token_urlsafe(24)
    response = _page(request, "login.html", {"csrf": token, "error": error, "viewer": None})
    _set_cookie(request, response, LOGIN_COOKIE, {"c": token}, 3600)
    return response


@router.post("/login", response_class=HTMLResponse)
async def login(request: Request, session: Session = Depends(get_session)) -> Response:
    form = await _form(request)
    pending = _read_cookie(request, LOGIN_COOKIE, 3600)
    if pending is None or not _csrf_ok(str(pending.get("c", "")), form.get("csrf")):
        return _forbidden(request)
    try:
        principal = authenticate(session, form.get("api_key", "").strip())
        error = None if principal is not None else "That key is not valid."
    except KeyExpired as exc:
        principal, error = None, str(exc)
    if principal is None:
        token = secrets.token_urlsafe(24)
        response = _page(
            request,
            "login.html",
            {"csrf": token, "error": error, "viewer": None},
            status=401,
        )
        _set_cookie(request, response, LOGIN_COOKIE, {"c": token}, 3600)
        return response
    session_id = open_session(session, principal, timedelta(seconds=SESSION_SECONDS))
    response = RedirectResponse("/dashboard/runs", status_code=303)
    data = {"s": str(session_id), "c": secrets.token_urlsafe(24)}
    _set_cookie(request, response, COOKIE, data, SESSION_SECONDS)
    response.delete_cookie(LOGIN_COOKIE, path="/dashboard")
    return response


@router.post("/logout")
async def logout(
    request: Request, who: Viewer = Depends(viewer), session: Session = Depends(get_session)
) -> Response:
    form = await _form(request)
    if not _csrf_ok(who.csrf, form.get("csrf")):
        return _forbidden(request)
    close_session(session, who.session_id)
    response = RedirectResponse("/dashboard/login", status_code=303)
    response.delete_cookie(COOKIE, path="/dashboard")
    return response


# --- runs --------------------------------------------------------------------------------------


def _runs_context(session: Session, who: Viewer) -> dict[str, Any]:
    return {"runs": ops_view.tenant_runs(session, who.principal, limit=50), "viewer": who}


@router.get("/runs", response_class=HTMLResponse)
def runs_page(
    request: Request,
    message: str | None = None,
    who: Viewer = Depends(viewer),
    session: Session = Depends(get_session),
) -> HTMLResponse:
    return _page(request, "runs.html", {**_runs_context(session, who), "message": message})


@router.get("/runs/table", response_class=HTMLResponse)
def runs_table(
    request: Request, who: Viewer = Depends(viewer), session: Session = Depends(get_session)
) -> HTMLResponse:
    return _page(request, "runs_table.html", _runs_context(session, who))


@router.get("/runs/{job_id}", response_class=HTMLResponse)
def run_page(
    request: Request,
    job_id: uuid.UUID,
    who: Viewer = Depends(viewer),
    session: Session = Depends(get_session),
) -> HTMLResponse:
    """One run as our API knows it (status, stages, attempts, error), the caller's only."""
    job = store.get_job(session, who.principal, job_id)
    if job is None:  # a run started elsewhere (CLI, schedule, event): its flow-run id
        info = ops_view.tenant_run(who.principal, job_id)
        if info is None:
            return _page(request, "notfound.html", {"viewer": who, "what": "run"}, status=404)
        row = next((r for r in ops_view.tenant_runs(session, who.principal) if r.id == info.id), None)  # fmt: skip
        stages = ops_view.run_activities(session, who.principal, info.id)
        context = {"run": row, "info": info, "stages": stages, "viewer": who}
        return _page(request, "flow_run.html", context)
    return _page(request, "run.html", {"job": job, "viewer": who})


@router.post("/runs/{run_id}/retry")
async def retry(
    request: Request,
    run_id: uuid.UUID,
    who: Viewer = Depends(viewer),
    session: Session = Depends(get_session),
) -> Response:
    form = await _form(request)
    if not _csrf_ok(who.csrf, form.get("csrf")):
        return _forbidden(request)
    try:
        job = store.request_retry(session, who.principal, run_id)
        if job is not None:  # an API job: the dispatcher resumes its flow run
            return _redirect_runs(f"retrying {job.id}")
        info = ops_view.retry_tenant_run(who.principal, run_id, _in_background(request))
    except (Conflict, InvalidInput) as exc:
        return _redirect_runs(str(exc))
    if info is None:
        return HTMLResponse("<h1>404</h1><p>No such run.</p>", 404)
    return _redirect_runs(f"retrying {info.id}")


@router.post("/runs/{run_id}/cancel")
async def cancel(
    request: Request,
    run_id: uuid.UUID,
    who: Viewer = Depends(viewer),
    session: Session = Depends(get_session),
) -> Response:
    """Cancel any of the tenant's runs: an API job (queued ones at once), or a flow run
    however it was started."""
    form = await _form(request)
    if not _csrf_ok(who.csrf, form.get("csrf")):
        return _forbidden(request)
    job = ops_view.job_of_run(session, who.principal, run_id)
    if job is None and ops_view.tenant_run(who.principal, run_id) is None:
        return HTMLResponse("<h1>404</h1><p>No such run.</p>", 404)
    try:
        if job is not None:
            ops_view.cancel_job(session, job)
        else:
            cancel_run(run_id)
    except InvalidInput as exc:
        return _redirect_runs(str(exc))
    return _redirect_runs(f"cancelling {run_id}")


_retries_lock = threading.Lock()


def _in_background(request: Request) -> Any:
    """Runs an in-process run's retry in this API process (it has no worker), in a small
    pool of its own, as the dispatcher runs local retries."""
    state = request.app.state
    with _retries_lock:
        if getattr(state, "dashboard_retries", None) is None:
            state.dashboard_retries = ThreadPoolExecutor(
                max_workers=_settings(request).api_local_concurrency,
                thread_name_prefix="reelforge-retry",
            )
    return lambda run_id: state.dashboard_retries.submit(ops_view.retry_here, run_id)


def _redirect_runs(message: str) -> RedirectResponse:
    from urllib.parse import quote

    return RedirectResponse(f"/dashboard/runs?message={quote(message[:200])}", status_code=303)


@router.post("/videos")
async def submit(
    request: Request, who: Viewer = Depends(viewer), session: Session = Depends(get_session)
) -> Response:
    form = await _form(request)
    if not _csrf_ok(who.csrf, form.get("csrf")):
        return _forbidden(request)
    fields: dict[str, Any] = {
        k: v for k, v in form.items() if k in ("prompt", "aspect", "seed", "text", "lut") and v
    }
    try:
        body = schemas.VideoIn.model_validate(fields)
        job = service.submit_video(session, _settings(request), who.principal, body)
    except ValidationError as exc:
        first = exc.errors()[0]
        return _redirect_runs(f"invalid {'.'.join(map(str, first['loc']))}: {first['msg']}")
    except (Backpressure, InvalidInput) as exc:
        return _redirect_runs(str(exc))
    return _redirect_runs(f"submitted {job.id}")


# --- videos ----------------------------------------------------------------------------------


@router.get("/videos", response_class=HTMLResponse)
def videos_page(
    request: Request, who: Viewer = Depends(viewer), session: Session = Depends(get_session)
) -> HTMLResponse:
    videos = ops_view.tenant_videos(session, who.principal, request.app.state.objects)
    return _page(request, "videos.html", {"videos": videos, "viewer": who})


# --- lineage ----------------------------------------------------------------------------------


@router.get("/assets/{asset_id}/lineage", response_class=HTMLResponse)
def lineage_page(
    request: Request,
    asset_id: uuid.UUID,
    who: Viewer = Depends(viewer),
    session: Session = Depends(get_session),
) -> HTMLResponse:
    nodes = service.lineage_of(session, who.principal, asset_id)
    if not nodes:
        return _page(request, "notfound.html", {"viewer": who, "what": "asset"}, status=404)
    params = service.activity_parameters(session, {n.activity_id for n in nodes if n.activity_id})
    graph = layout(asset_id, nodes, params, lambda a: f"/dashboard/assets/{a}/lineage")
    root = next(n for n in nodes if n.asset_id == asset_id)
    return _page(
        request, "lineage.html", {"graph": graph, "root": root, "nodes": nodes, "viewer": who}
    )


# --- campaigns ---------------------------------------------------------------------------------


@router.get("/campaigns", response_class=HTMLResponse)
def campaigns_page(
    request: Request, who: Viewer = Depends(viewer), session: Session = Depends(get_session)
) -> HTMLResponse:
    campaigns = [
        service.campaign_summary(session, who.principal, c)
        for c in service.campaigns_of(session, who.principal)
    ]
    return _page(request, "campaigns.html", {"campaigns": campaigns, "viewer": who})


# --- webhooks ----------------------------------------------------------------------------------


@router.get("/webhooks", response_class=HTMLResponse)
def webhooks_page(
    request: Request, message: str | None = None, who: Viewer = Depends(viewer)
) -> HTMLResponse:
    deliveries = recent_deliveries(who.principal.tenant)
    context = {"deliveries": deliveries, "message": message, "viewer": who}
    return _page(request, "webhooks.html", context)


@router.post("/webhooks/{event_id}/redeliver")
async def redeliver_webhook(
    request: Request, event_id: uuid.UUID, who: Viewer = Depends(viewer)
) -> Response:
    """Queue an event again: the dispatcher (or `reelforge webhook deliver`) sends it."""
    from urllib.parse import quote

    form = await _form(request)
    if not _csrf_ok(who.csrf, form.get("csrf")):
        return _forbidden(request)
    try:
        redeliver(event_id, tenant=who.principal.tenant)
        message = f"queued {event_id} for redelivery"
    except InvalidInput as exc:
        message = str(exc)
    return RedirectResponse(f"/dashboard/webhooks?message={quote(message[:200])}", status_code=303)


# --- reviews (docs/review.md) -----------------------------------------------------------------


@router.get("/reviews", response_class=HTMLResponse)
def reviews_page(
    request: Request,
    message: str | None = None,
    who: Viewer = Depends(viewer),
    session: Session = Depends(get_session),
) -> HTMLResponse:
    rows = ops_reviews.list_reviews(who.principal.tenant)
    campaigns = [c.name for c in service.campaigns_of(session, who.principal)]
    context = {"reviews": rows, "campaigns": campaigns, "message": message, "viewer": who}
    return _page(request, "reviews.html", context)


@router.get("/reviews/{review_id}", response_class=HTMLResponse)
def review_page(
    request: Request,
    review_id: uuid.UUID,
    message: str | None = None,
    who: Viewer = Depends(viewer),
) -> HTMLResponse:
    """The takes side by side: previews, verdicts, scores; approve, reject, more."""
    try:
        review = reviews.get(who.principal, str(review_id), request.app.state.objects)
    except HTTPException:
        return _page(request, "notfound.html", {"viewer": who, "what": "review"}, status=404)
    published = None
    if review.status == "published":
        published = ops_reviews.published_asset(who.principal.tenant, str(review_id))
    context = {"review": review, "published": published, "message": message, "viewer": who}
    return _page(request, "review.html", context)


@router.post("/reviews/{review_id}/decision")
async def review_decision(request: Request, review_id: uuid.UUID, who: Viewer = Depends(viewer)) -> Response:  # fmt: skip
    from urllib.parse import quote

    form = await _form(request)
    if not _csrf_ok(who.csrf, form.get("csrf")):
        return _forbidden(request)
    fields = {k: v for k, v in form.items() if k in ("decision", "pick", "note", "versions") and v}
    try:
        body = schemas.ReviewDecisionIn.model_validate(fields)
        background = reviews.in_background(
            request.app.state, _settings(request).api_local_concurrency
        )
        reviews.decide(who.principal, str(review_id), body, request.app.state.objects, background)
        message = f"{body.decision} recorded"
    except ValidationError as exc:
        message = f"invalid {'.'.join(map(str, exc.errors()[0]['loc']))}: {exc.errors()[0]['msg']}"
    except HTTPException as exc:
        if exc.status_code == 404:
            return _page(request, "notfound.html", {"viewer": who, "what": "review"}, status=404)
        message = str(exc.detail)
    target = f"/dashboard/reviews/{review_id}?message={quote(message[:200])}"
    return RedirectResponse(target, status_code=303)


@router.post("/reviews/approve-best")
async def approve_best(request: Request, who: Viewer = Depends(viewer)) -> Response:
    """Approve each waiting review's best-scored take in a campaign (published in the
    background, one after another)."""
    from urllib.parse import quote

    form = await _form(request)
    if not _csrf_ok(who.csrf, form.get("csrf")):
        return _forbidden(request)
    campaign = form.get("campaign", "")
    tenant, agent = who.principal.tenant, reviews.agent_of(who.principal)
    background = reviews.in_background(request.app.state, _settings(request).api_local_concurrency)
    background(lambda: ops_reviews.approve_best(tenant, campaign, agent=agent))
    message = f"approving the best takes of {campaign}"
    return RedirectResponse(f"/dashboard/reviews?message={quote(message[:200])}", status_code=303)
