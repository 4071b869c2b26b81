"""The FastAPI application factory.

``create_app(settings, bundle=None)`` builds an app over one database: one services Context
(app/services/context.py) on ``app.state.context``, the routes of every page family, the one error handler
and two middlewares. The model bundle (language model + SAEs) loads once in the lifespan when
``settings.load_model`` is on and no bundle was passed; pages never touch it, only live inference and steering.
"""

from __future__ import annotations

from contextlib import asynccontextmanager

from fastapi import Depends, FastAPI
from fastapi.staticfiles import StaticFiles

from app import __version__
from app.config import Settings
from app.http.errors import register_error_handler
from app.http.forward import ForwardedClientMiddleware, ModelForwardMiddleware
from app.http.middleware import (
    HeadMiddleware,
    PreparingMiddleware,
    ReadAccessMiddleware,
    RefuseNulMiddleware,
    SecurityHeadersMiddleware,
)
from app.http.origin import same_origin_guard
from app.http.ratelimit import RateLimits
from app.http.respond import SafeJSONResponse
from app.paths import STATIC_DIR
from app.services.context import Context
from app.services.page_cache import LRUCache
from app.services.secret_key import with_secret_key


def create_app(settings: Settings | None = None, bundle=None, migrate: bool = True, preparation=None,
               start_preparation=None, warm: bool = False) -> FastAPI:
    """``preparation`` (an app.services.startup.Preparation) with ``start_preparation(ctx)``: a first-start job
    that the lifespan starts in the background; until it is ready every page answers with its progress
    (PreparingMiddleware), and the job loads the model itself when it is done. ``warm``: render one of each
    main page before startup completes (app/http/warmup.py), as a served app does (:func:`serving_app`)."""
    settings = with_secret_key(settings or Settings())  # never a built-in key: configured or generated
    rate_limits = RateLimits(settings)  # Redis when configured (checked now), else this process's memory
    ctx = Context.open(settings, bundle=bundle, migrate=migrate)

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        if preparation is not None:
            start_preparation(ctx)
        elif ctx.bundle is None and settings.load_model:
            from app.services.startup import load_bundle_for_app

            ctx.set_bundle(load_bundle_for_app(settings, ctx.sessionmaker))
        if preparation is None:
            from app.services.autolabel import background
            from app.services.output_evidence import start_background

            start_background(ctx)
            background.start_background(ctx)
            if warm:
                from app.http.warmup import warm_up

                await warm_up(app, ctx)
        yield
        ctx.close()

    # Every POST/PUT/PATCH/DELETE first passes the same-origin check (app/http/origin.py). /docs and /redoc are
    # our own routes (app/http/routes/docs.py): Swagger UI and ReDoc from local files.
    app = FastAPI(title="Featureboard", version=__version__, lifespan=lifespan, docs_url=None, redoc_url=None,
                  dependencies=[Depends(same_origin_guard)], default_response_class=SafeJSONResponse)
    app.state.context = ctx
    # The pieces of the context that the HTTP layer reads directly (auth, rate limits, tests).
    app.state.settings = settings
    app.state.engine = ctx.engine
    app.state.sessionmaker = ctx.sessionmaker
    app.state.rate_limits = rate_limits
    app.state.preparation = preparation
    app.state.path_memo = {}  # app/http/respond.path_for
    app.state.page_cache = LRUCache(settings.page_cache_mb * 1024 * 1024)
    # Mounted before /static, which would otherwise answer /static/docs/... itself.
    app.mount("/static/docs", StaticFiles(packages=[("fastapi_offline", "static")]), name="docs_static")
    app.mount("/static", StaticFiles(directory=str(STATIC_DIR)), name="static")
    app.add_middleware(PreparingMiddleware)
    app.add_middleware(ReadAccessMiddleware)
    app.add_middleware(HeadMiddleware)
    app.add_middleware(RefuseNulMiddleware)
    app.add_middleware(ModelForwardMiddleware)  # with --workers N: model requests go to the model process
    app.add_middleware(ForwardedClientMiddleware)
    app.add_middleware(SecurityHeadersMiddleware)  # added last, so outermost: the access gate's answers get headers too

    from app.http.routes import register_routes

    register_routes(app)
    register_error_handler(app)
    return app


def serving_app() -> FastAPI:
    """The app ``featureboard serve --workers N`` runs in each worker (uvicorn's factory): settings from the
    environment, warmed before it accepts connections."""
    return create_app(warm=True)
