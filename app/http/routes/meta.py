"""Introspection: /-/health, /-/versions.json, /-/settings.json (Datasette style)."""

from __future__ import annotations

import platform
from importlib import metadata

from fastapi import APIRouter, Request

from app import __version__
from app.config import settings_table

router = APIRouter(tags=["meta"])


@router.get("/-/health")
def read_health(request: Request) -> dict:
    state = request.app.state
    bundle = getattr(state, "bundle", None)
    from app.store.sources import list_source_summaries

    with state.sessionmaker() as session:
        sources = list_source_summaries(session)
    return {
        "status": "ok",
        "version": __version__,
        "database": state.engine.url.render_as_string(hide_password=True),
        "database_backend": state.engine.dialect.name,
        "model": bundle.describe() if bundle is not None else None,
        "device": bundle.device_name if bundle is not None else None,
        "sources": [{"name": s["name"], "hook_name": s["hook_name"], "d_sae": s["d_sae"], "status": s["status"]}
                    for s in sources],
    }


@router.get("/-/versions.json")
def read_versions() -> dict:
    packages = {}
    for name in ("fastapi", "starlette", "uvicorn", "sqlalchemy", "alembic", "jinja2", "pydantic", "torch",
                 "transformers", "tokenizers", "safetensors"):
        try:
            packages[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            packages[name] = None
    return {"featureboard": __version__, "python": platform.python_version(), "packages": packages,
            "htmx": "2.0.11"}


@router.get("/-/settings.json")
def read_settings(request: Request) -> dict:
    return {"settings": request.app.state.settings.public_dict(),
            "documentation": [{"env": env, "default": default, "description": desc} for env, default, desc in settings_table()]}
