"""HTML routes (one module per page family) and their JSON twins under /api/v1."""

from fastapi import FastAPI


def register_routes(app: FastAPI) -> None:
    from app.api import accounts as api_accounts
    from app.api import browse as api_browse
    from app.api import labels as api_labels
    from app.api import steer as api_steer
    from app.web import accounts, autolabel, browse, labels, live, meta, steer
    from app.web.errors import register_error_pages

    for router in (meta.router, browse.router, api_browse.router, accounts.router, labels.router,
                   api_accounts.router, api_labels.router, live.router, steer.router, api_steer.router,
                   autolabel.router):
        app.include_router(router)
    register_error_pages(app)
