"""Home page and its JSON twin."""

from __future__ import annotations

from fastapi import APIRouter, Request

from app import queries
from app.web.render import render

router = APIRouter()


def home_data(request: Request) -> dict:
    bundle = request.app.state.bundle
    with request.app.state.sessionmaker() as session:
        sources = queries.list_source_summaries(session)
    return {"model": bundle.describe() if bundle is not None else None, "sources": sources}


@router.get("/", name="home")
def read_home(request: Request):
    return render(request, "home.html", home_data(request))


@router.get("/api/v1", name="api_home")
def read_home_json(request: Request) -> dict:
    return home_data(request)
