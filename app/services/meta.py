"""Introspection data: /-/health, /-/versions.json, /-/settings.json (Datasette style)."""

from __future__ import annotations

import os
import platform
from importlib import metadata

from app import __version__
from app.config import settings_table
from app.services.context import Context
from app.store.sources import list_source_summaries

PACKAGES = ("fastapi", "starlette", "uvicorn", "sqlalchemy", "alembic", "jinja2", "pydantic", "torch",
            "transformers", "tokenizers", "safetensors")
HTMX_VERSION = "2.0.11"


def health_data(ctx: Context) -> dict:
    with ctx.sessionmaker() as session:
        sources = list_source_summaries(session)
    return {
        "status": "ok",
        "pid": os.getpid(),  # which worker answered (serve --workers N)
        "model_process": ctx.settings.model_socket or None,
        "version": __version__,
        "database": ctx.engine.url.render_as_string(hide_password=True),
        "database_backend": ctx.engine.dialect.name,
        "model": ctx.model_summary(),
        "device": ctx.bundle.device_name if ctx.bundle is not None else None,
        "sources": [{"name": s["name"], "hook_name": s["hook_name"], "d_sae": s["d_sae"], "status": s["status"]}
                    for s in sources],
    }


def versions_data() -> dict:
    packages = {}
    for name in PACKAGES:
        try:
            packages[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            packages[name] = None
    return {"featureboard": __version__, "python": platform.python_version(), "packages": packages,
            "htmx": HTMX_VERSION}


def settings_data(ctx: Context) -> dict:
    return {"settings": ctx.settings.public_dict(),
            "documentation": [{"env": env, "default": default, "description": desc}
                              for env, default, desc in settings_table()]}
