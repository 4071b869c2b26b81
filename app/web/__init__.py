"""HTML routes (one module per page family) and their JSON twins under /api/v1."""

from fastapi import FastAPI


def register_routes(app: FastAPI) -> None:
    from app.web import meta, pages

    app.include_router(meta.router)
    app.include_router(pages.router)
