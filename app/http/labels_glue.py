"""HTTP glue shared by the label and account routes: a DB session per request, LabelError -> response,
safe redirect targets, and the Jinja globals (`csrf_token`, `current_account`, `labels_panel`) that let
templates/labels/_feature_panel.html render inside any page from just `request`, `source` and `feature`."""

from __future__ import annotations

from typing import Callable

from fastapi import HTTPException, Request
from fastapi.responses import JSONResponse, RedirectResponse

from app.http import auth
from app.services.label_errors import Conflict, LabelError
from app.http.deps import SessionDep  # noqa: F401 - re-exported: one session dependency for every page family
from app.http.respond import render, templates




def page(request: Request, template: str, build: Callable[[], dict], block: str | None = None, status_code=200):
    """Render `template` (or its htmx `block`) from `build()`, or the error page for a LabelError."""
    try:
        data = build()
    except LabelError as exc:
        return error_page(request, exc)
    response = render(request, template, data, block=block, status_code=status_code)
    auth.ensure_prelogin_cookie(request, response)
    return response


def error_page(request: Request, exc: LabelError):
    return render(request, "labels/error.html", {"message": exc.message, "status": exc.status},
                  status_code=exc.status)


def safe_next(target: str | None, default: str) -> str:
    """Only same-site paths are followed after a form post (no open redirects)."""
    if target and target.startswith("/") and not target.startswith("//") and "\\" not in target:
        return target
    return default


def redirect(request: Request, target: str):
    """303 for plain forms; for htmx requests HX-Redirect, so the browser does a full navigation."""
    if request.headers.get("HX-Request") == "true":
        return JSONResponse(None, status_code=200, headers={"HX-Redirect": target})
    return RedirectResponse(target, status_code=303)


def api(call: Callable[[], object]):
    """Run a label operation for the JSON API: LabelError -> HTTP status with a human message; a stale edit ->
    409 with the current label and the text that was sent."""
    try:
        return call()
    except Conflict as exc:
        return JSONResponse({"detail": exc.message, "current": exc.current, "yours": exc.yours}, status_code=409)
    except LabelError as exc:
        raise HTTPException(exc.status, exc.message) from None


def _labels_panel(request: Request, source: dict, feature: dict) -> dict | None:
    from app.services import labels as service

    with request.app.state.sessionmaker() as session:
        try:
            return service.feature_labels_data(session, auth.current_account(request), str(source["name"]),
                                               int(feature["index"]))
        except LabelError:
            return None


templates.env.globals.update(csrf_token=auth.csrf_token, current_account=auth.current_account,
                             labels_panel=_labels_panel)
