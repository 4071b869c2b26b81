"""API docs served from this server's own files: Swagger UI at /docs and ReDoc at /redoc, and the favicon.

The Swagger UI and ReDoc bundles come from the PyPI package fastapi-offline (mounted at /static/docs, route name
docs_static, by app/http/app.py), so the docs work without internet and the docs' Content-Security-Policy names no other host.
FastAPI's own /docs starts Swagger UI with an inline script; here static/js/swagger-init.js does it, so the docs
allow scripts from 'self' only (styles stay 'unsafe-inline': both bundles inject their CSS at run time).
"""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import FileResponse

from app.http.respond import render
from app.paths import STATIC_DIR

router = APIRouter(include_in_schema=False)


@router.get("/docs", name="swagger_ui_html")
def read_swagger_ui(request: Request):
    return render(request, "docs/swagger.html", {"openapi_url": request.app.openapi_url})


@router.get("/redoc", name="redoc_html")
def read_redoc(request: Request):
    return render(request, "docs/redoc.html", {"openapi_url": request.app.openapi_url})


@router.get("/favicon.ico", name="favicon")
def read_favicon():
    return FileResponse(STATIC_DIR / "favicon.ico", media_type="image/x-icon",
                        headers={"Cache-Control": "public, max-age=86400"})
