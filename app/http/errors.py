"""404s that say what exists: an HTML page for browsers, JSON `detail` under /api."""

from __future__ import annotations

from fastapi import FastAPI, Request
from fastapi.exception_handlers import http_exception_handler
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from app.store.browse import source_names
from app.services.browse import BrowseNotFound
from app.http.respond import render


def _wants_json(request: Request) -> bool:
    return request.url.path.startswith("/api/") or request.url.path == "/api" or (
        "application/json" in request.headers.get("accept", "") and "text/html" not in request.headers.get("accept", ""))


def register_error_pages(app: FastAPI) -> None:
    @app.exception_handler(BrowseNotFound)
    async def browse_not_found(request: Request, exc: BrowseNotFound):
        if _wants_json(request):
            return JSONResponse({"detail": exc.detail()}, status_code=404)
        return render(request, "not_found.html", {"error": exc}, status_code=404)

    @app.exception_handler(StarletteHTTPException)
    async def not_found_page(request: Request, exc: StarletteHTTPException):
        if exc.status_code != 404 or _wants_json(request):
            return await http_exception_handler(request, exc)
        with request.app.state.sessionmaker() as session:
            known = source_names(session)
        message = exc.detail if exc.detail and exc.detail != "Not Found" else f"Nothing lives at {request.url.path}."
        return render(request, "not_found.html", {"error": BrowseNotFound(str(message), known)}, status_code=404)
