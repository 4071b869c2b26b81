"""Who is asking: session cookies for the browser, bearer API keys for scripts, CSRF, write rate limits.

Dependencies for routes:
- `OptionalActor` / `ReadActor` (HTML reads; ReadActor enforces `anonymous_read`),
- `WriteActor` (HTML writes: logged in, labeler or admin, CSRF checked, rate limited),
- `ApiReadActor` / `ApiWriteActor` (JSON: reads follow `anonymous_read`; writes need a bearer API key).
With `anonymous_read` off, `ReadAccessMiddleware` (app/main.py) applies `read_actor` / `api_read_actor` to every
request before routing, so pages that declare no actor are guarded too.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from typing import Annotated
from urllib.parse import quote

from fastapi import Depends, HTTPException, Request, Response

from app.services import security
from app.http.ratelimit import RateLimiter
from app.store import accounts as q

SESSION_COOKIE = "fb_session"
PRELOGIN_COOKIE = "fb_prelogin"
SESSION_MAX_AGE_S = 14 * 24 * 3600
CSRF_HEADER = "X-CSRF-Token"
CSRF_FIELD = "csrf_token"
SAFE_METHODS = {"GET", "HEAD", "OPTIONS"}
_limiter_lock = threading.Lock()


@dataclass(frozen=True)
class Actor:
    id: int
    username: str
    role: str

    @property
    def is_admin(self) -> bool:
        return self.role == "admin"

    @property
    def can_write(self) -> bool:
        return self.role in ("admin", "labeler")

    def public(self) -> dict:
        return {"id": self.id, "username": self.username, "role": self.role}


def _settings(request: Request):
    return request.app.state.settings


def _session_payload(request: Request) -> dict | None:
    if not hasattr(request.state, "fb_session"):
        request.state.fb_session = security.unsign(_settings(request).secret_key,
                                                   request.cookies.get(SESSION_COOKIE), SESSION_MAX_AGE_S)
    return request.state.fb_session


def _actor_from(account) -> Actor | None:
    if account is None or not account.is_active:
        return None
    return Actor(account.id, account.username, account.role)


def current_account(request: Request) -> Actor | None:
    """The logged-in account of a browser request (session cookie), or None."""
    if not hasattr(request.state, "fb_actor"):
        payload = _session_payload(request)
        actor = None
        if payload and isinstance(payload.get("a"), int):
            with request.app.state.sessionmaker() as session:
                actor = _actor_from(q.get_account(session, payload["a"]))
        request.state.fb_actor = actor
    return request.state.fb_actor


def api_key_account(request: Request) -> Actor | None:
    """The account whose API key came as a bearer token, or None; looked up once per request."""
    if not hasattr(request.state, "fb_api_actor"):
        scheme, _, token = request.headers.get("Authorization", "").partition(" ")
        actor = None
        if scheme.lower() == "bearer" and token.strip():
            with request.app.state.sessionmaker() as session:
                actor = _actor_from(q.account_for_api_key(session, security.api_key_hash(token.strip())))
        request.state.fb_api_actor = actor
    return request.state.fb_api_actor


# --- cookies and CSRF -----------------------------------------------------------------------------------------

def _csrf_nonce(request: Request) -> str | None:
    payload = _session_payload(request)
    if payload and payload.get("n"):
        return payload["n"]
    return request.cookies.get(PRELOGIN_COOKIE) or getattr(request.state, "fb_new_prelogin", None)


def csrf_token(request: Request) -> str:
    """The CSRF token for forms and htmx headers on this page. Before login it is bound to a pre-login cookie
    that `ensure_prelogin_cookie` sets on the response."""
    nonce = _csrf_nonce(request)
    if nonce is None:
        nonce = request.state.fb_new_prelogin = security.new_nonce()
    return security.csrf_token_for(_settings(request).secret_key, nonce)


def _cookie_flags(request: Request) -> dict:
    return {"httponly": True, "samesite": "lax", "secure": request.url.scheme == "https", "path": "/"}


def ensure_prelogin_cookie(request: Request, response: Response) -> None:
    new = getattr(request.state, "fb_new_prelogin", None)
    if new:
        response.set_cookie(PRELOGIN_COOKIE, new, max_age=24 * 3600, **_cookie_flags(request))


def set_login_cookie(request: Request, response: Response, account_id: int) -> None:
    token = security.sign(_settings(request).secret_key,
                          {"a": account_id, "n": security.new_nonce(), "iat": int(time.time())})
    response.set_cookie(SESSION_COOKIE, token, max_age=SESSION_MAX_AGE_S, **_cookie_flags(request))
    response.delete_cookie(PRELOGIN_COOKIE, path="/")


def clear_login_cookie(request: Request, response: Response) -> None:
    flags = _cookie_flags(request)
    response.delete_cookie(SESSION_COOKIE, path="/", secure=flags["secure"], httponly=True, samesite="lax")


async def verify_csrf(request: Request) -> None:
    if request.method in SAFE_METHODS:
        return
    token = request.headers.get(CSRF_HEADER)
    if not token and request.headers.get("content-type", "").startswith(
            ("application/x-www-form-urlencoded", "multipart/form-data")):
        token = (await request.form()).get(CSRF_FIELD)
    if not security.csrf_matches(_settings(request).secret_key, _csrf_nonce(request), token):
        raise HTTPException(403, "The form's CSRF token is missing or stale; reload the page and submit again.")


# --- access rules ---------------------------------------------------------------------------------------------

def _login_redirect(request: Request) -> HTTPException:
    target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
    return HTTPException(303, "Log in first.", headers={"Location": f"/login?next={quote(target)}"})


def rate_limit(request: Request, actor: Actor | None, key: object = None) -> None:
    """Count one write for the actor (or for `key`, e.g. login attempts per username); 429 past the limit."""
    state = request.app.state
    with _limiter_lock:
        if getattr(state, "write_limiter", None) is None:
            state.write_limiter = RateLimiter(state.settings.write_rate_limit)
    wait = state.write_limiter.hit(key if key is not None else actor.id)
    if wait:
        raise HTTPException(429, f"Too many writes (limit {state.settings.write_rate_limit}); "
                                 f"try again in {wait:.0f} s.", headers={"Retry-After": str(max(1, round(wait)))})


def optional_actor(request: Request) -> Actor | None:
    return current_account(request)


def read_actor(request: Request) -> Actor | None:
    actor = current_account(request)
    if actor is None and not _settings(request).anonymous_read:
        raise _login_redirect(request)
    return actor


async def write_actor(request: Request) -> Actor:
    actor = current_account(request)
    if actor is None:
        raise _login_redirect(request)
    await verify_csrf(request)
    if not actor.can_write:
        raise HTTPException(403, f"Account {actor.username!r} has role {actor.role!r}; writing needs labeler or admin.")
    rate_limit(request, actor)
    return actor


async def account_actor(request: Request) -> Actor:
    """Logged in (any role) and CSRF checked: for account-page writes like API keys and logout."""
    actor = current_account(request)
    if actor is None:
        raise _login_redirect(request)
    await verify_csrf(request)
    return actor


def api_read_actor(request: Request) -> Actor | None:
    actor = api_key_account(request) or current_account(request)
    if actor is None and not _settings(request).anonymous_read:
        raise HTTPException(401, "This server needs an API key (Authorization: Bearer fbk_...) or a login to read.",
                            headers={"WWW-Authenticate": "Bearer"})
    return actor


def api_write_actor(request: Request) -> Actor:
    actor = api_key_account(request)
    if actor is None:
        raise HTTPException(401, "JSON API writes need an API key: create one on /account and send "
                                 "'Authorization: Bearer fbk_...'.", headers={"WWW-Authenticate": "Bearer"})
    if not actor.can_write:
        raise HTTPException(403, f"Account {actor.username!r} has role {actor.role!r}; writing needs labeler or admin.")
    rate_limit(request, actor)
    return actor


OptionalActor = Annotated[Actor | None, Depends(optional_actor)]
ReadActor = Annotated[Actor | None, Depends(read_actor)]
WriteActor = Annotated[Actor, Depends(write_actor)]
AccountActor = Annotated[Actor, Depends(account_actor)]
ApiReadActor = Annotated[Actor | None, Depends(api_read_actor)]
ApiWriteActor = Annotated[Actor, Depends(api_write_actor)]
