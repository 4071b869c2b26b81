"""Data functions of issue 17: a feature's matches in the other sources of its run and its co-active features (on
the feature page), the compare page of two sources, and a source's feature map.

Matches exist between sources precomputed in one run (they read the same tokens); app/precompute/matches.py
computes them exactly.
"""

from __future__ import annotations

from urllib.parse import quote

import numpy as np
from sqlalchemy.orm import Session

from app.errors import Invalid
from app.services import browse
from app.services.schemas.compare import (
    CoactivePublic,
    ComparePublic,
    CompareRowPublic,
    CurvePublic,
    MapPublic,
    MatchPublic,
    PairSummaryPublic,
    SourceMatchesPublic,
)
from app.store import browse as qb
from app.store import compare as qc
from app.store.models import Feature, Source

SPLIT_THRESHOLD = 0.3  # a match at or above this (corr, else cos) counts on the feature page; two make a split
DEFAULT_THRESHOLD = 0.5  # the compare page's default
THRESHOLDS = [round(t / 20, 2) for t in range(21)]
LIST_LENGTH = 25


def compare_url(a: str, b: str) -> str:
    return f"{browse.source_url(a)}/compare/{quote(b, safe='')}"


def _strength(corr: float | None, cos: float | None) -> float:
    return corr if corr is not None else cos if cos is not None else -1.0


# ---- feature page --------------------------------------------------------------------------------------------
def feature_matches(session: Session, source: Source, index: int) -> list[SourceMatchesPublic]:
    """One entry per other source the feature has matches in: the best, and every one above SPLIT_THRESHOLD."""
    by_source: dict[str, list] = {}
    sizes: dict[str, int] = {}
    ids: dict[str, int] = {}
    for other_id, name, d_sae, other, corr, cos in qc.feature_matches(session, source.id, index):
        by_source.setdefault(name, []).append(MatchPublic(index=other, corr=corr, cos=cos,
                                                          url=browse.feature_url(name, other)))
        sizes[name], ids[name] = d_sae, other_id
    out = []
    for name, matches in by_source.items():
        labels = qb.canonical_labels(session, ids[name], [m.index for m in matches])
        for m in matches:
            m.label = labels.get(m.index)
        matches.sort(key=lambda m: (-_strength(m.corr, m.cos), m.index))
        above = [m for m in matches if _strength(m.corr, m.cos) >= SPLIT_THRESHOLD]
        out.append(SourceMatchesPublic(source=name, d_sae=sizes[name], wider=sizes[name] > source.d_sae,
                                       best=matches[0], above=above, split=len(above) >= 2,
                                       threshold=SPLIT_THRESHOLD, compare_url=compare_url(source.name, name)))
    return out


def coactive(session: Session, source: Source, feature: Feature) -> list[CoactivePublic]:
    n_active = max(feature.n_active or 0, 1)
    return [CoactivePublic(index=i, count=c, share=c / n_active, url=browse.feature_url(source.name, i))
            for i, c in qc.coactive_features(session, source.id, feature.index)]


# ---- compare page --------------------------------------------------------------------------------------------
def _best_arrays(session: Session, a: Source, b: Source, alive: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(best corr, best cos) ``float64 [len(alive)]`` of a's live features in b; NaN where none is stored."""
    corr = np.full(len(alive), np.nan)
    cos = np.full(len(alive), np.nan)
    where = {int(i): k for k, i in enumerate(alive.tolist())}
    for index, c, s in qc.pair_best(session, a.id, b.id):
        k = where.get(index)
        if k is not None:
            corr[k] = np.nan if c is None else c
            cos[k] = np.nan if s is None else s
    return corr, cos


def _curve(values: np.ndarray, name: str, measure: str, direction: str) -> CurvePublic:
    filled = np.nan_to_num(values, nan=-np.inf)
    n = max(len(values), 1)
    return CurvePublic(name=name, measure=measure, direction=direction, thresholds=THRESHOLDS,
                       fractions=[round(float((filled >= t).sum()) / n, 4) for t in THRESHOLDS])


def _summary(values: np.ndarray, measure: str, direction: str, threshold: float) -> PairSummaryPublic:
    filled = np.nan_to_num(values, nan=-np.inf)
    matched = int((filled >= threshold).sum())
    return PairSummaryPublic(direction=direction, measure=measure, n_features=len(values),
                             mean_max=round(float(np.clip(np.nan_to_num(values, nan=0.0), 0, None).mean()), 4)
                             if len(values) else 0.0,
                             matched=matched, matched_fraction=round(matched / max(len(values), 1), 4))


def _rows(session: Session, a: Source, b: Source, indices: list[int]) -> list[CompareRowPublic]:
    best: dict[int, tuple] = {}
    for index, other, corr, cos in qc.pair_rows(session, a.id, b.id, indices):
        if index not in best or _strength(corr, cos) > _strength(best[index][1], best[index][2]):
            best[index] = (other, corr, cos)
    labels = qb.canonical_labels(session, a.id, indices) if indices else {}
    rows = []
    for i in indices:
        other, corr, cos = best.get(i, (None, None, None))
        rows.append(CompareRowPublic(index=i, other_index=other, corr=corr, cos=cos, label=labels.get(i),
                                     url=browse.feature_url(a.name, i),
                                     other_url=browse.feature_url(b.name, other) if other is not None else None))
    return rows


def compare_data(session: Session, a_name: str, b_name: str, threshold: float = DEFAULT_THRESHOLD) -> ComparePublic:
    if not -1.0 <= threshold <= 1.0:
        raise Invalid(f"threshold must be between -1 and 1, got {threshold!r}")
    a, b = browse._require_source(session, a_name), browse._require_source(session, b_name)
    if a.id == b.id:
        raise Invalid(f"compare {a.name!r} with another source, not with itself")
    alive_a = np.asarray(qc.alive_indices(session, a.id), dtype=np.int64)
    alive_b = np.asarray(qc.alive_indices(session, b.id), dtype=np.int64)
    corr_ab, cos_ab = _best_arrays(session, a, b, alive_a)
    corr_ba, cos_ba = _best_arrays(session, b, a, alive_b)
    has_cos = bool(np.isfinite(cos_ab).any() or np.isfinite(cos_ba).any())
    curves = [_curve(corr_ab, "corr a→b", "corr", "a→b"), _curve(corr_ba, "corr b→a", "corr", "b→a")]
    summaries = [_summary(corr_ab, "corr", "a→b", threshold), _summary(corr_ba, "corr", "b→a", threshold)]
    if has_cos:
        curves += [_curve(cos_ab, "cos a→b", "cos", "a→b"), _curve(cos_ba, "cos b→a", "cos", "b→a")]
        summaries += [_summary(cos_ab, "cos", "a→b", threshold), _summary(cos_ba, "cos", "b→a", threshold)]
    filled = np.nan_to_num(corr_ab, nan=-np.inf)
    order_best = np.lexsort((alive_a, -filled))[:LIST_LENGTH]
    best = [int(alive_a[k]) for k in order_best if np.isfinite(filled[k])]
    low = np.flatnonzero(filled < threshold)
    unmatched = [int(alive_a[k]) for k in low[np.lexsort((alive_a[low], filled[low]))][:LIST_LENGTH]]
    others = [s.name for s in qc.matched_sources(session, a.id)]
    url = compare_url(a.name, b.name)
    return ComparePublic(
        a=browse.source_public(a), b=browse.source_public(b), threshold=threshold,
        measured=b.name in others, has_cos=has_cos, summaries=summaries, curves=curves,
        best=_rows(session, a, b, best), unmatched=_rows(session, a, b, unmatched), n_unmatched=int(len(low)),
        others=others, url=url, api_url="/api/v1" + url)


def compared_sources(session: Session, source: Source) -> list[dict]:
    """The source page's links: every source this one has matches in."""
    return [{"name": s.name, "url": compare_url(source.name, s.name), "hook_name": s.hook_name, "d_sae": s.d_sae}
            for s in qc.matched_sources(session, source.id)]


# ---- feature map ---------------------------------------------------------------------------------------------
def map_data(session: Session, source_name: str) -> MapPublic:
    source = browse._require_source(session, source_name)
    found = qc.source_map(session, source.id)
    base = browse.source_url(source.name) + "/features/"
    if found is None:
        return MapPublic(source=source.name, feature_url=base)
    method, xy = found
    density = np.zeros(len(xy))
    for index, value in qc.feature_density_pairs(session, source.id):
        if 0 <= index < len(xy):
            density[index] = value
    return MapPublic(source=source.name, method=method, x=np.round(xy[:, 0], 5).tolist(),
                     y=np.round(xy[:, 1], 5).tolist(), density=[float(f"{d:.4g}") for d in density.tolist()],
                     labels=qb.canonical_labels(session, source.id, None), feature_url=base)
