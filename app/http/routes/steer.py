"""Steering pages: /steer (form, pre-filled from a feature page's Steer button), /steer/{id} (a saved run, shared
by link), /steer/{id}/stream (server-sent events that stream the tokens in). JSON twins live in app/api/steer.py
and share these helpers."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, HTTPException, Query, Request
from fastapi.responses import RedirectResponse, StreamingResponse

from app.http import steer_clients as clients
from app.services import steering as service, steer_stream as stream
from app.services.steer_spec import SteerInvalid
from app.http.steer_view import run_view
from app.http.respond import is_fragment_request, render, templates

router = APIRouter(tags=["steer"])
TEMPLATE = "steer/steer.html"


# -- shared with the JSON API ---------------------------------------------------------------------
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


def submit(request: Request, data: dict) -> tuple[dict, bool]:
    """Validate and find or create the run: (run, needs_model_work). Raises SteerInvalid / SteeringOff."""
    prepared = service.prepare(request.app.state, data)
    return service.find_or_create(request.app.state, prepared, clients.current_account_id(request))


def load_run(request: Request, run_id: str) -> dict:
    run = service.get_run(request.app.state, run_id)
    if run is None:
        raise HTTPException(404, f"No steering run {run_id!r}; runs are shared as /steer/{{id}} links.")
    return run


def charge(request: Request) -> None:
    clients.charge(request, clients.current_account_id(request))


async def execute_until_done(request: Request, run_id: str) -> dict:
    """Run the model off the event loop and wait; stops if the client disconnects. Errors become HTTP errors."""
    async for kind, payload in stream.run_events(request.app.state, run_id, request.is_disconnected):
        if kind == "done":
            return payload
        if kind == "error":
            headers = {"Retry-After": str(payload["retry_after"])} if "retry_after" in payload else None
            raise HTTPException(payload["status"], payload["message"], headers=headers)
    raise HTTPException(500, "steering ended without a result")


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


# -- HTML -----------------------------------------------------------------------------------------
@router.get("/steer", name="steer")
def read_steer(request: Request, source: str | None = None, feature: str | None = None,
               strength: str | None = None, prompt: str | None = None):
    """The steering form; ?source=&feature= pre-fills one feature at its default strength."""
    data = service.page_data(request.app.state, form_prefill(source, feature, strength, prompt))
    return render(request, TEMPLATE, {**data, "json_url": request.url_for("api_steer")}, block="main")


@router.post("/steer", name="create_steer_run")
async def create_steer_run(request: Request):
    """Save the run (or find the identical saved one) and go to its page, where it streams in."""
    data = form_data(await request.form())
    state = request.app.state
    try:
        run, _needs_work = submit(request, data)
    except SteerInvalid as exc:
        ctx = service.page_data(state, data, errors=exc.by_field())
        return render(request, TEMPLATE, {**ctx, "json_url": request.url_for("api_steer")}, block="main",
                      status_code=422)
    except service.SteeringOff as exc:
        ctx = service.page_data(state, data, errors={"request": str(exc)})
        return render(request, TEMPLATE, {**ctx, "json_url": request.url_for("api_steer")}, block="main",
                      status_code=503)
    url = str(request.url_for("steer_run", run_id=run["id"]))
    if is_fragment_request(request):
        return run_page(request, run, headers={"HX-Push-Url": url})
    return RedirectResponse(url, status_code=303)




def run_page(request: Request, run: dict, headers: dict | None = None, status_code: int = 200):
    ctx = service.page_data(request.app.state, run_prefill(run), run=run_view(run))
    return render(request, TEMPLATE, {**ctx, "json_url": request.url_for("api_steer_run", run_id=run["id"])},
                  block="main", headers=headers, status_code=status_code)


@router.get("/steer/{run_id}", name="steer_run")
async def read_steer_run(request: Request, run_id: str,
                         wait: Annotated[bool, Query(description="run now and answer when done (no JavaScript)")] = False):
    """A saved run, the same later for anyone with the link. A pending run streams in (or runs now with ?wait=1)."""
    run = load_run(request, run_id)
    if wait and run["status"] != "complete":
        charge(request)
        run = await execute_until_done(request, run_id)
    return run_page(request, run)


@router.get("/steer/{run_id}/stream", name="steer_run_stream")
async def stream_steer_run(request: Request, run_id: str):
    """Server-sent events for htmx: one event per token per column, then "done" with the finished result block."""
    run = load_run(request, run_id)
    token_macro = templates.env.get_template("steer/macros.html").module.token

    async def events():
        if run["status"] == "complete":
            yield stream.sse("done", _result_html(request, run))
            return
        try:
            charge(request)
        except HTTPException as exc:
            yield stream.sse("done", _result_html(request, run, error=exc.detail))
            return
        async for kind, payload in stream.run_events(request.app.state, run_id, request.is_disconnected):
            if kind == "token":
                yield stream.sse(payload["row"], str(token_macro(payload)))
            elif kind == "done":
                yield stream.sse("done", _result_html(request, payload))
            else:
                yield stream.sse("done", _result_html(request, run, error=payload["message"]))

    return StreamingResponse(events(), media_type="text/event-stream", headers=stream.SSE_HEADERS)


def _result_html(request: Request, run: dict, error: str | None = None) -> str:
    """The finished result block as HTML for the stream's last event (rendered through render(), as htmx would)."""
    scope = dict(request.scope)
    scope["headers"] = [*request.scope["headers"], (b"hx-request", b"true")]
    view = run_view(run)
    if error:
        view = {**view, "error": error, "pending": False, "rows": []}
    response = render(Request(scope, request.receive), TEMPLATE, {"run": view}, block="result")
    return response.body.decode()
