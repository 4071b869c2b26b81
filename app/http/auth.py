"""Who is asking: session cookies for browsers, bearer API keys for scripts, CSRF, write rate limits.

The session cookie is ``sign(secret, {"s": token, "iat": ...})``; the token names a row of the login_session
table (app/services/sessions.py), so logout ends the cookie on the server, not only in the browser.

Dependencies for routes (each an ``Annotated`` alias):
- ``OptionalActor``: the account of a cookie or an API key, or None.
- ``ReadActor``: the same, but without one and with ``anonymous_read`` off -> LoginRequired (the error handler
  redirects browsers to /login and answers 401 to JSON clients).
- ``WriteActor``: HTML form writes: logged in, CSRF checked, labeler or admin, rate limited.
- ``AccountActor``: logged in (any role), CSRF checked: account-page writes such as API keys and logout.
- ``ApiWriteActor``: JSON writes: a bearer API key, labeler or admin, rate limited.
With ``anonymous_read`` off, app/http/middleware.py applies ``read_actor`` to every request before routing.
"""

from __future__ import annotations

import time
from typing import Annotated

from fastapi import Depends, Request, Response

from app.errors import Forbidden, LoginRequired
from app.http import ratelimit, signing
from app.services import accounts, sessions
from app.services.actor import Actor

SESSION_COOKIE = "fb_session"
PRELOGIN_COOKIE = "fb_prelogin"
SESSION_MAX_AGE_S = int(sessions.SESSION_TTL.total_seconds())
CSRF_HEADER = "X-CSRF-Token"
CSRF_FIELD = "csrf_token"
SAFE_METHODS = {"GET", "HEAD", "OPTIONS"}
API_KEY_HINT = "Send 'Authorization: Bearer fbk_...' (create a key on /account)."


def _settings(request: Request):
    return request.app.state.settings


def _session_payload(request: Request) -> dict | None:
    if not hasattr(request.state, "fb_session"):
        request.state.fb_session = signing.unsign(_settings(request).secret_key,
                                                  request.cookies.get(SESSION_COOKIE), SESSION_MAX_AGE_S)
    return request.state.fb_session


def session_token(request: Request) -> str | None:
    """The session token of a correctly signed cookie (live or not), or None."""
    payload = _session_payload(request)
    token = payload.get("s") if payload else None
    return token if isinstance(token, str) and 16 <= len(token) <= 128 else None


def current_account(request: Request) -> Actor | None:
    """The logged-in account of a browser request (a live session), or None; looked up once per request."""
    if not hasattr(request.state, "fb_actor"):
        token = session_token(request)
        actor = None
        if token:
            with request.app.state.sessionmaker() as session:
                actor = sessions.actor_by_session(session, token)
        request.state.fb_actor = actor
    return request.state.fb_actor


def api_key_account(request: Request) -> Actor | None:
    """The account whose API key came as a bearer token, or None; looked up once per request."""
    if not hasattr(request.state, "fb_api_actor"):
        scheme, _, token = request.headers.get("Authorization", "").partition(" ")
        actor = None
        if scheme.lower() == "bearer" and token.strip():
            with request.app.state.sessionmaker() as session:
                actor = accounts.actor_by_api_key(session, token.strip())
        request.state.fb_api_actor = actor
    return request.state.fb_api_actor


def request_actor(request: Request) -> Actor | None:
    return api_key_account(request) or current_account(request)


# --- cookies and CSRF -----------------------------------------------------------------------------------------

def _csrf_nonce(request: Request) -> str | None:
    """What this browser's CSRF token is bound to: its live session, else its pre-login cookie."""
    token = session_token(request)
    if token and current_account(request) is not None:
        return "session|" + token
    return request.cookies.get(PRELOGIN_COOKIE) or getattr(request.state, "fb_new_prelogin", None)


def has_csrf_nonce(request: Request) -> bool:
    """Whether this browser already has what a CSRF token is bound to (a session or a pre-login cookie)."""
    return _csrf_nonce(request) is not None


def csrf_token(request: Request) -> str:
    """The CSRF token for forms and htmx headers on this page. Before login it is bound to a pre-login cookie
    that `ensure_prelogin_cookie` sets on the response."""
    nonce = _csrf_nonce(request)
    if nonce is None:
        nonce = request.state.fb_new_prelogin = signing.new_nonce()
    return signing.csrf_token_for(_settings(request).secret_key, nonce)


def _cookie_flags(request: Request) -> dict:
    return {"httponly": True, "samesite": "lax", "secure": request.url.scheme == "https", "path": "/"}


def ensure_prelogin_cookie(request: Request, response: Response) -> None:
    new = getattr(request.state, "fb_new_prelogin", None)
    if new:
        response.set_cookie(PRELOGIN_COOKIE, new, max_age=24 * 3600, **_cookie_flags(request))


def set_login_cookie(request: Request, response: Response, account_id: int) -> None:
    """Start a server-side session for the account and give this browser its cookie."""
    with request.app.state.sessionmaker() as session:
        token = sessions.start_session(session, account_id, request.headers.get("user-agent", ""))
    cookie = signing.sign(_settings(request).secret_key, {"s": token, "iat": int(time.time())})
    response.set_cookie(SESSION_COOKIE, cookie, max_age=SESSION_MAX_AGE_S, **_cookie_flags(request))
    response.delete_cookie(PRELOGIN_COOKIE, path="/")


def clear_login_cookie(request: Request, response: Response) -> None:
    flags = _cookie_flags(request)
    response.delete_cookie(SESSION_COOKIE, path="/", secure=flags["secure"], httponly=True, samesite="lax")


def end_login(request: Request, response: Response) -> None:
    """Logout: delete this browser's session on the server (a copy of the cookie is then worthless too)."""
    token = session_token(request)
    if token:
        with request.app.state.sessionmaker() as session:
            sessions.end_session(session, token)
    clear_login_cookie(request, response)


async def verify_csrf(request: Request) -> None:
    if request.method in SAFE_METHODS:
        return
    token = request.headers.get(CSRF_HEADER)
    if not token and request.headers.get("content-type", "").startswith(
            ("application/x-www-form-urlencoded", "multipart/form-data")):
        try:
            await request.body()  # cached first, so a route that reads the raw body after this still can
        except RuntimeError:
            pass  # FastAPI parsed the form already (for the route's Form parameters); form() returns that
        token = (await request.form()).get(CSRF_FIELD)
        token = token if isinstance(token, str) else None
    if not signing.csrf_matches(_settings(request).secret_key, _csrf_nonce(request), token):
        raise Forbidden("The form's CSRF token is missing or stale; reload the page and submit again.")


# --- access rules ---------------------------------------------------------------------------------------------

def _need_writer(actor: Actor) -> None:
    if not actor.can_write:
        raise Forbidden(f"Account {actor.username!r} has role {actor.role!r}; writing needs labeler or admin.")


def optional_actor(request: Request) -> Actor | None:
    return request_actor(request)


def read_actor(request: Request) -> Actor | None:
    actor = request_actor(request)
    if actor is None and not _settings(request).anonymous_read:
        raise LoginRequired("This server needs a login (or, for JSON, an API key) to read. " + API_KEY_HINT)
    return actor


async def write_actor(request: Request) -> Actor:
    actor = current_account(request)
    if actor is None:
        raise LoginRequired("Log in to make changes.")
    await verify_csrf(request)
    _need_writer(actor)
    ratelimit.charge(request, "write", actor.id)
    return actor


async def account_actor(request: Request) -> Actor:
    actor = current_account(request)
    if actor is None:
        raise LoginRequired("Log in to change your account.")
    await verify_csrf(request)
    return actor


def api_write_actor(request: Request) -> Actor:
    actor = api_key_account(request)
    if actor is None:
        raise LoginRequired("JSON API writes need an API key: create one on /account and send "
                            "'Authorization: Bearer fbk_...'.")
    _need_writer(actor)
    ratelimit.charge(request, "write", actor.id)
    return actor


def api_account_actor(request: Request) -> Actor:
    actor = request_actor(request)
    if actor is None:
        raise LoginRequired(API_KEY_HINT + " Or log in.")
    return actor


OptionalActor = Annotated[Actor | None, Depends(optional_actor)]
ReadActor = Annotated[Actor | None, Depends(read_actor)]
WriteActor = Annotated[Actor, Depends(write_actor)]
AccountActor = Annotated[Actor, Depends(account_actor)]
ApiWriteActor = Annotated[Actor, Depends(api_write_actor)]
ApiAccountActor = Annotated[Actor, Depends(api_account_actor)]
