"""Who is steering (account id when logged in, else client address) and the per-client steering rate limit.

Accounts come from app/labels (imported defensively: steering works on a server without accounts). The limit
counts model work only: a request answered from a saved run costs nothing and is not counted.
"""

from __future__ import annotations

import threading

from fastapi import HTTPException, Request

_limiter_lock = threading.Lock()


def current_account_id(request: Request) -> int | None:
    """The account behind a bearer API key or a session cookie, or None."""
    from app.http.auth import api_key_account, current_account

    actor = api_key_account(request) or current_account(request)
    return actor.id if actor is not None else None


def client_key(request: Request, account_id: int | None) -> str:
    if account_id is not None:
        return f"account:{account_id}"
    host = request.client.host if request.client else "unknown"
    return f"address:{host}"


def _limiter(request: Request):
    from app.http.ratelimit import RateLimiter

    state = request.app.state
    with _limiter_lock:
        if getattr(state, "steer_limiter", None) is None:
            state.steer_limiter = RateLimiter(state.settings.steer_rate_limit)
    return state.steer_limiter


def charge(request: Request, account_id: int | None) -> None:
    """Count one steering run for this client; 429 with Retry-After past FEATUREBOARD_STEER_RATE_LIMIT."""
    wait = _limiter(request).hit(client_key(request, account_id))
    if wait:
        limit = request.app.state.settings.steer_rate_limit
        raise HTTPException(429, f"Too many steering runs (limit {limit} per account or address); "
                                 f"try again in {wait:.0f} s.", headers={"Retry-After": str(max(1, round(wait)))})
