"""Compare two sources (issue 17): matched shares over thresholds, summaries and linked lists, with its JSON twin;
a source's feature map as JSON (the source page draws it)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Request
from fastapi.responses import RedirectResponse

from app.http.deps import SessionDep
from app.http.plots import share_chart
from app.http.respond import API_PREFIX, page_route, show
from app.services import compare as data
from app.services.schemas.compare import ComparePublic, MapPublic

router = APIRouter(tags=["compare"])
NOT_FOUND = {404: {"description": "Unknown source; `detail` names the known sources"}}
ThresholdQuery = Annotated[float, Query(ge=-1, le=1, description="best correlation (or cosine) that counts as a "
                                        "match")]


def present_compare(request: Request, page: ComparePublic) -> dict:
    chart = share_chart(page.curves, "Share of live features whose best match reaches a threshold",
                        "threshold (correlation or decoder cosine)", "share of features")
    return {"chart": chart}


@page_route(router, "/sources/{source}/compare/{other}", name="compare", template="compare.html",
            present=present_compare, response_model=ComparePublic, responses=NOT_FOUND)
def read_compare(request: Request, source: str, other: str, session: SessionDep,
                 threshold: ThresholdQuery = data.DEFAULT_THRESHOLD):
    """Two sources side by side: how many of each one's features have a match in the other, and which."""
    page = data.compare_data(session, source, other, threshold)
    session.close()
    return show(request, page)


@router.get("/compare", name="compare_form", include_in_schema=False)
def read_compare_form(session: SessionDep, a: str = Query(...), b: str = Query(...)):
    """The source page's "compare with" form lands here and goes on to the compare page's one URL."""
    data.compare_data(session, a, b)  # validates both names through the same 404 as the page
    return RedirectResponse(data.compare_url(a, b), status_code=303)


@router.get(API_PREFIX + "/sources/{source}/map", response_model=MapPublic, responses=NOT_FOUND, name="api_map")
def read_map(source: str, session: SessionDep):
    """Every feature's 2-D position (PCA or UMAP of the decoder directions) and density, by feature index."""
    return data.map_data(session, source)
