"""JSON twin of the steering pages under /api/v1/steer: the same data functions, with streaming too.

POST /api/v1/steer answers an identical earlier request from its saved run (200, no model work); otherwise it
runs the model (201), or with ?stream=true streams server-sent events: "token" per generated token of the
default, steered and control rows, then "done" with the saved run or "error".
"""

from __future__ import annotations

import json
from typing import Annotated

from fastapi import APIRouter, HTTPException, Query, Request
from fastapi.responses import JSONResponse, StreamingResponse

from app.services import steering as service, steer_stream as stream
from app.services.steer_spec import SteerInvalid, SteerRequest
from app.http.routes import steer as web

router = APIRouter(prefix="/api/v1", tags=["steer"])
ERRORS = {422: {"description": "One message per bad field"}, 429: {"description": "Steering rate limit"},
          503: {"description": "No model loaded, or the model stayed busy past model_timeout_s"}}


@router.get("/steer", name="api_steer")
def read_steer(request: Request, source: str | None = None, feature: str | None = None,
               strength: str | None = None, prompt: str | None = None) -> dict:
    """What the steering page shows: model, steerable sources, limits, pre-filled form, recent runs."""
    return service.page_data(request.app.state, web.form_prefill(source, feature, strength, prompt))


# The body is read by hand: FastAPI's own 422 echoes the input, and a NaN in it cannot be written as JSON.
BODY_DOC = {"requestBody": {"required": True, "content": {"application/json": {
    "schema": SteerRequest.model_json_schema(ref_template="#/components/schemas/{model}")}}}}


@router.post("/steer", name="api_create_steer_run", responses=ERRORS, status_code=201, openapi_extra=BODY_DOC)
async def create_steer_run(request: Request, stream_events: Annotated[bool, Query(alias="stream")] = False):
    """Run a steering request (or return the identical saved run) — the fields of the steering form."""
    try:
        data = json.loads(await request.body())
    except ValueError as exc:
        return JSONResponse({"detail": [{"loc": ["body"], "msg": f"not valid JSON: {exc}", "type": "json_invalid"}]},
                            status_code=422)
    if not isinstance(data, dict):
        return JSONResponse({"detail": [{"loc": ["body"], "msg": "the body must be a JSON object",
                                         "type": "type_error"}]}, status_code=422)
    try:
        run, needs_work = web.submit(request, data)
    except SteerInvalid as exc:
        return JSONResponse({"detail": exc.errors}, status_code=422)
    except service.SteeringOff as exc:
        raise HTTPException(503, str(exc)) from None
    if not needs_work:
        if stream_events:
            return _sse_response(request, run, charge=False)
        return JSONResponse({**run, "cached": True}, status_code=200)
    web.charge(request)
    if stream_events:
        return _sse_response(request, run, charge=False)
    done = await web.execute_until_done(request, run["id"])
    return JSONResponse({**done, "cached": False}, status_code=201)


@router.get("/steer/{run_id}", name="api_steer_run")
def read_steer_run(request: Request, run_id: str) -> dict:
    """A saved run: request fields, both texts and the full result (tokens with top-5 alternatives, sweep)."""
    return web.load_run(request, run_id)


@router.get("/steer/{run_id}/stream", name="api_steer_run_stream", responses=ERRORS)
def stream_steer_run(request: Request, run_id: str):
    """Server-sent events of a run: the saved result at once, or its generation token by token."""
    run = web.load_run(request, run_id)
    return _sse_response(request, run, charge=run["status"] != "complete")


def _sse_response(request: Request, run: dict, charge: bool) -> StreamingResponse:
    if charge:
        web.charge(request)

    async def events():
        if run["status"] == "complete":
            yield stream.sse_json("done", {**run, "cached": True})
            return
        async for kind, payload in stream.run_events(request.app.state, run["id"], request.is_disconnected):
            yield stream.sse_json(kind, payload)

    return StreamingResponse(events(), media_type="text/event-stream", headers=stream.SSE_HEADERS)
