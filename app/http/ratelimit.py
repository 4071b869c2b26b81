"""Rate limits: label/vote/comment writes per account, login and registration attempts per address and per
account name, steering runs per account or address. Counted with the `limits` library (moving window).

Where the counts live:
- ``FEATUREBOARD_REDIS_URL`` set: in Redis, shared by every worker and machine of this server. Keys are
  prefixed with a digest of the database URL, so two servers on one Redis never share counts.
- otherwise in this process's memory: each uvicorn worker counts on its own (N workers allow N x the limit).
A Redis that stops answering makes a counted request fail with 503 (never a silent pass), and a Redis that does
not answer at start-up stops the server with the reason.
"""

from __future__ import annotations

import hashlib
import time
from urllib.parse import urlsplit

from fastapi import Request
from limits import RateLimitItem, parse_many
from limits.errors import StorageError
from limits.storage import MemoryStorage, RedisStorage, Storage
from limits.strategies import MovingWindowRateLimiter

from app.config import Settings
from app.errors import RateLimited, Unavailable

# kind -> (settings field with the rate, what the message calls the events)
LIMITS = {
    "write": ("write_rate_limit", "writes"),
    "steer": ("steer_rate_limit", "steering runs"),
    "login": ("login_rate_limit", "login attempts"),
    "register": ("login_rate_limit", "registrations"),
}
REDIS_TIMEOUT_S = 2.0


def redis_display(url: str) -> str:
    """The Redis URL without its password, for messages."""
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.hostname or ''}{f':{parts.port}' if parts.port else ''}{parts.path}"


class RateLimits:
    """The limiter of one app: its storage, and the parsed rate of each kind."""

    def __init__(self, settings: Settings):
        self.settings = settings
        self.items: dict[str, list[RateLimitItem]] = {kind: parse_many(getattr(settings, field))
                                                      for kind, (field, _) in LIMITS.items()}
        namespace = hashlib.sha256(settings.resolved_database_url.encode()).hexdigest()[:12]
        if settings.redis_url:
            self.storage: Storage = RedisStorage(
                settings.redis_url, key_prefix=f"featureboard:{namespace}", wrap_exceptions=True,
                socket_timeout=REDIS_TIMEOUT_S, socket_connect_timeout=REDIS_TIMEOUT_S)
            if not self.storage.check():
                raise Unavailable(f"FEATUREBOARD_REDIS_URL: Redis at {redis_display(settings.redis_url)} does not "
                                  "answer; start it, or leave the setting empty to count in process memory.")
        else:
            self.storage = MemoryStorage(wrap_exceptions=True)
        self.limiter = MovingWindowRateLimiter(self.storage)

    @property
    def where(self) -> str:
        return f"redis ({redis_display(self.settings.redis_url)})" if self.settings.redis_url else "memory"

    def hit(self, kind: str, key: str) -> float:
        """Count one event; 0 when allowed, else seconds until the next is allowed."""
        try:
            for item in self.items[kind]:
                if not self.limiter.hit(item, kind, key):
                    reset, _ = self.limiter.get_window_stats(item, kind, key)
                    return max(0.001, reset - time.time())
        except StorageError as exc:
            reason = type(exc.storage_error).__name__
            raise Unavailable(f"The rate-limit store ({self.where}) does not answer ({reason}); try again "
                              "shortly.") from None
        return 0.0

    def clear(self) -> None:
        self.storage.reset()


def _key(key: object) -> str:
    if isinstance(key, tuple):
        return "/".join(str(part) for part in key)
    return str(key)


def charge(request: Request, kind: str, key: object) -> None:
    """Count one event of ``kind`` for ``key``; RateLimited (429 + Retry-After) past the limit."""
    wait = request.app.state.rate_limits.hit(kind, _key(key))
    if wait:
        field, what = LIMITS[kind]
        raise RateLimited(f"Too many {what} (limit {getattr(request.app.state.settings, field)}); try again in "
                          f"{max(1, round(wait))} s.", wait)


def client_address(request: Request) -> str:
    return request.client.host if request.client else "unknown"


def client_key(request: Request, account_id: int | None) -> str:
    """The account when there is one, else the client's address."""
    if account_id is not None:
        return f"account:{account_id}"
    return f"address:{client_address(request)}"


def name_key(username: str) -> str:
    """A login or registration name as a counter key: case-folded and hashed, so any typed text (NUL, a
    megabyte) makes a short, safe key and 'Ada' and 'ada' share one count."""
    return "name:" + hashlib.sha256(username.strip().casefold().encode("utf-8", "replace")).hexdigest()[:32]
