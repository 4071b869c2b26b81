"""One way to answer: the full page, the htmx block, or JSON, from the same data.

- JSON when the path is under ``/api/`` or the client asks for ``application/json`` (and not HTML).
- The named ``{% block %}`` alone only for a real htmx swap: ``HX-Request: true``, not boosted, not a history
  restore (jinja2-fragments style). Every HTML answer carries ``Vary: HX-Request, Accept``.
- Otherwise the whole page.

Templates see the data as ``page``; when the data is a dict its keys are top-level names (and ``page`` is the
dict unless it has a key of that name).
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

from fastapi import Request
from fastapi.encoders import jsonable_encoder
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from fastapi.templating import Jinja2Templates
from jinja2 import pass_context
from pydantic import BaseModel

from app.http import auth
from app.http.token_html import example_markup
from app.paths import TEMPLATES_DIR
from app.services.browse import model_display_name

templates = Jinja2Templates(directory=str(TEMPLATES_DIR))
templates.env.trim_blocks = True
templates.env.lstrip_blocks = True


def wants_json(request: Request) -> bool:
    path = request.url.path
    if path == "/api" or path.startswith("/api/") or path.endswith(".json"):
        return True
    accept = request.headers.get("accept", "")
    return "application/json" in accept and "text/html" not in accept


def is_htmx(request: Request) -> bool:
    return request.headers.get("HX-Request") == "true"


def is_fragment_request(request: Request) -> bool:
    """A real htmx swap: not a boosted navigation, not a history restore (those want the whole page)."""
    h = request.headers
    return is_htmx(request) and h.get("HX-Boosted") != "true" and h.get("HX-History-Restore-Request") != "true"


def _finite(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_finite(v) for v in value]
    return value


class SafeJSONResponse(JSONResponse):
    """JSON that cannot fail on what a request echoed back: NaN and +-Infinity (which JSON cannot hold) become
    null, and text with a lone surrogate is written with \\u escapes instead of as UTF-8."""

    def render(self, content: Any) -> bytes:
        try:
            text = json.dumps(content, ensure_ascii=False, allow_nan=False, separators=(",", ":"))
        except ValueError:
            text = json.dumps(_finite(content), ensure_ascii=False, allow_nan=False, separators=(",", ":"))
        try:
            return text.encode("utf-8")
        except UnicodeEncodeError:
            return json.dumps(json.loads(text), ensure_ascii=True, separators=(",", ":")).encode("ascii")


def json_response(data: Any, status_code: int = 200, headers: dict[str, str] | None = None) -> Response:
    if isinstance(data, BaseModel):
        # Serialised once, directly: FastAPI would validate a large page against its response_model again.
        return Response(data.model_dump_json(), status_code=status_code, headers=headers,
                        media_type="application/json")
    return SafeJSONResponse(jsonable_encoder(data), status_code=status_code, headers=headers)


def template_context(data: Any, extra: dict | None = None) -> dict:
    ctx = dict(data) if isinstance(data, dict) else {}
    ctx.setdefault("page", data)  # a dict may have its own "page" (a page number)
    ctx.update(extra or {})
    return ctx


def render(request: Request, template: str, context: dict[str, Any], block: str | None = None,
           status_code: int = 200, headers: dict[str, str] | None = None) -> HTMLResponse:
    """``template`` whole, or only ``block`` of it when the request is a real htmx swap."""
    ctx = {"request": request, **context}
    if block and is_fragment_request(request):
        tmpl = templates.env.get_template(template)
        for processor in templates.context_processors:
            ctx.update(processor(request))
        html = "".join(tmpl.blocks[block](tmpl.new_context(ctx)))
        response = HTMLResponse(html, status_code=status_code, headers=headers)
    else:
        response = templates.TemplateResponse(request, template, ctx, status_code=status_code, headers=headers)
    response.headers["Vary"] = "HX-Request, Accept"
    auth.ensure_prelogin_cookie(request, response)  # the CSRF token a rendered form carries needs its cookie
    return response


def respond(request: Request, template: str, data: Any, block: str | None = None, *, status_code: int = 200,
            headers: dict[str, str] | None = None, extra: dict | None = None) -> Response:
    """The one renderer of every page: JSON, the htmx ``block``, or the whole ``template``, from ``data``."""
    if wants_json(request):
        return json_response(data, status_code, headers)
    return render(request, template, template_context(data, extra), block, status_code, headers)


def safe_next(target: str | None, default: str) -> str:
    """Only same-site paths are followed after a form post (no open redirects, no control characters)."""
    if (target and target.startswith("/") and not target.startswith("//") and "\\" not in target
            and target.isprintable()):
        return target
    return default


# What may stay as typed in a redirect target; everything else (CR, LF, non-ASCII) is percent-encoded, so a
# header can neither be split nor fail to encode. The same set Starlette's RedirectResponse uses.
URL_SAFE = ":/%#?=@[]!$&'()*+,;"


def redirect(request: Request, target: str) -> Response:
    """303 for plain forms; for htmx requests ``HX-Redirect``, so the browser does a full navigation."""
    if is_htmx(request):
        return Response(status_code=200, headers={"HX-Redirect": quote(target, safe=URL_SAFE)})
    return RedirectResponse(target, status_code=303)


def path_for(request: Request, name: str, **params: Any) -> str:
    """The path of the route called ``name`` (url_for without scheme and host), every parameter quoted.
    Each (route, parameter names) is resolved once per app into a template that the values are put into: the
    route table is fixed once the app is built, and a page builds dozens of links (each a scan of every route)."""
    key = (name, *sorted(params))
    memo = getattr(request.app.state, "path_memo", None)
    template = memo.get(key) if memo is not None else None
    if template is None:
        marks = {k: f"__fb{i}__" for i, k in enumerate(key[1:])}
        template = request.app.url_path_for(name, **marks), marks
        if memo is not None:
            memo[key] = template
    path, marks = template
    for k, mark in marks.items():
        path = path.replace(mark, quote(str(params[k]), safe=""))
    return path


@pass_context
def _url(context, name: str, **params: Any) -> str:
    return path_for(context["request"], name, **params)


# Every template can build links by route name and knows who is asking; `model_name` shortens a model's path.
# `example_markup`: one example's shaded tokens, for short lists rendered in a template (the review queue).
templates.env.globals.update(url=_url, csrf_token=auth.csrf_token, current_account=auth.current_account,
                             example_markup=example_markup)
templates.env.filters["model_name"] = model_display_name


API_PREFIX = "/api/v1"


def page_route(router, path: str, *, name: str, template: str, block: str | None = None,
               present: Callable[[Request, Any], dict] | None = None, methods: tuple[str, ...] = ("GET",),
               api: bool = True, **api_options: Any):
    """Register one endpoint for ``path`` (HTML page or htmx block) and, unless ``api`` is off, for
    ``/api/v1`` + ``path`` (its JSON twin, named ``api_`` + ``name``, in the OpenAPI schema with ``api_options``).

    The endpoint returns its page data through :func:`show`. ``present(request, data)`` adds what only the HTML
    needs (plots, shaded markup); the error handler uses the same template and ``present`` to show a page again
    with an error's message."""

    def decorator(endpoint):
        endpoint.page_template = PageTemplate(template, block, present)
        router.add_api_route(path, endpoint, methods=list(methods), name=name, include_in_schema=False)
        for method in methods if api else ():  # one operation per method, so each gets its own OpenAPI id
            router.add_api_route(API_PREFIX + path if path != "/" else API_PREFIX, endpoint, methods=[method],
                                 name=f"api_{name}", **api_options)
        return endpoint

    return decorator


@dataclass(frozen=True)
class PageTemplate:
    template: str
    block: str | None
    present: Callable[[Request, Any], dict] | None

    def response(self, request: Request, data: Any, *, status_code: int = 200, headers: dict | None = None,
                 block: str | None = None, extra: dict | None = None) -> Response:
        context = {**(self.present(request, data) if self.present else {}), **(extra or {})}
        return render(request, self.template, template_context(data, context), block or self.block, status_code,
                      headers)


def show(request: Request, data: Any, *, status_code: int = 200, headers: dict[str, str] | None = None,
         block: str | None = None) -> Response:
    """The answer of a ``page_route`` endpoint: JSON, or its template (``block`` overrides the registered block,
    for a page with two swappable regions)."""
    if wants_json(request):
        return json_response(data, status_code, headers)
    return request.scope["endpoint"].page_template.response(request, data, status_code=status_code,
                                                            headers=headers, block=block)


async def json_object_body(request: Request) -> dict:
    """The request body as a JSON object, for routes that read it by hand; 422 naming what is wrong otherwise
    (not JSON, nested too deeply for the parser, not an object)."""
    from app.errors import Invalid

    def bad(msg: str, kind: str) -> Invalid:
        return Invalid(f"body: {msg}", errors=[{"loc": ["body"], "msg": msg, "type": kind}])

    try:
        data = json.loads(await request.body())
    except ValueError as exc:
        raise bad(f"not valid JSON: {exc}", "json_invalid") from None
    except RecursionError:  # json.loads recurses once per nesting level
        raise bad("the JSON is nested too deeply", "json_invalid") from None
    if not isinstance(data, dict):
        raise bad("the body must be a JSON object", "type_error")
    return data
