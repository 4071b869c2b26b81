"""JSON twins of the live pages under /api/v1: the same data functions as app/web/live.py.

Errors carry the page's message as `detail`: 404 names the known sources (or the valid index range),
413 the character or token limit, 422 a bad field, 503 a model that is off or busy (busy adds Retry-After).
"""

from __future__ import annotations

from fastapi import APIRouter, HTTPException, Request, Response
from pydantic import BaseModel

from app.services import live as pages
from app.services.schemas.live import FeatureTestPublic, FeatureTestRequest, LiveMultiPublic, LiveMultiRequest, LivePublic, LiveRequest
from app.services.runner import LiveUnavailable, get_service
from app.services.live_text import LiveInputError
from app.services.live_forms import live_request_from_params

router = APIRouter(prefix="/api/v1", tags=["live"])

ERRORS = {
    404: {"description": "Unknown source or feature; `detail` names what exists"},
    413: {"description": "Text over the character or token limit; `detail` names the limit"},
    422: {"description": "A field that cannot be used; `detail` says which"},
    503: {"description": "No model loaded, or the model stayed busy past model_timeout_s (then Retry-After)"},
}


def _ok(outcome: pages.Outcome) -> Response:
    if outcome.status_code >= 400:
        raise HTTPException(outcome.status_code, detail=outcome.error, headers=outcome.headers)
    return _json(outcome.page)


def _json(model: BaseModel) -> Response:
    # Serialised once, directly: FastAPI would otherwise validate the (pos x top_k)-entry page against
    # response_model again, which costs more than the SAE encode. response_model stays for the docs.
    return Response(model.model_dump_json(), media_type="application/json")


@router.post("/sources/{source}/live", response_model=LivePublic, responses=ERRORS, name="api_live")
async def run_live(request: Request, source: str, body: LiveRequest):
    """Run the model and this source's SAE on `text`: every token with its top features, and the features
    ranked by their max over the kept tokens (BOS, density and token filters as on the page)."""
    return _ok(await pages.live_data(request.app, source, body))


@router.get("/sources/{source}/live", response_model=LivePublic, responses=ERRORS, name="api_live_get")
async def read_live(request: Request, source: str):
    """The same with query parameters (`text`, `ignore_bos`, `max_density`, `tokens` as "3,5-8", `token`)."""
    try:
        body, problem = live_request_from_params(request.query_params), None
    except LiveInputError as exc:
        body, problem = LiveRequest(), exc
    return _ok(await pages.live_data(request.app, source, body, problem))


@router.post("/live", response_model=LiveMultiPublic, responses=ERRORS, name="api_live_multi")
async def run_live_multi(request: Request, body: LiveMultiRequest):
    """Several sources on one text; sources on the same model share one forward pass."""
    try:
        service = get_service(request.app)
    except LiveUnavailable as exc:
        raise HTTPException(503, detail=exc.message) from None
    names = body.sources or sorted(service.bundle.saes)
    before = service.forward_passes
    single = LiveRequest(**body.model_dump(exclude={"sources"}))
    data = {}
    for name in names:
        outcome = await pages.live_data(request.app, name, single)
        _ok(outcome)
        data[name] = outcome.page
    return _json(LiveMultiPublic.model_construct(data=data, forward_passes=service.forward_passes - before))


@router.post("/sources/{source}/features/{index}/test", response_model=FeatureTestPublic, responses=ERRORS,
             name="api_feature_test")
async def test_feature(request: Request, source: str, index: int, body: FeatureTestRequest):
    """This feature's activation at every token of `text`, its max, and where that max falls among the
    corpus activations (`marker.percentile`)."""
    return _ok(await pages.feature_test_data(request.app, source, index, body.text))


@router.get("/sources/{source}/features/{index}/test", response_model=FeatureTestPublic, responses=ERRORS,
            name="api_feature_test_get")
async def read_feature_test(request: Request, source: str, index: int, text: str = ""):
    return _ok(await pages.feature_test_data(request.app, source, index, text))
