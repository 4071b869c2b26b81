"""SQL of issue 17: feature matches across sources, co-activation inside a source, the feature map.

The precompute writes them (after the sources' own rows, in bulk); the compare, source and feature pages read
them. Reads return plain tuples and arrays; no HTTP, no torch.
"""

from __future__ import annotations

import numpy as np
from sqlalchemy import delete, func, or_, select
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.orm import Session

from app.store.models import Feature, Source
from app.store.models_compare import FeatureCoactivation, FeatureMatch, SourceMap


def _finite(values: np.ndarray) -> list:
    return [float(v) if np.isfinite(v) else None for v in values.tolist()]


# -- writes (the precompute) ------------------------------------------------------------------------------------
def delete_compare_rows(conn: Connection, source_id: int) -> None:
    """Every row of this family that names ``source_id`` (its matches both ways, co-activation, map)."""
    conn.execute(delete(FeatureMatch).where(or_(FeatureMatch.source_id == source_id,
                                                FeatureMatch.other_source_id == source_id)))
    conn.execute(delete(FeatureCoactivation).where(FeatureCoactivation.source_id == source_id))
    conn.execute(delete(SourceMap).where(SourceMap.source_id == source_id))


def write_matches(engine: Engine, source_id: int, other_id: int, feature: np.ndarray, other: np.ndarray,
                  corr: np.ndarray, cos: np.ndarray) -> int:
    """Replace the matches of ``source_id``'s features in ``other_id`` (arrays ``[n]``; NaN → NULL)."""
    from app.store.writer import _columns, insert_tuples

    columns = _columns(FeatureMatch, ("source_id", "feature_index", "other_source_id", "other_index", "corr", "cos"))
    order = [c.name for c in columns]
    values = {"source_id": [source_id] * len(feature), "feature_index": feature.tolist(),
              "other_source_id": [other_id] * len(feature), "other_index": other.tolist(), "corr": _finite(corr),
              "cos": _finite(cos)}
    with engine.begin() as conn:
        conn.execute(delete(FeatureMatch).where(FeatureMatch.source_id == source_id,
                                                FeatureMatch.other_source_id == other_id))
        insert_tuples(conn, FeatureMatch, columns, zip(*(values[name] for name in order)))
    return len(feature)


def write_coactivation(engine: Engine, source_id: int, feature: np.ndarray, other: np.ndarray,
                       count: np.ndarray) -> None:
    from app.store.writer import _columns, insert_tuples

    columns = _columns(FeatureCoactivation, ("source_id", "feature_index", "other_index", "count"))
    values = {"source_id": [source_id] * len(feature), "feature_index": feature.tolist(),
              "other_index": other.tolist(), "count": count.tolist()}
    with engine.begin() as conn:
        conn.execute(delete(FeatureCoactivation).where(FeatureCoactivation.source_id == source_id))
        insert_tuples(conn, FeatureCoactivation, columns, zip(*(values[c.name] for c in columns)))


def write_map(engine: Engine, source_id: int, method: str, xy: np.ndarray) -> None:
    """``xy: float [d_sae, 2]``, by feature index."""
    blob = np.ascontiguousarray(xy, dtype="<f4").tobytes()
    with engine.begin() as conn:
        conn.execute(delete(SourceMap).where(SourceMap.source_id == source_id))
        conn.execute(SourceMap.__table__.insert().values(source_id=source_id, method=method, xy=blob))


# -- reads (the pages) ------------------------------------------------------------------------------------------
def feature_matches(session: Session, source_id: int, index: int) -> list[tuple[int, str, int, int, float | None,
                                                                                 float | None]]:
    """``(other source id, name, d_sae, other index, corr, cos)`` of one feature, complete sources only, by
    source id then best correlation first."""
    rows = session.execute(
        select(Source.id, Source.name, Source.d_sae, FeatureMatch.other_index, FeatureMatch.corr, FeatureMatch.cos)
        .join(Source, Source.id == FeatureMatch.other_source_id)
        .where(FeatureMatch.source_id == source_id, FeatureMatch.feature_index == index, Source.status == "complete")
        .order_by(Source.id, FeatureMatch.corr.desc().nulls_last(), FeatureMatch.cos.desc().nulls_last())
    ).all()
    return [tuple(r) for r in rows]


def coactive_features(session: Session, source_id: int, index: int) -> list[tuple[int, int]]:
    """``(other index, tokens where both fire)``, most first."""
    rows = session.execute(
        select(FeatureCoactivation.other_index, FeatureCoactivation.count)
        .where(FeatureCoactivation.source_id == source_id, FeatureCoactivation.feature_index == index)
        .order_by(FeatureCoactivation.count.desc(), FeatureCoactivation.other_index)
    ).all()
    return [(int(i), int(c)) for i, c in rows]


def matched_sources(session: Session, source_id: int) -> list[Source]:
    """Complete sources that ``source_id``'s features have matches in, oldest first."""
    others = select(FeatureMatch.other_source_id).where(FeatureMatch.source_id == source_id).distinct()
    return list(session.scalars(select(Source).where(Source.id.in_(others), Source.status == "complete")
                                .order_by(Source.id)))


def pair_best(session: Session, source_id: int, other_id: int) -> list[tuple[int, float | None, float | None]]:
    """Per feature of ``source_id`` that has rows in ``other_id``: ``(index, max corr, max cos)``."""
    rows = session.execute(
        select(FeatureMatch.feature_index, func.max(FeatureMatch.corr), func.max(FeatureMatch.cos))
        .where(FeatureMatch.source_id == source_id, FeatureMatch.other_source_id == other_id)
        .group_by(FeatureMatch.feature_index).order_by(FeatureMatch.feature_index)
    ).all()
    return [(int(i), c, s) for i, c, s in rows]


def pair_rows(session: Session, source_id: int, other_id: int, indices: list[int]) -> list[tuple]:
    """``(index, other index, corr, cos)`` rows of ``indices`` in ``other_id``."""
    if not indices:
        return []
    return [tuple(r) for r in session.execute(
        select(FeatureMatch.feature_index, FeatureMatch.other_index, FeatureMatch.corr, FeatureMatch.cos)
        .where(FeatureMatch.source_id == source_id, FeatureMatch.other_source_id == other_id,
               FeatureMatch.feature_index.in_(indices))).all()]


def alive_indices(session: Session, source_id: int) -> list[int]:
    return list(session.scalars(select(Feature.index).where(Feature.source_id == source_id, Feature.density > 0)
                                .order_by(Feature.index)))


def source_map(session: Session, source_id: int) -> tuple[str, np.ndarray] | None:
    """``(method, xy float32 [d_sae, 2])`` or None when the source has no map."""
    row = session.execute(select(SourceMap.method, SourceMap.xy).where(SourceMap.source_id == source_id)).first()
    if row is None:
        return None
    return row[0], np.frombuffer(row[1], dtype="<f4").reshape(-1, 2)


def feature_density_pairs(session: Session, source_id: int) -> list[tuple[int, float]]:
    return [(int(i), float(d)) for i, d in session.execute(
        select(Feature.index, Feature.density).where(Feature.source_id == source_id)).all()]
