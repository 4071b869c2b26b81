"""Live pages: which features fire on my text, and testing one feature on any text; their JSON twins.

The routes are async so that waiting for the model happens on the event loop, never in the thread pool that
serves the other pages. Errors (413 over a limit, 422 a bad field, 503 no model or busy with Retry-After) come
from the services with the page attached, so the HTML shows the form again and JSON gets ``detail``.
"""

from __future__ import annotations

from collections.abc import Mapping

from fastapi import APIRouter, Request
from markupsafe import Markup
from pydantic import ValidationError

from app.errors import Invalid
from app.http.deps import CtxDep
from app.http.plots import histogram_chart
from app.http.respond import API_PREFIX, json_response, page_route, show
from app.http.token_html import example_markup
from app.services import live
from app.services.schemas.browse import ExamplePublic, HistogramPublic
from app.services.schemas.live import (
    FeatureTestPublic,
    FeatureTestRequest,
    LiveMultiPublic,
    LiveMultiRequest,
    LivePublic,
    LiveRequest,
)

router = APIRouter(tags=["live"])
ERRORS = {
    404: {"description": "Unknown source or feature; `detail` names what exists"},
    413: {"description": "Text over the character or token limit; `detail` names the limit"},
    422: {"description": "A field that cannot be used; `detail` says which"},
    503: {"description": "No model loaded, or the model stayed busy past model_timeout_s (then Retry-After)"},
}


async def _params(request: Request) -> Mapping:
    return await request.form() if request.method == "POST" else request.query_params


@page_route(router, "/sources/{source}/live", name="live", template="live/live.html", block="results",
            methods=("GET", "POST"), api=False)
async def read_live(request: Request, ctx: CtxDep, source: str):
    page = await live.live_data_from_params(ctx, source, await _params(request))
    block = "token_features" if request.headers.get("HX-Target") == "token-features" else None
    return show(request, page, block=block)


@router.get(API_PREFIX + "/sources/{source}/live", response_model=LivePublic, responses=ERRORS, name="api_live_get")
async def read_live_json(ctx: CtxDep, source: str, request: Request):
    """The live page as JSON, with query parameters (`text`, `ignore_bos`, `max_density`, `tokens` as "3,5-8",
    `token`)."""
    return json_response(await live.live_data_from_params(ctx, source, request.query_params))


@router.post(API_PREFIX + "/sources/{source}/live", response_model=LivePublic, responses=ERRORS, name="api_live")
async def run_live(ctx: CtxDep, source: str, body: LiveRequest):
    """Run the model and this source's SAE on `text`: every token with its top features, and the features
    ranked by their max over the kept tokens (BOS, density and token filters as on the page)."""
    return json_response(await live.live_data(ctx, source, body))


@router.post(API_PREFIX + "/live", response_model=LiveMultiPublic, responses=ERRORS, name="api_live_multi")
async def run_live_multi(ctx: CtxDep, body: LiveMultiRequest):
    """Several sources on one text; sources on the same model share one forward pass."""
    return json_response(await live.live_multi_data(ctx, body))


def present_feature_test(request: Request, test: FeatureTestPublic) -> dict:
    """The shaded text and the histogram with its marker, computed here, not in Jinja."""
    max_chars = request.app.state.settings.max_live_chars
    shaded, chart, marker_x = Markup(""), None, None
    if test.tokens:
        example = ExamplePublic(rank=0, max_value=test.max_value, max_pos=test.max_pos or 0, start=0,
                                tokens=test.tokens, token_ids=test.token_ids, acts=test.acts)
        shaded = example_markup(example, test.corpus_max_act or test.max_value, focusable=True)
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


@page_route(router, "/sources/{source}/features/{index}/test", name="feature_test", template="live/feature_test.html",
            block="test_result", present=present_feature_test, methods=("GET", "POST"),
            response_model=FeatureTestPublic, responses=ERRORS)
async def test_feature(request: Request, ctx: CtxDep, source: str, index: int):
    """This feature's activation at every token of `text`, its max, and where that max falls among the corpus
    activations (`marker.percentile`). JSON: POST a body {"text": ...} or GET ?text=."""
    if request.url.path.startswith(API_PREFIX) and request.method == "POST":
        try:
            text = FeatureTestRequest.model_validate_json(await request.body() or b"{}").text
        except ValidationError as exc:
            errors = [{"loc": ["body", *e["loc"]], "msg": e["msg"], "type": e["type"]} for e in exc.errors()]
            raise Invalid('The body must be a JSON object such as {"text": "..."}: '
                          + "; ".join(e["msg"] for e in errors) + ".", errors=errors) from None
    else:
        text = (await _params(request)).get("text") or ""
    page = await live.feature_test_data(ctx, source, index, text)
    return show(request, page)
