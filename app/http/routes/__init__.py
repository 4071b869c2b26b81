"""HTML routes (one module per page family) and their JSON twins under /api/v1."""

from fastapi import FastAPI


def register_routes(app: FastAPI) -> None:
    from app.http.routes import api_accounts as api_accounts
    from app.http.routes import api_browse as api_browse
    from app.http.routes import api_labels as api_labels
    from app.http.routes import api_steer as api_steer
    from app.http.routes import accounts, autolabel, browse, labels, live, meta, steer
    from app.http.errors import register_error_pages

    for router in (meta.router, browse.router, api_browse.router, accounts.router, labels.router,
                   api_accounts.router, api_labels.router, live.router, steer.router, api_steer.router,
                   autolabel.router):
        app.include_router(router)
    register_error_pages(app)
