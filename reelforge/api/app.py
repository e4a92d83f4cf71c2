"""The app factory: API routes, dashboard, health, metrics, one-line JSON errors, security
headers."""

from __future__ import annotations

import logging
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from fastapi.staticfiles import StaticFiles
from pydantic import ValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException

from reelforge.api import schemas
from reelforge.api.store import Backpressure, Conflict
from reelforge.core.errors import InvalidInput, ReelForgeError, ServiceUnavailable
from reelforge.core.orchestration import prefect_answers
from reelforge.core.settings import Settings, get_settings
from reelforge.core.version import code_version
from tasks.safety.policy import UnknownPolicy

log = logging.getLogger("reelforge.api")
STATIC = Path(__file__).resolve().parent / "static"


def _one_line(text: object) -> str:
    return " ".join(str(text).split())[:500]


def _validation_message(errors: list[Any]) -> str:
    if not errors:
        return "invalid input"
    first = errors[0]
    kind = first.get("type")
    if kind == "json_invalid":
        error = (first.get("ctx") or {}).get("error", "JSON decode error")
        return _one_line(f"the request body is not valid JSON ({error}): send one JSON object")
    loc = list(first.get("loc", ()))
    if loc and loc[0] in ("body", "path", "query", "header", "cookie"):
        loc = loc[1:]  # where the field came from is plain from the request
    where = ".".join(str(p) for p in loc) or "input"
    if kind == "extra_forbidden":
        return _one_line(f"unknown field {where}: remove it or fix its spelling (see /docs)")
    return _one_line(f"invalid {where}: {first.get('msg', 'invalid')}")


def create_app(settings: Settings | None = None, *, dispatch: bool | None = None) -> FastAPI:
    """The ASGI app. ``dispatch`` (default: settings.api_dispatch) runs the dispatcher here."""
    settings = settings or get_settings()
    run_dispatcher = settings.api_dispatch if dispatch is None else dispatch

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        if run_dispatcher:
            from reelforge.api.dispatcher import Dispatcher

            app.state.dispatcher = Dispatcher(settings)
            app.state.dispatcher.start()
        try:
            yield
        finally:
            if app.state.dispatcher is not None:
                app.state.dispatcher.stop()

    app = FastAPI(
        title="ReelForge API",
        version=code_version(),
        description="Submit marketing videos, campaigns and personalised runs; follow them; "
        "trace any video to its prompt and model. Authenticate with a tenant API key "
        "(`reelforge api-key create TENANT`).",
        lifespan=lifespan,
    )
    from reelforge.api.metrics import build_registry
    from reelforge.core.storage import ObjectStore

    app.state.settings = settings
    app.state.objects = ObjectStore(settings)
    app.state.dispatcher = None
    app.state.registry, latency = build_registry()

    app.add_middleware(_BodyLimit, limit=settings.api_max_body_bytes)
    app.add_middleware(_SecurityHeaders, policy=content_security_policy(settings))
    app.add_middleware(_Timing, histogram=latency)

    def problem(status: int, message: str, headers: dict[str, str] | None = None) -> JSONResponse:
        return JSONResponse({"error": _one_line(message)}, status_code=status, headers=headers)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(_: Request, exc: StarletteHTTPException) -> JSONResponse:
        return problem(exc.status_code, str(exc.detail), getattr(exc, "headers", None))

    @app.exception_handler(RequestValidationError)
    async def request_invalid(_: Request, exc: RequestValidationError) -> JSONResponse:
        return problem(422, _validation_message(list(exc.errors())))

    @app.exception_handler(ValidationError)
    async def model_invalid(_: Request, exc: ValidationError) -> JSONResponse:
        return problem(422, _validation_message(list(exc.errors())))

    @app.exception_handler(Backpressure)
    async def busy(_: Request, exc: Backpressure) -> JSONResponse:
        return problem(429, str(exc), {"Retry-After": str(exc.retry_after)})

    @app.exception_handler(Conflict)
    async def conflict(_: Request, exc: Conflict) -> JSONResponse:
        return problem(409, str(exc))

    @app.exception_handler(UnknownPolicy)
    async def no_such_policy(_: Request, exc: UnknownPolicy) -> JSONResponse:
        return problem(404, str(exc))  # another tenant's policy reads as no policy at all

    @app.exception_handler(InvalidInput)
    async def invalid(_: Request, exc: InvalidInput) -> JSONResponse:
        return problem(422, str(exc))

    @app.exception_handler(ServiceUnavailable)
    async def unavailable(_: Request, exc: ServiceUnavailable) -> JSONResponse:
        return problem(503, str(exc), {"Retry-After": "5"})

    @app.exception_handler(ReelForgeError)
    async def failed(_: Request, exc: ReelForgeError) -> JSONResponse:
        return problem(500, str(exc))

    from reelforge.api.dashboard import LoginRequired

    @app.exception_handler(LoginRequired)
    async def login_required(_: Request, exc: LoginRequired) -> Response:
        from fastapi.responses import RedirectResponse

        return RedirectResponse("/dashboard/login", status_code=303)

    @app.exception_handler(Exception)
    async def unexpected(request: Request, exc: Exception) -> JSONResponse:
        log.error("%s %s: %s: %s", request.method, request.url.path, type(exc).__name__, _one_line(exc))  # fmt: skip
        return problem(500, f"internal error ({type(exc).__name__})")

    @app.get("/healthz", response_model=schemas.Health, tags=["ops"])
    def healthz() -> schemas.Health:
        """The process is up (no dependencies checked)."""
        return schemas.Health(ok=True)

    @app.get("/readyz", response_model=schemas.Health, responses={503: {"model": schemas.Health}}, tags=["ops"])  # fmt: skip
    def readyz() -> Response:
        """PostgreSQL, S3 and Prefect answer (and the dispatcher, where it runs here)."""
        checks = _readiness(app)
        ok = all(v == "ok" for v in checks.values())
        return JSONResponse({"ok": ok, "checks": checks}, status_code=200 if ok else 503)

    @app.get("/metrics", tags=["ops"], response_class=Response)
    def metrics() -> Response:
        """Prometheus metrics."""
        from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

        return Response(generate_latest(app.state.registry), media_type=CONTENT_TYPE_LATEST)

    from reelforge.api.dashboard import root_router
    from reelforge.api.dashboard import router as dashboard_router
    from reelforge.api.routes import router

    app.include_router(router)
    app.include_router(dashboard_router)
    app.include_router(root_router)  # / -> the dashboard
    app.mount("/static", StaticFiles(directory=STATIC), name="static")
    return app


def _readiness(app: FastAPI) -> dict[str, str]:
    from sqlalchemy import text

    from db.session import session_scope

    settings: Settings = app.state.settings
    checks: dict[str, str] = {}
    try:
        with session_scope() as session:
            session.execute(text("SELECT 1 FROM video_jobs LIMIT 1"))
        checks["database"] = "ok"
    except Exception as exc:
        checks["database"] = _one_line(f"{type(exc).__name__}: {exc}")[:200]
    try:
        app.state.objects.client.bucket_exists(settings.bucket_published)
        checks["s3"] = "ok"
    except Exception as exc:
        checks["s3"] = _one_line(f"{type(exc).__name__}")
    checks["prefect"] = "ok" if prefect_answers(settings.prefect_api, timeout=2) else "unreachable"
    dispatcher = app.state.dispatcher
    if dispatcher is not None:
        checks["dispatcher"] = "ok" if dispatcher.last_error is None else dispatcher.last_error
    return checks


def content_security_policy(settings: Settings) -> str:
    """Scripts and styles only from our own files (no inline script); images and videos also
    from the S3 endpoint that presigned URLs point at; never framed."""
    scheme = "https" if settings.s3_secure else "http"
    media = f"'self' {scheme}://{settings.s3_address}"
    return "; ".join(
        [
            "default-src 'self'",
            "script-src 'self'",
            "style-src 'self'",
            f"img-src {media} data:",
            f"media-src {media}",
            "connect-src 'self'",
            "object-src 'none'",
            "base-uri 'none'",
            "form-action 'self'",
            "frame-ancestors 'none'",
        ]
    )


# FastAPI's /docs and /redoc pages load Swagger UI / ReDoc from a CDN with an inline script.
_DOCS_POLICY = (
    "default-src 'self'; script-src 'self' 'unsafe-inline' https://cdn.jsdelivr.net; "
    "style-src 'self' 'unsafe-inline' https://cdn.jsdelivr.net https://fonts.googleapis.com; "
    "img-src 'self' data: https://fastapi.tiangolo.com https://cdn.redoc.ly; "
    "font-src https://fonts.gstatic.com; worker-src blob:; object-src 'none'; "
    "base-uri 'none'; frame-ancestors 'none'"
)


class _SecurityHeaders:
    """CSP, no framing, no MIME sniffing, no Referer (presigned URLs must not leak) on every
    response."""

    def __init__(self, app: Any, policy: str) -> None:
        self.app = app
        self.headers = [
            (b"x-content-type-options", b"nosniff"),
            (b"x-frame-options", b"DENY"),
            (b"referrer-policy", b"no-referrer"),
        ]
        self.policy = policy.encode()

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        docs = scope.get("path") in ("/docs", "/redoc")
        policy = _DOCS_POLICY.encode() if docs else self.policy

        async def sending(message: Any) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = [
                    *message.get("headers", []),
                    *self.headers,
                    (b"content-security-policy", policy),
                ]
            await send(message)

        await self.app(scope, receive, sending)


class _BodyLimit:
    """413 for a request body over ``limit`` bytes, by its Content-Length or, without one,
    as soon as the streamed body passes the limit (nothing past it is read)."""

    def __init__(self, app: Any, limit: int) -> None:
        self.app = app
        self.limit = limit

    def _too_large(self) -> StarletteHTTPException:
        return StarletteHTTPException(
            413,
            f"request body is larger than {self.limit} bytes: send less (split a large "
            "campaign or user list into several requests)",
        )

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = dict(scope.get("headers") or [])
        length = headers.get(b"content-length")
        if length is not None and length.isdigit() and int(length) > self.limit:
            response = JSONResponse({"error": _one_line(self._too_large().detail)}, status_code=413)
            await response(scope, receive, send)
            return
        received = 0

        async def limited() -> Any:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.limit:
                    raise self._too_large()  # the app's handler turns it into the 413 reply
            return message

        await self.app(scope, limited, send)


class _Timing:
    """Request latency by route (plain ASGI: no per-request task like BaseHTTPMiddleware)."""

    def __init__(self, app: Any, histogram: Any) -> None:
        self.app = app
        self.histogram = histogram

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = {"code": 500}

        async def sending(message: Any) -> None:
            if message["type"] == "http.response.start":
                status["code"] = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, sending)
        finally:
            route = getattr(scope.get("route"), "path", "unmatched")
            self.histogram.labels(scope["method"], route, str(status["code"])).observe(
                time.perf_counter() - started
            )
