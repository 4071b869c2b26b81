"""Rate limits: label/vote/comment writes per account, login and registration attempts, steering runs per
account or address. A sliding window in process memory.

With several uvicorn workers each worker counts on its own, so the effective limit is N x workers.
"""

from __future__ import annotations

import threading
import time
from collections import defaultdict, deque

from fastapi import Request

from app.errors import RateLimited

UNITS = {"second": 1.0, "minute": 60.0, "hour": 3600.0}
_limiter_lock = threading.Lock()


def parse_rate(text: str) -> tuple[int, float]:
    """'120/minute' -> (120, 60.0). Raises ValueError naming the bad value and the accepted forms."""
    try:
        count, unit = text.strip().split("/")
        n = int(count)
        window = UNITS[unit.strip().lower()]
        if n < 1:
            raise ValueError
    except (ValueError, KeyError):
        raise ValueError(f"rate limit {text!r} is not N/second, N/minute or N/hour with N >= 1") from None
    return n, window


class RateLimiter:
    def __init__(self, rate: str):
        self.limit, self.window = parse_rate(rate)
        self._hits: dict[object, deque[float]] = defaultdict(deque)
        self._lock = threading.Lock()

    def hit(self, key: object) -> float:
        """Record one event for `key`. Returns 0 when allowed, else the seconds until the next is allowed."""
        now = time.monotonic()
        with self._lock:
            hits = self._hits[key]
            while hits and now - hits[0] >= self.window:
                hits.popleft()
            if len(hits) >= self.limit:
                return max(0.001, self.window - (now - hits[0]))
            hits.append(now)
            return 0.0


# kind -> (settings field with the rate, what the message calls the events)
LIMITS = {"write": ("write_rate_limit", "writes"), "steer": ("steer_rate_limit", "steering runs")}


def _limiter(request: Request, kind: str) -> RateLimiter:
    state = request.app.state  # create_app puts an empty dict at state.rate_limiters
    with _limiter_lock:
        if kind not in state.rate_limiters:
            state.rate_limiters[kind] = RateLimiter(getattr(state.settings, LIMITS[kind][0]))
        return state.rate_limiters[kind]


def charge(request: Request, kind: str, key: object) -> None:
    """Count one event of ``kind`` ("write" | "steer") for ``key``; RateLimited (429 + Retry-After) past the limit."""
    wait = _limiter(request, kind).hit((kind, key))
    if wait:
        field, what = LIMITS[kind]
        raise RateLimited(f"Too many {what} (limit {getattr(request.app.state.settings, field)}); try again in "
                          f"{max(1, round(wait))} s.", wait)


def client_key(request: Request, account_id: int | None) -> str:
    """The account when there is one, else the client's address."""
    if account_id is not None:
        return f"account:{account_id}"
    return f"address:{request.client.host if request.client else 'unknown'}"
