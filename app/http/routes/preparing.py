"""The waiting page of a first start (the demo's precompute): what is being prepared and how far it got.

Every page answers with it (503, Retry-After) until the job is ready (app/http/middleware.py); it polls
/-/progress with htmx, which answers ``HX-Refresh`` once the job is done so the browser shows the page it asked for.
Without JavaScript a meta refresh reloads the page every few seconds. /-/progress.json is the same as JSON.
"""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response

from app.http.respond import render, wants_json

router = APIRouter(include_in_schema=False)
RETRY_AFTER_S = 5


def _context(preparation) -> dict:
    return {"progress": preparation.snapshot(), "retry_after": RETRY_AFTER_S}


def preparing_response(request: Request, preparation) -> Response:
    """The answer to any page while the job runs: the waiting page, or its progress as JSON under /api/."""
    status = 500 if preparation.state == "failed" else 503
    headers = {"Retry-After": str(RETRY_AFTER_S)}
    if wants_json(request):
        snap = preparation.snapshot()
        detail = (f"The server is still preparing: {snap['title']}, step {snap['step']} of {snap['n_steps']}."
                  if status == 503 else f"Preparing failed: {snap['error']}")
        return JSONResponse({"detail": detail, "progress": snap}, status_code=status, headers=headers)
    return render(request, "preparing.html", _context(preparation), status_code=status, headers=headers)


@router.get("/-/progress", name="progress")
def read_progress(request: Request):
    preparation = request.app.state.preparation
    if preparation is None or preparation.ready:  # the waiting page reloads into the page it asked for
        return Response(status_code=204, headers={"HX-Refresh": "true"})
    return render(request, "preparing.html", _context(preparation), block="progress")


@router.get("/-/progress.json", name="progress_json")
def read_progress_json(request: Request) -> dict:
    preparation = request.app.state.preparation
    if preparation is None:
        return {"state": "ready", "title": None, "steps": [], "current": None}
    return preparation.snapshot()
