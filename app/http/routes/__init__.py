"""Routes, one module per page family; each URL is defined once, its /api/v1 twin beside it."""

from fastapi import FastAPI


def register_routes(app: FastAPI) -> None:
    from app.http.routes import (
        accounts,
        attribution,
        autolabel,
        browse,
        compare,
        docs,
        labels,
        live,
        meta,
        preparing,
        report,
        steer,
        team,
    )

    # report before steer: /steer/report is not a steering run id
    for module in (meta, preparing, docs, browse, compare, accounts, labels, live, attribution, report, steer,
                   autolabel, team):
        app.include_router(module.router)
