"""Routes, one module per page family; each URL is defined once, its /api/v1 twin beside it."""

from fastapi import FastAPI


def register_routes(app: FastAPI) -> None:
    from app.http.routes import accounts, autolabel, browse, labels, live, meta, steer

    for module in (meta, browse, accounts, labels, live, steer, autolabel):
        app.include_router(module.router)
