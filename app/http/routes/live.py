"""HTML routes of the live pages: which features fire on my text, and testing one feature on any text.

Routes parse the form (or query string), await one data function from app.live.pages and render; the JSON
twins in app/api/live.py call the same functions. The routes are async so that waiting for the model
happens on the event loop, never in the thread pool that serves the other pages.
"""

from __future__ import annotations

from collections.abc import Mapping

from fastapi import APIRouter, Request
from markupsafe import Markup

from app.http.routes.api_live import router as api_router
from app.services import live as pages
from app.services.live_forms import live_request_from_params
from app.services.schemas.live import FeatureTestPublic, LiveRequest
from app.services.live_text import LiveInputError
from app.http.respond import render

router = APIRouter(tags=["live"])

async def _params(request: Request) -> Mapping:
    return await request.form() if request.method == "POST" else request.query_params


@router.api_route("/sources/{source}/live", methods=["GET", "POST"], name="live", include_in_schema=False)
async def read_live(request: Request, source: str):
    try:
        req, problem = live_request_from_params(await _params(request)), None
    except LiveInputError as exc:
        req, problem = LiveRequest(), exc
    outcome = await pages.live_data(request.app, source, req, problem)
    block = "token_features" if request.headers.get("HX-Target") == "token-features" else "results"
    return render(request, "live/live.html", {"page": outcome.page}, block=block,
                  status_code=outcome.status_code, headers=outcome.headers)


def feature_test_context(test: FeatureTestPublic, max_chars: int) -> dict:
    """The page's context: the shaded text and the histogram with its marker, computed here, not in Jinja."""
    from app.services.schemas.browse import ExamplePublic, HistogramPublic
    from app.http.plots import histogram_chart
    from app.http.token_html import example_markup

    shaded, chart, marker_x = Markup(""), None, None
    if test.tokens:
        example = ExamplePublic(rank=0, max_value=test.max_value, max_pos=test.max_pos or 0, start=0,
                                tokens=test.tokens, token_ids=test.token_ids, acts=test.acts)
        shaded = example_markup(example, test.corpus_max_act or test.max_value)
        hist = test.act_hist or {}
        chart = histogram_chart(HistogramPublic(edges=hist.get("edges") or [], counts=hist.get("counts") or []),
                                "activation (when active)", "Corpus activations")
        if test.marker is not None and not chart.empty:
            lo, hi = hist["edges"][0], hist["edges"][-1]
            span = (hi - lo) or 1.0
            inner_w = chart.width - chart.left - 8
            x = chart.left + (min(max(test.marker.value, lo), hi) - lo) / span * inner_w
            marker_x = round(x, 2)
    return {"test": test, "shaded": shaded, "chart": chart, "marker_x": marker_x, "max_chars": max_chars}


@router.api_route("/sources/{source}/features/{index}/test", methods=["GET", "POST"], name="feature_test",
                  include_in_schema=False)
async def test_feature(request: Request, source: str, index: int):
    params = await _params(request)
    outcome = await pages.feature_test_data(request.app, source, index, params.get("text") or "")
    ctx = feature_test_context(outcome.page, request.app.state.settings.max_live_chars)
    return render(request, "live/feature_test.html", ctx, block="test_result", status_code=outcome.status_code,
                  headers=outcome.headers)


# The JSON twins ride along, so register_routes needs one line for the whole live family.
router.include_router(api_router)
