"""Per-account write rate limit: a sliding window in process memory.

With several uvicorn workers each worker counts on its own, so the effective limit is N x workers; a shared
limiter (PostgreSQL or Redis) would be the next step if that matters.
"""

from __future__ import annotations

import threading
import time
from collections import defaultdict, deque

UNITS = {"second": 1.0, "minute": 60.0, "hour": 3600.0}


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
        """Record one write for `key`. Returns 0 when allowed, else the seconds until the next is allowed."""
        now = time.monotonic()
        with self._lock:
            hits = self._hits[key]
            while hits and now - hits[0] >= self.window:
                hits.popleft()
            if len(hits) >= self.limit:
                return max(0.001, self.window - (now - hits[0]))
            hits.append(now)
            return 0.0
