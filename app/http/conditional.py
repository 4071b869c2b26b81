"""Cached answers, strong ETags and 304 for pages whose data has a version (app/services/page_cache.py).

``cached_answer(request, stamp, build)`` answers one GET: its ETag names exactly the bytes it would send, built
from the data's stamp, the rendering (JSON, htmx block or page), the URL and, for HTML, who is asking (the
logged-in account and its role, or nobody) and this browser's CSRF token (which forms on the page carry). A
matching ``If-None-Match`` gets 304 before anything is read or rendered; a cached body is sent as it is, with the
CSRF token put back in; otherwise ``build()`` renders and the body is kept (its token replaced by a placeholder,
so every anonymous visitor shares one rendering). HTML answers vary on ``Cookie`` and ``HX-Request``.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass

from fastapi import Request
from fastapi.responses import Response

from app.http import auth
from app.http.respond import is_fragment_request, wants_json

CSRF_PLACEHOLDER = b"\x00fb-csrf\x00"  # cannot occur in a rendered page: NUL is never in HTML we write
VARY = "Accept, Cookie, HX-Request"


@dataclass(frozen=True)
class CachedBody:
    body: bytes
    media_type: str
    has_token: bool

    def __len__(self) -> int:
        return len(self.body) + 200


def _identity(request: Request) -> str:
    account = auth.current_account(request)
    return "-" if account is None else f"{account.id}:{account.role}:{account.username}"


def _variant(request: Request) -> str:
    return "json" if wants_json(request) else "block" if is_fragment_request(request) else "page"


def etag_matches(request: Request, etag: str) -> bool:
    """RFC 9110 If-None-Match (weak comparison, as that header uses): ``*`` or any listed tag equal to ``etag``."""
    header = request.headers.get("if-none-match")
    if not header:
        return False
    tags = [t.strip() for t in header.split(",")]
    return "*" in tags or etag in {t[2:] if t.startswith("W/") else t for t in tags}


def _etag(key: str, token: str) -> str:
    return '"' + hashlib.blake2b(f"{key}|{token}".encode(), digest_size=16).hexdigest() + '"'


def cached_answer(request: Request, stamp: str | None, build: Callable[[], Response]) -> Response:
    """The answer of a GET whose data version is ``stamp`` (None: not cacheable, ``build()`` as it is)."""
    if stamp is None:
        return build()
    variant = _variant(request)
    html = variant != "json"
    key = f"{stamp}|{variant}|{request.url}|{_identity(request) if html else ''}"
    # The token this browser already has (none before its first form): a page that shows one is only this
    # browser's, and a browser without one is given one (and its cookie) by the page that needs it.
    token = auth.csrf_token(request) if html and auth.has_csrf_nonce(request) else ""
    headers = {"Vary": VARY, "Cache-Control": "private, no-cache" if html else "no-cache"}
    cache = request.app.state.page_cache
    entry = cache.get(key)
    # Whether the page holds a token is a function of the key, so before it is known either tag may match.
    candidates = [_etag(key, token if entry.has_token else "")] if entry else list(dict.fromkeys(
        [_etag(key, token), _etag(key, "")]))
    matched = next((tag for tag in candidates if etag_matches(request, tag)), None)
    if matched:
        return Response(status_code=304, headers={"ETag": matched, **headers})
    if entry is not None:
        if entry.has_token and not token:
            token = auth.csrf_token(request)
        body = entry.body.replace(CSRF_PLACEHOLDER, token.encode()) if entry.has_token else entry.body
        response = Response(body, media_type=entry.media_type)
        auth.ensure_prelogin_cookie(request, response)
    else:
        response = build()  # render() sets the pre-login cookie of a token it made
        if response.status_code != 200:
            return response
        if html and not token and getattr(request.state, "fb_new_prelogin", None):
            token = auth.csrf_token(request)
        token_bytes = token.encode()
        has_token = bool(token_bytes) and token_bytes in response.body
        if not has_token and getattr(request.state, "fb_new_prelogin", None):
            del response.headers["set-cookie"]  # a token was made but no form shows it: nothing to bind
        body = response.body.replace(token_bytes, CSRF_PLACEHOLDER) if has_token else response.body
        media_type = response.headers.get("content-type", "text/html").split(";")[0]
        entry = CachedBody(body, media_type, has_token)
        cache.put(key, entry, len(entry))
    response.headers.update({"ETag": _etag(key, token if entry.has_token else ""), **headers})
    return response
