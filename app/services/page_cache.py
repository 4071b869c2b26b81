"""What a feature page view reads, cached per process and keyed by a data version.

A page's *stamp* names everything its data depends on: the source (id, created_at; only complete sources are
cached), the feature, and the page-version counters (migration 0011) of the source, the feature and its
neighbours (whose labels the page shows). Database triggers bump those counters in the same transaction as every
write a page shows, through any worker or the CLI, so a stamp read after the write names the new data: a label
write changes the stamp of exactly that feature's page (and of the pages that list it as a neighbour).

Cached values are keyed by the stamp and never invalidated by hand; an old stamp's entries simply age out of the
LRU, which is bounded in bytes.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable
from typing import Any

from sqlalchemy.orm import Session

from app.store import pages as qp

NEIGHBOURS_MEMO_MAX = 200_000


class LRUCache:
    """A thread-safe LRU bounded by the total ``size`` of its values (bytes, roughly)."""

    def __init__(self, max_bytes: int):
        self.max_bytes = max_bytes
        self._items: OrderedDict[Any, tuple[Any, int]] = OrderedDict()
        self._bytes = 0
        self._lock = threading.Lock()
        self.hits = self.misses = 0

    def get(self, key: Any) -> Any | None:
        with self._lock:
            item = self._items.get(key)
            if item is None:
                self.misses += 1
                return None
            self._items.move_to_end(key)
            self.hits += 1
            return item[0]

    def put(self, key: Any, value: Any, size: int) -> None:
        if size > self.max_bytes:
            return
        with self._lock:
            old = self._items.pop(key, None)
            if old is not None:
                self._bytes -= old[1]
            self._items[key] = (value, size)
            self._bytes += size
            while self._bytes > self.max_bytes:
                _, (_, dropped) = self._items.popitem(last=False)
                self._bytes -= dropped

    def get_or_build(self, key: Any, build: Callable[[], Any], size: Callable[[Any], int]) -> Any:
        value = self.get(key)
        if value is None:
            value = build()
            self.put(key, value, size(value))
        return value

    def stats(self) -> dict:
        with self._lock:
            return {"entries": len(self._items), "bytes": self._bytes, "max_bytes": self.max_bytes,
                    "hits": self.hits, "misses": self.misses}

    def clear(self) -> None:
        with self._lock:
            self._items.clear()
            self._bytes = 0


# Neighbour lists never change while a source exists (they come from its decoder weights). Keyed by database and
# source name and checked against the source's identity, so a recomputed source gets new entries.
_neighbours: dict[tuple[str, str, int], tuple[tuple, list[int]]] = {}
_neighbours_lock = threading.Lock()


def feature_page_stamp(session: Session, source_name: str, index: int) -> str | None:
    """The data version of one feature page, or None when it must not be cached (unknown or incomplete source,
    unknown feature: those pages are errors or change while a precompute writes). One query when the feature's
    neighbours are known to this process, two the first time."""
    memo_key = (str(session.get_bind().url), source_name, index)
    known = _neighbours.get(memo_key)
    if known is None:
        found = qp.feature_neighbours(session, source_name, index)
        if found is None or found[1] is None:
            return None
        known = found
        with _neighbours_lock:
            if len(_neighbours) > NEIGHBOURS_MEMO_MAX:
                _neighbours.clear()
            _neighbours[memo_key] = known
    found = qp.page_versions(session, source_name, [index, *known[1]])
    if found is None:
        return None
    source, versions = found
    if source != known[0]:  # recomputed or finished since the neighbours were read: read them again next time
        with _neighbours_lock:
            _neighbours.pop(memo_key, None)
        return None
    if source[2] != "complete":
        return None
    return f"{source[0]}@{source[1]}#{index}/{'.'.join(map(str, versions))}"


def static_part(stamp: str) -> str:
    """The part of a stamp that names only the source and the feature (what never changes while both exist)."""
    return stamp.rsplit("/", 1)[0]
