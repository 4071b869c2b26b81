"""SQL behind page caching: what a feature page's cache key is made of (the source's identity and the page
version counters that migration 0011's triggers bump on every write a page shows)."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from app.store.models import Feature, PageVersion, Source

SOURCE_LEVEL = -1  # the feature_index of a source's own counter (lists, the source row)


def feature_neighbours(session: Session, source_name: str, index: int) -> tuple[tuple, list[int] | None] | None:
    """((id, created_at as text, status) of the source, indices of the feature's stored neighbours, whose labels
    show on its page, or None when it has no row); None when there is no such source."""
    row = session.connection().execute(
        select(Source.id, Source.created_at, Source.status, Feature.index, Feature.neighbours)
        .outerjoin(Feature, (Feature.source_id == Source.id) & (Feature.index == index))
        .where(Source.name == source_name)).first()
    if row is None:
        return None
    source = (row[0], str(row[1]), row[2])
    if row[3] is None:
        return source, None
    return source, [int(n["index"]) for n in row[4] or [] if isinstance(n, dict) and "index" in n]


def page_versions(session: Session, source_name: str, indices: list[int]) -> tuple[tuple, tuple[int, ...]] | None:
    """((id, created_at as text, status) of the source called ``source_name``, the counters of the source and
    of each of ``indices`` in that order, 0 where nothing was written yet), in one query; None: no such source.
    Core, not ORM: this runs on every page view, 304s included."""
    wanted = [SOURCE_LEVEL, *indices]
    rows = session.connection().execute(
        select(Source.id, Source.created_at, Source.status, PageVersion.feature_index, PageVersion.version)
        .outerjoin(PageVersion, (PageVersion.source_id == Source.id) & PageVersion.feature_index.in_(set(wanted)))
        .where(Source.name == source_name)).all()
    if not rows:
        return None
    found = {r[3]: r[4] for r in rows if r[3] is not None}
    first = rows[0]
    return (first[0], str(first[1]), first[2]), tuple(found.get(i, 0) for i in wanted)
