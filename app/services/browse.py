"""Data functions of the browse pages. Each builds one schema object that the HTML page renders and the
JSON twin under /api/v1 returns unchanged. They take a Session, never the model bundle.
"""

from __future__ import annotations

import math
import threading
from pathlib import Path
from urllib.parse import quote

import numpy as np
from sqlalchemy.orm import Session

from app.errors import NotFound
from app.paths import DEMO_ARTIFACTS_DIR
from app.services import compare
from app.services.metrics import health_metrics, sample_note
from app.services.page_cache import LRUCache
from app.services.schemas.browse import (
    ExampleGroupPublic,
    ExamplePublic,
    FeaturePublic,
    FeatureRowPublic,
    FeaturesPublic,
    HistogramPublic,
    LogitTokenPublic,
    NeighbourPublic,
    SourceDetailPublic,
    SourcePublic,
    SourcesPublic,
)
from app.services.tokens import TokenText, token_text_for
from app.store import browse as q
from app.store import output as qo
from app.store import sources as qs
from app.store.browse import SORTS, TableQuery  # noqa: F401 - the table query the routes parse
from app.store.models import Feature, Source

CONTEXTS = {"5": 5, "16": 16, "full": None}
DEFAULT_CONTEXT = "16"


def not_found(message: str, sources: list[str], source: str | None = None,
              index_range: tuple[int, int] | None = None) -> NotFound:
    """A source or feature that does not exist; the error names what does (the 404 page and JSON ``detail``)."""
    return NotFound(message, detail={"message": message, "sources": sources, "source": source,
                                     "index_range": list(index_range) if index_range else None})


def source_url(name: str) -> str:
    return f"/sources/{quote(name, safe='')}"


def feature_url(name: str, index: int) -> str:
    return f"{source_url(name)}/features/{index}"


DEMO_MODEL_NAME = "featureboard-demo"


def model_display_name(model_name: str) -> str:
    """A model as people name it: the hub id as it is, a local folder by its name (the shipped demo model, whose
    folder is just "model", as featureboard-demo). The full path stays in the JSON (``model_name``)."""
    if not model_name:
        return ""
    path = Path(model_name)
    if not path.is_absolute() and not model_name.startswith((".", "~")):
        return model_name  # a hub id such as gpt2 or google/gemma-2-2b
    try:
        if path.expanduser().resolve() == (DEMO_ARTIFACTS_DIR / "model").resolve():
            return DEMO_MODEL_NAME
    except OSError:
        pass
    return path.name or model_name


def source_public(s: Source) -> SourcePublic:
    health = s.health or {}
    return SourcePublic(
        name=s.name, model_name=s.model_name, model_display=model_display_name(s.model_name), hook_name=s.hook_name,
        architecture=s.architecture, d_in=s.d_in, d_sae=s.d_sae, status=s.status, n_tokens=s.n_tokens or 0,
        n_contexts=s.n_contexts or 0, health=health, metrics=health_metrics(health), health_note=sample_note(health),
        corpus=s.corpus or {}, url=source_url(s.name), api_url="/api/v1" + source_url(s.name),
    )


def home_data(session: Session, model: dict | None) -> SourcesPublic:
    sources = [source_public(s) for s in qs.list_sources(session)]
    return SourcesPublic(model=model, data=sources, count=len(sources))


def _require_source(session: Session, name: str) -> Source:
    source = qs.source_by_name(session, name)
    if source is None:
        known = qs.source_names(session)
        raise not_found(f"There is no source named {name!r}.", known)
    return source


# ---- source page -------------------------------------------------------------------------------------

_density_cache: dict[tuple, HistogramPublic] = {}
_density_lock = threading.Lock()


def density_histogram(densities: list[float], n_bins: int = 40) -> HistogramPublic:
    """Histogram of log10(density) over features that fired; bins span [floor(min), 0]."""
    values = np.asarray([d for d in densities if d > 0], dtype=np.float64)
    if values.size == 0:
        return HistogramPublic()
    logs = np.log10(np.clip(values, 1e-12, 1.0))
    lo = max(math.floor(float(logs.min())), -12)
    hi = 0 if logs.max() > -1 else math.ceil(float(logs.max()))
    if hi <= lo:
        hi = lo + 1
    counts, edges = np.histogram(logs, bins=n_bins, range=(lo, hi))
    return HistogramPublic(edges=[round(float(e), 4) for e in edges], counts=[int(c) for c in counts])


def _cached_density_histogram(session: Session, source: Source, n_features: int) -> HistogramPublic:
    # Immutable once the precompute is complete: computed once per source instead of on every page view.
    key = (str(session.get_bind().url), source.id, source.created_at, n_features)
    if source.status == "complete" and key in _density_cache:
        return _density_cache[key]
    hist = density_histogram(q.feature_densities(session, source.id))
    if source.status == "complete":
        with _density_lock:
            if len(_density_cache) > 64:
                _density_cache.clear()
            _density_cache[key] = hist
    return hist


def table_query(sort: str = "index", order: str = "asc", hide_dead: bool = False, max_density: float | None = None,
                label: str = "any", page: int = 1, per_page: int = 50, min_output: float | None = None) -> q.TableQuery:
    return q.TableQuery(sort=sort if sort in q.SORTS else "index", order="desc" if order == "desc" else "asc",
                        hide_dead=hide_dead, max_density=max_density,
                        label=label if label in q.LABEL_FILTERS else "any", min_output=min_output, page=max(page, 1),
                        per_page=min(max(per_page, 1), 500))


def features_data(session: Session, source_name: str, tq: q.TableQuery, source: Source | None = None) -> FeaturesPublic:
    source = source or _require_source(session, source_name)
    rows, count = q.feature_table(session, source.id, tq)
    indices = [r.index for r in rows]
    labels = q.canonical_labels(session, source.id, indices) if rows else {}
    scores = q.canonical_label_scores(session, source.id, indices, q.SCORE_METHOD) if labels else {}
    tokens = token_text_for(source.model_name)
    peaks = q.peak_tokens(session, source.id, indices) if rows else {}
    data = [
        FeatureRowPublic(
            index=r.index, density=r.density, max_act=r.max_act, mean_act=r.mean_act, dead=(r.n_active or 0) == 0,
            label=labels.get(r.index), label_score=scores.get(r.index), url=feature_url(source.name, r.index),
            fires_on=[tokens.text(t) for t in peaks.get(r.index, [])],
            promotes=[_logit_text(t, tokens) for t in (r.top_logits or [])[:3]], output_score=r.output_score,
        )
        for r in rows
    ]
    return FeaturesPublic(
        source=source.name, data=data, count=count, page=tq.page, per_page=tq.per_page,
        pages=max(1, math.ceil(count / tq.per_page)), sort=tq.sort, order=tq.order, hide_dead=tq.hide_dead,
        max_density=tq.max_density, label=tq.label, min_output=tq.min_output, labels_available=q.labels_available(),
        score_method=q.SCORE_METHOD,
    )


def source_data(session: Session, source_name: str, tq: q.TableQuery) -> SourceDetailPublic:
    source = _require_source(session, source_name)
    n, dead, lo, hi = q.feature_counts(session, source.id)
    return SourceDetailPublic(
        source=source_public(source), n_features=n, n_dead=dead,
        index_range=[lo if lo is not None else 0, hi if hi is not None else source.d_sae - 1],
        density_histogram=_cached_density_histogram(session, source, n),
        features=features_data(session, source_name, tq, source=source),
        compare_with=compare.compared_sources(session, source), map_url="/api/v1" + source_url(source.name) + "/map",
    )


def random_feature_index(session: Session, source_name: str) -> int:
    source = _require_source(session, source_name)
    index = q.random_live_index(session, source.id, source.d_sae)
    if index is None:
        raise not_found(f"Source {source.name!r} has no feature that fired on its corpus.",
                             qs.source_names(session), source.name, (0, source.d_sae - 1))
    return index


# ---- feature page ------------------------------------------------------------------------------------

def _logit_text(entry: dict, tokens: TokenText) -> str:
    token_id = entry.get("token_id")
    if tokens.available and isinstance(token_id, int):
        return tokens.text(token_id)
    return str(entry.get("token", f"#{token_id}"))


def _logits(entries: list, tokens: TokenText) -> list[LogitTokenPublic]:
    return [LogitTokenPublic(token_id=int(e.get("token_id", -1)), token=_logit_text(e, tokens),
                             value=float(e.get("value", 0.0))) for e in entries or []]


def _histogram(value) -> HistogramPublic:
    if isinstance(value, dict) and value.get("edges") and value.get("counts"):
        return HistogramPublic(edges=[float(x) for x in value["edges"]], counts=[int(c) for c in value["counts"]])
    return HistogramPublic()


def _window(max_pos: int, length: int, context: str) -> tuple[int, int]:
    k = CONTEXTS[context]
    if k is None:
        return 0, length
    return max(0, max_pos - k), min(length, max_pos + k + 1)


def _groups(rows: list[q.ExampleRow], intervals: list, context: str, tokens: TokenText) -> list[ExampleGroupPublic]:
    """Top examples, then interval groups from the highest bin down. An interval sample that is one of the top
    examples (same context, same peak) is not shown again: its group counts it in ``n_in_top``."""
    groups: dict[tuple[str, int], ExampleGroupPublic] = {}
    seen: dict[tuple, ExamplePublic] = {}
    top_peaks = {(r.context_id, r.max_pos) for r in rows if r.kind == "top"}
    for row in rows:
        key = (row.kind, row.bin if row.kind == "interval" else -1)
        group = groups.get(key)
        if group is None:
            interval = intervals[row.bin] if row.kind == "interval" and 0 <= row.bin < len(intervals) else {}
            group = groups[key] = ExampleGroupPublic.model_construct(
                kind=row.kind, bin=key[1], lo=interval.get("lo"), hi=interval.get("hi"), share=interval.get("share"),
                examples=[], n_in_top=0)
        if row.kind == "interval" and (row.context_id, row.max_pos) in top_peaks:
            group.n_in_top += 1
            continue
        ids = np.frombuffer(row.token_ids, dtype="<i4")
        acts = np.frombuffer(row.acts, dtype="<f2")
        n = min(len(ids), len(acts))
        start, stop = _window(row.max_pos, n, context)
        window_ids = ids[start:stop].tolist()
        fold_key = (key, tuple(window_ids))
        if fold_key in seen:
            seen[fold_key].count += 1
            continue
        example = ExamplePublic.model_construct(
            rank=row.rank, max_value=row.max_value, max_pos=row.max_pos, start=start, token_ids=window_ids,
            tokens=tokens.texts(window_ids), acts=np.round(acts[start:stop].astype(np.float32), 4).tolist(), count=1)
        seen[fold_key] = example
        group.examples.append(example)
    top = [g for k, g in groups.items() if k[0] == "top"]
    bins = sorted((g for k, g in groups.items() if k[0] == "interval"), key=lambda g: -g.bin)
    return top + bins


def feature_data(session: Session, source_name: str, index: int, context: str = DEFAULT_CONTEXT) -> FeaturePublic:
    source, feature = require_feature(session, source_name, index)
    return feature_public(session, source, feature, context)


def require_feature(session: Session, source_name: str, index: int) -> tuple[Source, Feature]:
    """The source and feature rows, or NotFound naming the known sources and the valid index range."""
    source, feature = q.feature_with_source(session, source_name, index)
    if source is None:
        raise not_found(f"There is no source named {source_name!r}.", qs.source_names(session))
    if feature is None:
        n, _, lo, hi = q.feature_counts(session, source.id)
        valid = (0, source.d_sae - 1)
        if 0 <= index < source.d_sae:
            message = (f"Feature {index} of {source.name!r} has not been computed yet "
                       f"({n} of {source.d_sae} features stored).")
        else:
            message = f"{source.name!r} has no feature {index}: valid indices are {valid[0]} to {valid[1]}."
        raise not_found(message, qs.source_names(session), source.name, valid)
    return source, feature


# What a feature page shows that never changes while its source exists (examples, histograms, logits): kept per
# process, keyed by the source's identity, so a label write or another visitor re-reads only the labels.
_static_parts = LRUCache(64 * 1024 * 1024)


def _feature_static(session: Session, source: Source, feature: Feature, context: str, tokens: TokenText) -> dict:
    def build() -> dict:
        dead = (feature.n_active or 0) == 0
        rows = [] if dead else q.feature_examples(session, source.id, feature.index)
        return {"groups": _groups(rows, feature.intervals or [], context, tokens),
                "act_histogram": _histogram(feature.act_hist), "logit_histogram": _histogram(feature.logit_hist),
                "top_logits": _logits(feature.top_logits, tokens), "bottom_logits": _logits(feature.bottom_logits, tokens),
                "size": 2000 + sum(len(r.acts) * 12 for r in rows)}

    if source.status != "complete":
        return build()
    key = (str(session.get_bind().url), source.id, str(source.created_at), feature.index, context)
    return _static_parts.get_or_build(key, build, lambda parts: parts["size"])


def feature_public(session: Session, source: Source, feature: Feature, context: str) -> FeaturePublic:
    tokens = token_text_for(source.model_name)
    dead = (feature.n_active or 0) == 0
    static = _feature_static(session, source, feature, context, tokens)
    neighbours = feature.neighbours or []
    labels = q.canonical_labels(session, source.id, [feature.index] + [int(n["index"]) for n in neighbours])
    i = feature.index
    score = q.canonical_label_scores(session, source.id, [i], q.SCORE_METHOD).get(i) if i in labels else None
    return FeaturePublic(
        source=source_public(source), index=i, dead=dead, n_active=feature.n_active or 0,
        density=feature.density, max_act=feature.max_act, mean_act=feature.mean_act, label=labels.get(i),
        label_score=score, score_method=q.SCORE_METHOD, output=qo.feature_output(session, source.id, i),
        act_histogram=static["act_histogram"], logit_histogram=static["logit_histogram"],
        top_logits=static["top_logits"], bottom_logits=static["bottom_logits"],
        neighbours=[NeighbourPublic(index=int(n["index"]), cosine=float(n["cosine"]), label=labels.get(int(n["index"])),
                                    url=feature_url(source.name, int(n["index"]))) for n in neighbours],
        matches=compare.feature_matches(session, source, i), coactive=compare.coactive(session, source, feature),
        context=context, groups=static["groups"],
        prev_index=i - 1 if i > 0 else None, next_index=i + 1 if i + 1 < source.d_sae else None,
        tokens_available=tokens.available, url=feature_url(source.name, i),
        api_url="/api/v1" + feature_url(source.name, i),
    )


def source_names(session: Session) -> list[str]:
    """Names of every source, oldest first (what a 404 page offers instead)."""
    return qs.source_names(session)


def feature_lists_panel(session: Session, actor, source_name: str, index: int) -> dict:
    """The feature page's "add to a list": the actor's lists on this source, each saying whether it holds the
    feature already. ``actor`` is an app.services.actor.Actor or None (nobody logged in)."""
    from app.store import labels as ql

    if actor is None:
        return {"account": None, "can_write": False, "lists": []}
    lists = [fl for fl in ql.lists_overview(session, actor.id) if fl["source"] == source_name]
    for fl in lists:
        fl["indices"] = {it["index"] for it in ql.list_items(session, ql.get_list(session, fl["slug"]).id)}
    return {"account": actor.username, "can_write": actor.can_write, "lists": lists}
