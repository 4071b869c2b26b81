"""Middlewares around every request: NUL refused in the address, the ``anonymous_read`` gate, the security
headers, HEAD."""

from __future__ import annotations

from fastapi import Request
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import MutableHeaders

from app.errors import BadRequest, FeatureboardError
from app.http.auth import read_actor

# Open even when `anonymous_read` is off: the way in, the assets it needs, and the probe monitors poll.
OPEN_PATHS = frozenset({"/login", "/register", "/-/health", "/favicon.ico"})
OPEN_PREFIXES = ("/static/",)

# Scripts only from our own files (no inline <script>, no eval, so no htmx hx-on: see static/js/app.js).
# Styles only from static/css/app.css: no <style> and no style attributes (activation shading is a class, a0..a20,
# and htmx's indicator <style> is turned off in base.html's htmx-config).
CONTENT_SECURITY_POLICY = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; object-src 'none'; base-uri 'self'; form-action 'self'; frame-ancestors 'none'"
)
# /docs and /redoc (app/http/routes/docs.py) load Swagger UI and ReDoc from this server; both inject their CSS at
# run time, so only their styles need 'unsafe-inline'. No other host is named: the docs work offline.
DOCS_CONTENT_SECURITY_POLICY = (
    "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; "
    "font-src 'self' data:; worker-src 'self' blob:; connect-src 'self'; object-src 'none'; base-uri 'self'; "
    "frame-ancestors 'none'"
)
DOCS_PATHS = frozenset({"/docs", "/redoc"})
SECURITY_HEADERS = {"X-Content-Type-Options": "nosniff", "Referrer-Policy": "same-origin", "X-Frame-Options": "DENY"}


class ReadAccessMiddleware:
    """With `anonymous_read` off, every request outside OPEN_PATHS needs a login or an API key; the answer to one
    without comes from the one error handler (a redirect to /login for browsers, 401 for JSON)."""

    def __init__(self, app):
        self.app = app

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http" or scope["app"].state.settings.anonymous_read:
            return await self.app(scope, receive, send)
        path = scope["path"]
        if path in OPEN_PATHS or path.startswith(OPEN_PREFIXES):
            return await self.app(scope, receive, send)
        request = Request(scope)  # shares scope["state"], so routes reuse the account looked up here
        try:
            await run_in_threadpool(read_actor, request)
        except FeatureboardError as exc:
            return await _answer_error(scope, receive, send, exc)
        await self.app(scope, receive, send)


async def _answer_error(scope, receive, send, exc: FeatureboardError) -> None:
    from app.http.errors import handle_error

    response = await handle_error(Request(scope), exc)
    await response(scope, receive, send)


class RefuseNulMiddleware:
    """A NUL character in the path or the query string gets 400 before routing: no source, label, list or
    parameter value can hold one (PostgreSQL cannot even compare text with it), so the answer is the same on
    every database and names the problem."""

    def __init__(self, app):
        self.app = app

    async def __call__(self, scope, receive, send):
        if scope["type"] == "http":
            query = scope.get("query_string", b"").lower()
            if "\x00" in scope["path"] or b"%00" in query or b"\x00" in query:
                where = "path" if "\x00" in scope["path"] else "query string"
                return await _answer_error(scope, receive, send, BadRequest(
                    f"The address's {where} contains a NUL character (%00); no page or value can hold one."))
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


class HeadMiddleware:
    """HEAD is answered like GET without the body, on every page (FastAPI routes list GET only). Event streams
    are left alone: a HEAD must never start model work."""

    def __init__(self, app):
        self.app = app

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http" or scope["method"] != "HEAD" or scope["path"].endswith("/stream"):
            return await self.app(scope, receive, send)

        async def send_without_body(message):
            if message["type"] == "http.response.body":
                message = {**message, "body": b""}
            await send(message)

        await self.app({**scope, "method": "GET"}, receive, send_without_body)


# Answered normally while a first-start job runs: its progress, the assets the waiting page needs, the probes.
PREPARING_OPEN_PATHS = frozenset({"/-/progress", "/-/progress.json", "/-/health", "/-/versions.json", "/favicon.ico"})


class PreparingMiddleware:
    """While ``app.state.preparation`` (the demo's first precompute) is not ready, every other request gets 503
    with Retry-After: the waiting page for browsers (templates/preparing.html), its progress as JSON for clients."""

    def __init__(self, app):
        self.app = app

    async def __call__(self, scope, receive, send):
        preparation = scope["app"].state.preparation if scope["type"] == "http" else None
        path = scope.get("path", "")
        if (preparation is None or preparation.ready or path in PREPARING_OPEN_PATHS
                or path.startswith(OPEN_PREFIXES)):
            return await self.app(scope, receive, send)
        from app.http.routes.preparing import preparing_response

        response = preparing_response(Request(scope), preparation)
        await response(scope, receive, send)
