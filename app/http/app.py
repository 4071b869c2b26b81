"""The FastAPI application factory.

`create_app(settings, bundle=None)` builds an app over one database. The model bundle (language
model + SAEs, see app/ml/bundle.py) is loaded once in the lifespan when `settings.load_model` is on
and no bundle was passed; pages never touch it, only live inference and steering do.
Two middlewares wrap every request: the `anonymous_read` gate and the security headers (CSP and friends).
"""

from __future__ import annotations

from contextlib import asynccontextmanager

from fastapi import FastAPI, HTTPException, Request
from fastapi.responses import JSONResponse, RedirectResponse
from fastapi.staticfiles import StaticFiles
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import MutableHeaders

from app import __version__
from app.config import Settings
from app.store.engine import make_engine, make_sessionmaker, upgrade_database
from app.http.auth import api_read_actor, read_actor
from app.paths import STATIC_DIR

# Open even when `anonymous_read` is off: the way in, the assets it needs, and the probe monitors poll.
OPEN_PATHS = frozenset({"/login", "/register", "/-/health"})
OPEN_PREFIXES = ("/static/",)

# Scripts only from our own files (no inline <script>, no eval, so no htmx hx-on: see static/js/app.js).
# Styles allow 'unsafe-inline' because templates carry <style> blocks and data-driven style attributes
# (activation shading such as style="--a:0.42"); CSS cannot run script.
CONTENT_SECURITY_POLICY = (
    "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self'; "
    "connect-src 'self'; object-src 'none'; base-uri 'self'; form-action 'self'; frame-ancestors 'none'"
)
# FastAPI's /docs and /redoc load Swagger UI / ReDoc from a CDN and start them with an inline script;
# they show only the OpenAPI schema, never user text.
DOCS_CONTENT_SECURITY_POLICY = (
    "default-src 'self'; script-src 'self' 'unsafe-inline' https://cdn.jsdelivr.net; "
    "style-src 'self' 'unsafe-inline' https://cdn.jsdelivr.net https://fonts.googleapis.com; "
    "font-src 'self' https://fonts.gstatic.com; img-src 'self' data: https://fastapi.tiangolo.com https://cdn.redoc.ly; "
    "worker-src 'self' blob:; connect-src 'self'; object-src 'none'; base-uri 'self'; frame-ancestors 'none'"
)
DOCS_PATHS = frozenset({"/docs", "/docs/oauth2-redirect", "/redoc"})
SECURITY_HEADERS = {"X-Content-Type-Options": "nosniff", "Referrer-Policy": "same-origin", "X-Frame-Options": "DENY"}


def _wants_json(path: str) -> bool:
    return path == "/api" or path.startswith("/api/") or path.endswith(".json")


class ReadAccessMiddleware:
    """With `anonymous_read` off, every request outside OPEN_PATHS needs a login (or, for JSON, an API key):
    HTML gets a redirect to /login?next=..., JSON gets 401. Routes added later are covered without opting in."""

    def __init__(self, app):
        self.app = app

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http" or scope["app"].state.settings.anonymous_read:
            return await self.app(scope, receive, send)
        path = scope["path"]
        if path in OPEN_PATHS or path.startswith(OPEN_PREFIXES):
            return await self.app(scope, receive, send)
        request = Request(scope)  # shares scope["state"], so routes reuse the account looked up here
        as_json = _wants_json(path)
        try:
            await run_in_threadpool(api_read_actor if as_json else read_actor, request)
        except HTTPException as exc:
            if as_json:
                response = JSONResponse({"detail": exc.detail}, exc.status_code, headers=exc.headers)
            else:
                response = RedirectResponse(exc.headers["Location"], status_code=303)
            return await response(scope, receive, send)
        await self.app(scope, receive, send)


class SecurityHeadersMiddleware:
    """CSP, nosniff, same-origin referrers and no framing on every response (a route's own value wins)."""

    def __init__(self, app):
        self.app = app

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        policy = DOCS_CONTENT_SECURITY_POLICY if scope["path"] in DOCS_PATHS else CONTENT_SECURITY_POLICY

        async def send_with_headers(message):
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                for name, value in {"Content-Security-Policy": policy, **SECURITY_HEADERS}.items():
                    headers.setdefault(name, value)
            await send(message)

        await self.app(scope, receive, send_with_headers)


def create_app(settings: Settings | None = None, bundle=None, migrate: bool = True) -> FastAPI:
    settings = settings or Settings()
    url = settings.resolved_database_url
    if migrate:
        upgrade_database(url)
    engine = make_engine(url)

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        if app.state.bundle is None and settings.load_model:
            from app.services.startup import load_bundle_for_app

            app.state.bundle = load_bundle_for_app(settings, app.state.sessionmaker)
        yield
        live_service = getattr(app.state, "live_service", None)
        if live_service is not None:
            live_service.shutdown()
        engine.dispose()

    app = FastAPI(title="Featureboard", version=__version__, lifespan=lifespan)
    app.state.settings = settings
    app.state.engine = engine
    app.state.sessionmaker = make_sessionmaker(engine)
    app.state.bundle = bundle
    app.mount("/static", StaticFiles(directory=str(STATIC_DIR)), name="static")
    app.add_middleware(ReadAccessMiddleware)
    app.add_middleware(SecurityHeadersMiddleware)  # added last, so outermost: the access gate's answers get headers too

    from app.http.routes import register_routes

    register_routes(app)
    return app
