"""Attribution on the live page: /live/attribution (the form; POST runs it) and its JSON twin
POST /api/v1/live/attribution; /live/attribution/ablate (one feature ablated, an htmx block) and
POST /api/v1/live/attribution/ablate."""

from __future__ import annotations

from fastapi import APIRouter, Request

from app.http.deps import CtxDep
from app.http.respond import API_PREFIX, SafeJSONResponse, json_object_body, page_route, show
from app.http.routes.live import ERRORS
from app.services import attribution as service

router = APIRouter(tags=["live"])
TEMPLATE = "live/attribution.html"


def present(request: Request, data: dict) -> dict:
    return {"json_url": request.url_for("api_attribution")}


@page_route(router, "/live/attribution", name="attribution_form", template=TEMPLATE, present=present, api=False)
def read_attribution_form(request: Request, ctx: CtxDep, text: str = "", target: str = "", baseline: str = ""):
    """The form, pre-filled from the query (nothing runs until it is sent)."""
    return show(request, service.form_data(ctx, {"text": text, "target": target, "baseline": baseline}))


@page_route(router, "/live/attribution", name="attribution", template=TEMPLATE, block="results", present=present,
            methods=("POST",), api=False)
async def create_attribution(request: Request, ctx: CtxDep):
    """Rank the features of every loaded SAE by activation × gradient of the target logit at the last token."""
    return show(request, await service.attribution_page(ctx, await request.form()))


@page_route(router, "/live/attribution/ablate", name="attribution_ablate", template=TEMPLATE, block="ablation",
            present=present, methods=("POST",), api=False)
async def create_ablation(request: Request, ctx: CtxDep):
    """One feature clamped to 0 at every position: the target's probability before and after."""
    return show(request, {**service.form_data(ctx, {}), "ablation": await service.ablation_data(ctx, await request.form())})


@router.post(API_PREFIX + "/live/attribution", name="api_attribution", responses=ERRORS)
async def api_attribution(request: Request, ctx: CtxDep):
    """Body ``{"text", "target", "baseline"?}`` (tokens as text or "#id"): features ranked by attribution, and per
    SAE the features' total, error and bias terms and their exact sum x·grad."""
    return SafeJSONResponse(await service.attribution_data(ctx, await json_object_body(request)))


@router.post(API_PREFIX + "/live/attribution/ablate", name="api_attribution_ablate", responses=ERRORS)
async def api_ablation(request: Request, ctx: CtxDep):
    """Body ``{"text", "target", "baseline"?, "source", "feature"}``: probabilities before and after ablating."""
    return SafeJSONResponse(await service.ablation_data(ctx, await json_object_body(request)))
