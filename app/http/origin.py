"""Same-origin check on every state-changing request (POST, PUT, PATCH, DELETE), before any route runs.

It sits in front of the CSRF token, not instead of it. The rule:
1. A request that carries a valid API key (``Authorization: Bearer fbk_...``) is not checked: the key is an
   explicit credential that a browser never attaches by itself, so another site cannot make a browser send it
   (and the server grants no CORS, so a page elsewhere cannot even send the header across origins). The route
   still decides what the key may do.
2. ``Origin`` present: it must be this server's own origin (scheme, host and port of the request, i.e. its
   ``Host`` header) or one of ``FEATUREBOARD_TRUSTED_ORIGINS``; ``Origin: null`` is refused. Else 403.
3. No ``Origin`` but a ``Referer``: the Referer's origin must match the same way. Else 403.
4. Neither header (every current browser sends Origin on a POST, so this is a script or an old client): a
   request that is logged in by cookie must carry a valid CSRF token (header or form field); one without a
   session acts anonymously, exactly as any script may, and goes on to the route's own checks.
"""

from __future__ import annotations

from urllib.parse import urlsplit

from fastapi import Request

from app.errors import Forbidden
from app.http import auth

STATE_CHANGING = frozenset({"POST", "PUT", "PATCH", "DELETE"})
DEFAULT_PORTS = {"http": 80, "https": 443}


def origin_of(url: str) -> str | None:
    """``scheme://host:port`` of an absolute http(s) URL (default port made explicit), or None."""
    try:
        parts = urlsplit(url.strip())
        scheme, host, port = parts.scheme.lower(), parts.hostname, parts.port
    except ValueError:  # a malformed port or IPv6 literal
        return None
    if scheme not in DEFAULT_PORTS or not host:
        return None
    return f"{scheme}://{host}:{port or DEFAULT_PORTS[scheme]}"


def own_origin(request: Request) -> str | None:
    return origin_of(f"{request.url.scheme}://{request.headers.get('host', '')}")


def allowed_origins(request: Request) -> set[str]:
    trusted = {origin_of(o) for o in request.app.state.settings.trusted_origins}
    return {o for o in {own_origin(request), *trusted} if o}


def _refuse(header: str, value: str, request: Request) -> Forbidden:
    shown = value[:200].encode("ascii", "backslashreplace").decode()
    return Forbidden(f"Cross-origin request refused: its {header} is {shown!r}, not this server "
                     f"({own_origin(request) or 'unknown'}). Send changes from this server's own pages, or from a "
                     "script with an API key; an operator can accept another origin with "
                     "FEATUREBOARD_TRUSTED_ORIGINS.")


async def same_origin_guard(request: Request) -> None:
    """An app-wide dependency: see the module docstring for the rule."""
    if request.method not in STATE_CHANGING or auth.api_key_account(request) is not None:
        return
    for header in ("origin", "referer"):
        value = request.headers.get(header)
        if value is not None:
            if origin_of(value) not in allowed_origins(request):
                raise _refuse(header.capitalize(), value, request)
            return
    if auth.current_account(request) is not None:
        await auth.verify_csrf(request)
