"""One helper renders a page or one of its blocks (jinja2-fragments style).

A block is rendered alone only for a real htmx request: HX-Request true, not boosted and not a
history restore. Every response carries `Vary: HX-Request` so caches keep the two apart.
"""

from __future__ import annotations

from typing import Any

from fastapi import Request
from fastapi.responses import HTMLResponse
from fastapi.templating import Jinja2Templates

from app.paths import TEMPLATES_DIR

templates = Jinja2Templates(directory=str(TEMPLATES_DIR))
templates.env.trim_blocks = True
templates.env.lstrip_blocks = True


def is_fragment_request(request: Request) -> bool:
    h = request.headers
    return (
        h.get("HX-Request") == "true"
        and h.get("HX-Boosted") != "true"
        and h.get("HX-History-Restore-Request") != "true"
    )


def render(request: Request, template: str, context: dict[str, Any], block: str | None = None,
           status_code: int = 200, headers: dict[str, str] | None = None) -> HTMLResponse:
    """Render `template` whole, or only `block` of it when the request is a real htmx swap."""
    ctx = {"request": request, **context}
    if block and is_fragment_request(request):
        tmpl = templates.env.get_template(template)
        html = "".join(tmpl.blocks[block](tmpl.new_context(_with_globals(request, ctx))))
        response = HTMLResponse(html, status_code=status_code, headers=headers)
    else:
        response = templates.TemplateResponse(request, template, ctx, status_code=status_code, headers=headers)
    response.headers["Vary"] = "HX-Request"
    return response


def _with_globals(request: Request, ctx: dict[str, Any]) -> dict[str, Any]:
    # TemplateResponse adds these through context processors; block rendering must match it.
    out = dict(ctx)
    for processor in templates.context_processors:
        out.update(processor(request))
    return out
