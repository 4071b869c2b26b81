"""Steering report cards.

- /steer/report: the form (?source=&feature= pre-fills one feature); POST runs it (or finds the identical stored
  one) and goes to its page. POST /api/v1/steer/report: the same, JSON in and out (201 new, 200 stored).
- /steer/report/{id}: a stored report card, plotted; /api/v1/steer/report/{id}: its JSON twin.
"""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import RedirectResponse

from app.http.auth import request_actor
from app.http.deps import CtxDep
from app.http.report_view import report_view
from app.http.respond import API_PREFIX, SafeJSONResponse, json_object_body, page_route, show, wants_json
from app.http.routes.steer import ERRORS, charge
from app.services import report_card as service
from app.services.steer_spec import invalid

router = APIRouter(tags=["steer"])
TEMPLATE = "steer/report.html"


def _account_id(request: Request) -> int | None:
    actor = request_actor(request)
    return actor.id if actor is not None else None


def present(request: Request, data: dict) -> dict:
    report = data.get("report")
    json_url = request.url_for("api_steer_report", report_id=report["id"]) if report else request.url_for(
        "api_steer_report_form")
    return {"json_url": json_url, "view": report_view(report) if report else None}


def form_data(form) -> dict:
    """The HTML form as a request dict: one feature per "source:index[@strength]" line, one prompt per line."""
    features = []
    for n, line in enumerate(str(form.get("features", "")).splitlines(), start=1):
        line = line.strip()
        if not line:
            continue
        spec, _, strength = line.partition("@")
        source, _, index = spec.rpartition(":")
        if not source or not index.strip().isdigit():
            raise invalid([{"loc": ["body", "features"], "msg": f"line {n} ({line!r}) is not source:index or "
                                                                "source:index@strength", "type": "value_error"}])
        features.append({"source": source.strip(), "feature": int(index),
                         **({"strength": strength.strip()} if strength.strip() else {})})
    data: dict = {"features": features, "method": form.get("method", "additive"),
                  "prompts": [p for p in str(form.get("prompts", "")).splitlines() if p.strip()]}
    multiples = str(form.get("multiples", "")).replace(",", " ").split()
    if multiples:
        data["multiples"] = multiples
    for name in ("n_tokens", "seed"):
        if form.get(name) not in (None, ""):
            data[name] = form.get(name)
    if not data["prompts"]:
        del data["prompts"]
    return data


@page_route(router, "/steer/report", name="steer_report_form", template=TEMPLATE, present=present)
def read_report_form(request: Request, ctx: CtxDep, source: str | None = None, feature: int | None = None):
    """The report card form: features, prompts (the built-in neutral ones, editable), method, strength sweep."""
    prefill = {"features": [{"source": source, "feature": feature}]} if source and feature is not None else {}
    return show(request, service.form_page(ctx, prefill))


@page_route(router, "/steer/report", name="create_steer_report_form", template=TEMPLATE, present=present,
            methods=("POST",), api=False)
async def create_report_form(request: Request, ctx: CtxDep):
    report, created = await service.create(ctx, form_data(await request.form()), _account_id(request))
    return RedirectResponse(str(request.url_for("steer_report", report_id=report["id"])), status_code=303)


@router.post(API_PREFIX + "/steer/report", name="api_create_steer_report", responses=ERRORS, status_code=201)
async def api_create_report(request: Request, ctx: CtxDep):
    """Run a report card (or return the identical stored one, 200): body as in the form (features, method,
    prompts, multiples, n_tokens, seed)."""
    data = await json_object_body(request)
    service.parse(data)  # a bad request is refused before it counts against the rate limit
    charge(request)
    report, created = await service.create(ctx, data, _account_id(request))
    return SafeJSONResponse({**report, "cached": not created}, status_code=201 if created else 200)


@page_route(router, "/steer/report/{report_id}", name="steer_report", template=TEMPLATE, present=present)
def read_report(request: Request, ctx: CtxDep, report_id: str):
    """A stored report card: per strength, concept (feature activation, label similarity), fluency, off-target KL,
    steered and same-method random-direction control."""
    report = service.require(ctx, report_id)
    if wants_json(request):
        return show(request, report)
    return show(request, service.form_page(ctx, report["request"], report=report))
