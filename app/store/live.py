"""SQL reads behind the live pages: which features are too dense to show, and the stored statistics of the
features a text lit up. No HTTP, no templates, no torch."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session

from app.store.engine import IN_CHUNK
from app.store.models import Feature


@dataclass(frozen=True)
class FeatureStats:
    density: float
    max_act: float


def dense_feature_indices(session: Session, source_id: int, max_density: float) -> list[int]:
    """Indices whose stored density (fraction of tokens) exceeds `max_density` (uses ix_feature_source_density)."""
    return list(session.scalars(
        select(Feature.index).where(Feature.source_id == source_id, Feature.density > max_density)))


def feature_stats(session: Session, source_id: int, indices: Iterable[int]) -> dict[int, FeatureStats]:
    """Density and max activation of the given features; features without a stored row are absent."""
    wanted = sorted({int(i) for i in indices})
    out: dict[int, FeatureStats] = {}
    for start in range(0, len(wanted), IN_CHUNK):
        chunk = wanted[start:start + IN_CHUNK]
        rows = session.execute(select(Feature.index, Feature.density, Feature.max_act)
                               .where(Feature.source_id == source_id, Feature.index.in_(chunk)))
        for index, density, max_act in rows:
            out[index] = FeatureStats(float(density or 0.0), float(max_act or 0.0))
    return out
