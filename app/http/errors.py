"""The one error handler: every error a request can meet becomes error.html, the page it came from, or JSON.

One rule for the rendering (the same as app/http/respond.py): JSON under /api/ or for clients that ask for it,
``{"detail": ...}`` (plus what the error adds, e.g. both texts of a stale edit); otherwise HTML:
- LoginRequired: a redirect to the login page (HX-Redirect for htmx);
- an error that carries the page the user was on (``exc.page``), on a route that names its template: that page
  again with the message, so a typed text or a filled form is never lost;
- anything else: error.html, which names what went wrong and what exists (sources, index range, both texts).
Framework errors (unknown path, wrong method, a path or query value of the wrong type) go the same way.
"""

from __future__ import annotations

from urllib.parse import quote

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException

from app.errors import FeatureboardError, Invalid, LoginRequired, NotFound
from app.http.respond import SafeJSONResponse, redirect, render, wants_json


def _login_redirect(request: Request):
    target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
    return redirect(request, f"/login?next={quote(target)}")


def _from_framework(request: Request, exc: StarletteHTTPException) -> FeatureboardError:
    if exc.status_code == 404:
        message = exc.detail if exc.detail and exc.detail != "Not Found" else f"Nothing lives at {request.url.path}."
        return NotFound(str(message))
    error = FeatureboardError(str(exc.detail), headers=dict(exc.headers or {}))
    error.status = exc.status_code
    error.title = {405: "Method not allowed"}.get(exc.status_code, "Error")
    return error


def _from_validation(exc: RequestValidationError) -> Invalid:
    errors = []
    for e in exc.errors():
        item = {"loc": list(e.get("loc", ())), "msg": e.get("msg", ""), "type": e.get("type", "value_error")}
        errors.append(item)
    where = "; ".join(f"{'.'.join(str(p) for p in e['loc'] if p not in ('path', 'query', 'body'))}: {e['msg']}"
                      for e in errors)
    return Invalid(f"Cannot use this request: {where}.", errors=errors)


def _known_sources(request: Request) -> list[str]:
    from app.services.browse import source_names

    with request.app.state.sessionmaker() as session:
        return source_names(session)


async def handle_error(request: Request, exc: Exception):
    if isinstance(exc, RequestValidationError):
        if wants_json(request):  # FastAPI's own shape, which API clients already parse
            return SafeJSONResponse({"detail": _jsonable_errors(exc)}, status_code=422)
        exc = _from_validation(exc)
    elif isinstance(exc, StarletteHTTPException):
        exc = _from_framework(request, exc)
    assert isinstance(exc, FeatureboardError)
    if wants_json(request):
        return SafeJSONResponse(exc.json_body(), status_code=exc.status, headers=exc.headers)
    if isinstance(exc, LoginRequired):
        return _login_redirect(request)
    page_template = getattr(request.scope.get("endpoint"), "page_template", None)
    if exc.page is not None and page_template is not None:
        return page_template.response(request, exc.page, status_code=exc.status, headers=exc.headers,
                                      extra={"error": exc})
    sources = exc.detail.get("sources") if isinstance(exc.detail, dict) else None
    if isinstance(exc, NotFound) and sources is None:
        sources = _known_sources(request)
    return render(request, "error.html", {"error": exc, "sources": sources}, status_code=exc.status,
                  headers=exc.headers)


def _jsonable_errors(exc: RequestValidationError) -> list[dict]:
    from fastapi.encoders import jsonable_encoder

    return jsonable_encoder(exc.errors(), custom_encoder={bytes: lambda b: b.decode("utf-8", "replace")})


def register_error_handler(app: FastAPI) -> None:
    for kind in (FeatureboardError, StarletteHTTPException, RequestValidationError):
        app.add_exception_handler(kind, handle_error)
