"""Steering pages and their JSON twins.

- /steer: the form (pre-filled from a feature page's Steer button); POST saves the run (or finds the identical
  saved one) and goes to its page. /api/v1/steer: the same data; POST runs the model (201) or answers from the
  saved run (200), or with ?stream=true streams server-sent events.
- /steer/{id}: a saved run, the same later for anyone with the link; /steer/{id}/stream: server-sent events that
  stream the tokens in (HTML fragments for htmx; JSON events under /api/v1).
"""

from __future__ import annotations

from typing import Annotated
from urllib.parse import urlencode

from fastapi import APIRouter, Query, Request
from fastapi.responses import RedirectResponse, StreamingResponse
from pydantic import BaseModel, ConfigDict, Field

from app.errors import FeatureboardError
from app.http import ratelimit
from app.http.auth import request_actor
from app.http.deps import CtxDep
from app.http.respond import (
    API_PREFIX,
    SafeJSONResponse,
    is_fragment_request,
    json_object_body,
    page_route,
    render,
    show,
    templates,
    wants_json,
)
from app.http.steer_view import run_view
from app.services import calibration, steering
from app.services import steer_stream as stream
from app.services.context import Context
from app.services.steer_spec import SteerRequest, invalid

router = APIRouter(tags=["steer"])
TEMPLATE = "steer/steer.html"
ERRORS = {422: {"description": "One message per bad field"}, 429: {"description": "Steering rate limit"},
          503: {"description": "No model loaded, or the model stayed busy past model_timeout_s"}}


def _account_id(request: Request) -> int | None:
    actor = request_actor(request)
    return actor.id if actor is not None else None


def charge(request: Request) -> None:
    """Count one steering run for this client (account, else address); 429 past FEATUREBOARD_STEER_RATE_LIMIT.
    Only model work is counted: an answer from a saved run costs nothing."""
    ratelimit.charge(request, "steer", ratelimit.client_key(request, _account_id(request)))


def present(request: Request, data: dict) -> dict:
    run = data.get("run")
    json_url = (request.url_for("api_steer_run", run_id=run["id"]) if run else request.url_for("api_steer"))
    return {"json_url": json_url}


def form_prefill(source: str | None, feature: str | None, strength: str | None, prompt: str | None) -> dict:
    prefill: dict = {}
    if prompt:
        prefill["prompt"] = prompt
    if source:
        prefill["features"] = [{"source": source, "feature": feature or "", "strength": strength or ""}]
    return prefill


def run_prefill(run: dict) -> dict:
    return {k: run[k] for k in ("prompt", "features", "method", "n_tokens", "temperature", "top_p", "seed",
                                "control", "sweep")}


def run_page_data(ctx: Context, run: dict) -> dict:
    return steering.page_data(ctx, run_prefill(run), run=run_view(run))


def form_data(form) -> dict:
    """The HTML form as a request dict: rows of (source, feature, strength), blank rows dropped."""
    features = []
    for source, feature, strength in zip(form.getlist("source"), form.getlist("feature"), form.getlist("strength")):
        if not (source.strip() or feature.strip() or strength.strip()):
            continue
        features.append({"source": source.strip(), "feature": feature.strip(), "strength": strength.strip()})
    data = {"prompt": form.get("prompt", ""), "features": features, "method": form.get("method", "additive"),
            "control": form.get("control") is not None, "sweep": form.get("sweep") is not None}
    for name in ("n_tokens", "temperature", "top_p", "seed"):
        value = form.get(name)
        if value not in (None, ""):
            data[name] = value
    return data


# -- the form -------------------------------------------------------------------------------------

@page_route(router, "/steer", name="steer", template=TEMPLATE, block="main", present=present)
def read_steer(request: Request, ctx: CtxDep, source: str | None = None, feature: str | None = None,
               strength: str | None = None, prompt: str | None = None):
    """What the steering page shows: model, steerable sources, limits, pre-filled form, recent runs.
    ?source=&feature= pre-fills one feature at its default strength."""
    return show(request, steering.page_data(ctx, form_prefill(source, feature, strength, prompt)))


@page_route(router, "/steer", name="create_steer_run", template=TEMPLATE, block="main", present=present,
            methods=("POST",), api=False)
async def create_steer_run(request: Request, ctx: CtxDep):
    """Save the run (or find the identical saved one) and go to its page, where it streams in."""
    run, _needs_work = steering.submit_form(ctx, form_data(await request.form()), _account_id(request))
    url = str(request.url_for("steer_run", run_id=run["id"]))
    if is_fragment_request(request):
        return show(request, run_page_data(ctx, run), headers={"HX-Push-Url": url})
    return RedirectResponse(url, status_code=303)


@page_route(router, "/steer/calibrate", name="calibrate_steer", template=TEMPLATE, block="main", present=present,
            methods=("POST",), api=False)
async def calibrate_steer(request: Request, ctx: CtxDep):
    """The form's "calibrate" button on one feature row: run the quick sweep, store it, and show the form again
    with that row's strength set to the calibrated one (the other fields as they were)."""
    form = await request.form()
    data = form_data(form)
    row = str(form.get("calibrate", "0"))
    if not row.isdigit() or int(row) >= len(data["features"]):
        raise invalid([{"loc": ["body", "calibrate"], "msg": f"no feature row {row!r} to calibrate",
                        "type": "value_error"}])
    entry = data["features"][int(row)]
    source, feature = entry["source"], _feature_index(entry["feature"], ["body", "features", int(row), "feature"])
    charge(request)
    await calibration.calibrate(ctx, source, feature)
    entry["strength"] = ""  # filled again from the stored calibration
    if is_fragment_request(request):
        return show(request, steering.page_data(ctx, data))
    query = {"source": source, "feature": feature, **({"prompt": data["prompt"]} if data["prompt"] else {})}
    return RedirectResponse(str(request.url_for("steer")) + "?" + urlencode(query), status_code=303)


class CalibrateRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    source: str = Field(min_length=1, max_length=200, description="Source (SAE) name")
    feature: int = Field(ge=0, description="Feature index")


@router.post(API_PREFIX + "/steer/calibrate", name="api_calibrate_steer", responses=ERRORS, status_code=201)
async def api_calibrate_steer(request: Request, ctx: CtxDep, body: CalibrateRequest):
    """Find and store a feature's calibrated default strength: the strongest strength of a quick sweep on the
    neutral prompts whose text stays within FEATUREBOARD_STEER_FLUENCY_BUDGET × the unsteered perplexity."""
    charge(request)
    return SafeJSONResponse(await calibration.calibrate(ctx, body.source, body.feature), status_code=201)


def _feature_index(value: str, loc: list) -> int:
    if not str(value).strip().isdigit():
        raise invalid([{"loc": loc, "msg": f"feature must be a whole number, got {value!r}", "type": "value_error"}])
    return int(value)


def _inlined_schema(model) -> dict:
    """``model``'s JSON schema with its nested models written in place: this body is declared by hand, so FastAPI
    never adds them to components/schemas, and a reference there would dangle (ReDoc refuses to render)."""
    schema = model.model_json_schema()
    defs = schema.pop("$defs", {})

    def inline(node):
        if isinstance(node, dict):
            ref = node.get("$ref", "")
            if ref.startswith("#/$defs/"):
                return inline(defs[ref.rsplit("/", 1)[1]])
            return {k: inline(v) for k, v in node.items()}
        return [inline(v) for v in node] if isinstance(node, list) else node

    return inline(schema)


# The body is read by hand: FastAPI's own 422 echoes the input, and a NaN in it cannot be written as JSON.
BODY_DOC = {"requestBody": {"required": True, "content": {"application/json": {"schema": _inlined_schema(SteerRequest)}}}}


@router.post(API_PREFIX + "/steer", name="api_create_steer_run", responses=ERRORS, status_code=201,
             openapi_extra=BODY_DOC)
async def api_create_steer_run(request: Request, ctx: CtxDep,
                               stream_events: Annotated[bool, Query(alias="stream")] = False):
    """Run a steering request (or return the identical saved run) — the fields of the steering form."""
    data = await json_object_body(request)
    run, needs_work = steering.submit(ctx, data, _account_id(request))
    if needs_work:
        charge(request)
    if stream_events:
        return _json_events(request, ctx, run)
    if not needs_work:
        return SafeJSONResponse({**run, "cached": True}, status_code=200)
    done = await stream.execute_until_done(ctx, run["id"], request.is_disconnected)
    return SafeJSONResponse({**done, "cached": False}, status_code=201)


# -- a saved run ----------------------------------------------------------------------------------

@page_route(router, "/steer/{run_id}", name="steer_run", template=TEMPLATE, block="main", present=present)
async def read_steer_run(request: Request, ctx: CtxDep, run_id: str,
                         wait: Annotated[bool, Query(description="run now and answer when done (no JavaScript)")] = False):
    """A saved run: request fields, both texts and the full result (tokens with top-5 alternatives, sweep).
    A pending run streams in on its page (or runs now with ?wait=1)."""
    run = steering.require_run(ctx, run_id)
    if wait and run["status"] != "complete":
        charge(request)
        run = await stream.execute_until_done(ctx, run_id, request.is_disconnected)
    if wants_json(request):
        return show(request, run)
    return show(request, run_page_data(ctx, run))


@router.get("/steer/{run_id}/stream", name="steer_run_stream", include_in_schema=False)
async def stream_steer_run(request: Request, ctx: CtxDep, run_id: str):
    """Server-sent events for htmx: one event per token per column, then "done" with the finished result block."""
    run = steering.require_run(ctx, run_id)
    token_macro = templates.env.get_template("steer/macros.html").module.token

    async def events():
        if run["status"] == "complete":
            yield stream.sse("done", _result_html(request, run))
            return
        try:
            charge(request)
        except FeatureboardError as exc:
            yield stream.sse("done", _result_html(request, run, error=exc.message))
            return
        async for kind, payload in stream.run_events(ctx, run_id, request.is_disconnected):
            if kind == "token":
                yield stream.sse(payload["row"], str(token_macro(payload)))
            elif kind == "done":
                yield stream.sse("done", _result_html(request, payload))
            else:
                yield stream.sse("done", _result_html(request, run, error=payload.message))

    return StreamingResponse(events(), media_type="text/event-stream", headers=stream.SSE_HEADERS)


@router.get(API_PREFIX + "/steer/{run_id}/stream", name="api_steer_run_stream", responses=ERRORS)
def api_stream_steer_run(request: Request, ctx: CtxDep, run_id: str):
    """Server-sent events of a run: the saved result at once, or its generation token by token."""
    run = steering.require_run(ctx, run_id)
    if run["status"] != "complete":
        charge(request)
    return _json_events(request, ctx, run)


def _json_events(request: Request, ctx: Context, run: dict) -> StreamingResponse:
    async def events():
        if run["status"] == "complete":
            yield stream.sse_json("done", {**run, "cached": True})
            return
        async for kind, payload in stream.run_events(ctx, run["id"], request.is_disconnected):
            yield stream.sse_json(kind, stream.error_payload(payload) if kind == "error" else payload)

    return StreamingResponse(events(), media_type="text/event-stream", headers=stream.SSE_HEADERS)


def _result_html(request: Request, run: dict, error: str | None = None) -> str:
    """The finished result block as HTML for the stream's last event (rendered as htmx would ask for it)."""
    scope = dict(request.scope)
    scope["headers"] = [*request.scope["headers"], (b"hx-request", b"true")]
    view = run_view(run)
    if error:
        view = {**view, "error": error, "pending": False, "rows": []}
    response = render(Request(scope, request.receive), TEMPLATE, {"run": view}, block="result")
    return response.body.decode()
