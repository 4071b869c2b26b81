"""SQL behind page caching: what a feature page's cache key is made of (the source's identity and the page
version counters that migration 0011's triggers bump on every write a page shows)."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from app.store.models import Feature, PageVersion, Source

SOURCE_LEVEL = -1  # the feature_index of a source's own counter (lists, the source row)


def source_stamp(session: Session, name: str) -> tuple[int, str, str] | None:
    """(id, created_at as text, status) of the source called ``name``, or None."""
    row = session.execute(select(Source.id, Source.created_at, Source.status).where(Source.name == name)).first()
    return None if row is None else (row[0], str(row[1]), row[2])


def neighbour_indices(session: Session, source_id: int, index: int) -> list[int] | None:
    """Indices of the feature's stored neighbours (their labels show on its page); None when it has no row."""
    row = session.execute(select(Feature.neighbours).where(Feature.source_id == source_id,
                                                           Feature.index == index)).first()
    if row is None:
        return None
    return [int(n["index"]) for n in row[0] or [] if isinstance(n, dict) and "index" in n]


def page_versions(session: Session, source_id: int, indices: list[int]) -> tuple[int, ...]:
    """The counters of the source and of each of ``indices``, in that order (0 where nothing was written yet)."""
    wanted = [SOURCE_LEVEL, *indices]
    found = dict(session.execute(select(PageVersion.feature_index, PageVersion.version).where(
        PageVersion.source_id == source_id, PageVersion.feature_index.in_(set(wanted)))).all())
    return tuple(found.get(i, 0) for i in wanted)
