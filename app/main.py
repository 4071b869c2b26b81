"""The FastAPI application factory.

`create_app(settings, bundle=None)` builds an app over one database. The model bundle (language
model + SAEs, see app/ml/bundle.py) is loaded once in the lifespan when `settings.load_model` is on
and no bundle was passed; pages never touch it, only live inference and steering do.
"""

from __future__ import annotations

from contextlib import asynccontextmanager

from fastapi import FastAPI
from fastapi.staticfiles import StaticFiles

from app import __version__
from app.config import Settings
from app.db import make_engine, make_sessionmaker, upgrade_database
from app.paths import STATIC_DIR


def create_app(settings: Settings | None = None, bundle=None, migrate: bool = True) -> FastAPI:
    settings = settings or Settings()
    url = settings.resolved_database_url
    if migrate:
        upgrade_database(url)
    engine = make_engine(url)

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        if app.state.bundle is None and settings.load_model:
            from app.runtime import load_bundle_for_app

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

    from app.web import register_routes

    register_routes(app)
    return app
