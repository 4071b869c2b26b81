"""Data functions of the live pages. Each returns an `Outcome`: the page's data (rendered by the HTML route,
returned as is by the JSON twin) and the HTTP status it deserves, so both twins agree on errors.

Database work runs in the thread pool, model work on the device thread of app/live/service.py; the
event loop only awaits.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Generic, TypeVar

from starlette.concurrency import run_in_threadpool

from app.services import live_text as live_text
from app.services.schemas.live import FeatureTestPublic, HistogramMarker, LiveFeaturePublic, LiveFilters, LiveLimits, LivePublic, LiveRequest, LiveTokenPublic
from app.services.runner import LiveService, LiveUnavailable, ModelBusy, get_service, require_sae
from app.store import browse as browse_q
from app.store import live as q
from app.services.browse import BrowseNotFound, feature_url, require_feature, source_url

P = TypeVar("P")
EMPTY_TEXT = "Type or paste some text, then run it: each token will show the features that fire on it."


@dataclass
class Outcome(Generic[P]):
    page: P
    status_code: int = 200
    retry_after: int | None = None

    @property
    def headers(self) -> dict[str, str] | None:
        return {"Retry-After": str(self.retry_after)} if self.retry_after else None

    @property
    def error(self) -> str | None:
        if self.status_code < 400:
            return None
        return getattr(self.page, "message", None) or getattr(self.page, "reason", None)


@dataclass(frozen=True)
class _SourceRow:
    id: int
    name: str
    hidden: list[int]


def _service_or_reason(app, source_name: str) -> tuple[LiveService | None, object, str | None]:
    try:
        service = get_service(app)
        return service, require_sae(service, source_name), None
    except LiveUnavailable as exc:
        return None, None, exc.message


def _limits(app, service: LiveService | None) -> LiveLimits:
    settings = app.state.settings
    positions = None
    if service is not None:
        from app.ml.live import max_positions

        positions = max_positions(service.bundle.lm)
    limit, why = live_text.token_limit(settings.max_live_tokens, positions)
    return LiveLimits(max_chars=settings.max_live_chars, max_tokens=limit, max_tokens_reason=why)


def _prepare(app, service: LiveService | None, text: str) -> tuple[live_text.Tokenized | None, str | None, int]:
    """(tokens, message, status) for a non-empty text: the character and token limits checked."""
    limits = _limits(app, service)
    try:
        live_text.check_chars(text, limits.max_chars)
        lm = service.bundle.lm
        tokens = live_text.tokenize(lm.tokenizer, text, lm.bos_token_id, lm.name)
        live_text.check_tokens(len(tokens.ids), limits.max_tokens, limits.max_tokens_reason)
    except live_text.LiveInputError as exc:
        return None, exc.message, exc.status_code
    return tokens, None, 200


# ---- which features fire on my text ----------------------------------------------------------------------

def _live_source(app, source_name: str, max_density_percent: float | None) -> _SourceRow:
    with app.state.sessionmaker() as session:
        source = browse_q.source_by_name(session, source_name)
        if source is None:
            raise BrowseNotFound(f"There is no source named {source_name!r}.", browse_q.source_names(session))
        hidden = ([] if max_density_percent is None
                  else q.dense_feature_indices(session, source.id, max_density_percent / 100.0))
        return _SourceRow(source.id, source.name, hidden)


async def live_data(app, source_name: str, req: LiveRequest,
                    problem: live_text.LiveInputError | None = None) -> Outcome[LivePublic]:
    """The live page for `req`; `problem` is a form field the route could not parse (shown, nothing run)."""
    text = live_text.clean_text(req.text)
    row = await run_in_threadpool(_live_source, app, source_name, req.max_density)
    service, sae, reason = _service_or_reason(app, source_name)
    page = LivePublic(
        source=row.name, url=source_url(row.name) + "/live", api_url="/api/v1" + source_url(row.name) + "/live",
        available=reason is None, reason=reason, text=text, limits=_limits(app, service),
        filters=LiveFilters(ignore_bos=req.ignore_bos, max_density=req.max_density, tokens=sorted(set(req.tokens)),
                            tokens_spec=live_text.format_positions(req.tokens), top_k=req.top_k,
                            n_ranked=req.n_ranked),
        n_hidden=len(row.hidden),
    )
    if problem is not None:
        page.message = problem.message
        return Outcome(page, problem.status_code)
    if reason is not None:
        return Outcome(page, 503 if text else 200)
    if not text:
        page.message = EMPTY_TEXT
        return Outcome(page)
    tokens, message, status = _prepare(app, service, text)
    if tokens is None:
        page.message = message
        return Outcome(page, status)
    return await _run_live(app, service, sae, row, tokens, req, page)


async def _run_live(app, service, sae, row: _SourceRow, tokens: live_text.Tokenized, req: LiveRequest,
                    page: LivePublic) -> Outcome[LivePublic]:
    from app.ml.live import live_features

    n = len(tokens.ids)
    selected = [p for p in page.filters.tokens if 0 <= p < n]
    page.filters.tokens = selected
    page.filters.tokens_spec = live_text.format_positions(selected)
    keep = set(selected) if selected else set(range(n))
    if req.ignore_bos and tokens.has_bos:
        keep.discard(0)
    mask = [p in keep for p in range(n)]

    def job():
        acts = service.activations(tokens.ids)[sae.cfg.hook_name]
        return live_features(sae, acts, top_k=req.top_k, n_ranked=req.n_ranked, token_mask=mask, hidden=row.hidden)

    try:
        result = await service.run(job)
    except ModelBusy as exc:
        page.message = exc.message
        return Outcome(page, 503, exc.retry_after)

    top_indices, top_values = result.token_top_indices.tolist(), result.token_top_values.round(6).tolist()
    indices = set(result.ranked_indices.tolist()) | {i for row_ in top_indices for i in row_ if i >= 0}
    stats, labels = await run_in_threadpool(_stats_and_labels, app, row.id, indices)
    prefix = feature_url(row.name, 0)[:-1]

    # Up to pos x top_k of these per request: built without validation (the values are ours) to keep the
    # event loop free for other pages.
    def feature(index: int, value: float, **extra) -> LiveFeaturePublic:
        s = stats.get(index)
        return LiveFeaturePublic.model_construct(
            index=index, value=value, density=s.density if s else None, max_act=s.max_act if s else None,
            label=labels.get(index), url=f"{prefix}{index}", **{"position": None, "token": None, "n_tokens": None,
                                                                 **extra})

    l0 = result.token_l0.tolist()
    page.tokens = [
        LiveTokenPublic.model_construct(
            position=p, id=tokens.ids[p], text=tokens.texts[p], title=tokens.titles[p], l0=l0[p],
            bos=tokens.has_bos and p == 0, selected=p in selected,
            features=[feature(i, v) for i, v in zip(top_indices[p], top_values[p]) if i >= 0],
        )
        for p in range(n)
    ]
    page.ranked = [
        feature(i, v, position=pos, token=tokens.texts[pos], n_tokens=c)
        for i, v, pos, c in zip(result.ranked_indices.tolist(), result.ranked_max.round(6).tolist(),
                                result.ranked_pos.tolist(), result.ranked_n_tokens.tolist())
    ]
    if req.token is not None and 0 <= req.token < n:
        page.focus = req.token
    elif page.ranked:
        page.focus = page.ranked[0].position
    else:
        page.focus = n - 1
    return Outcome(page)


def _stats_and_labels(app, source_id: int, indices: set[int]):
    with app.state.sessionmaker() as session:
        return q.feature_stats(session, source_id, indices), browse_q.canonical_labels(session, source_id, indices)


# ---- test this feature -------------------------------------------------------------------------------------

def _feature_row(app, source_name: str, index: int) -> dict:
    with app.state.sessionmaker() as session:
        source, feature = require_feature(session, source_name, index)
        return {"source": source.name, "index": feature.index, "max_act": float(feature.max_act or 0.0),
                "act_hist": dict(feature.act_hist or {})}


def histogram_marker(value: float, hist: dict) -> HistogramMarker:
    """Where `value` falls among the corpus's nonzero activations, from the stored {edges, counts}."""
    edges, counts = hist.get("edges") or [], hist.get("counts") or []
    if len(edges) != len(counts) + 1 or not counts or sum(counts) == 0:
        return HistogramMarker(value=value, above_corpus_max=False, percentile=None)
    below = 0.0
    for count, lo, hi in zip(counts, edges, edges[1:]):
        if value >= hi:
            below += count
        elif value > lo:
            below += count * (value - lo) / (hi - lo)
    return HistogramMarker(value=value, above_corpus_max=value > edges[-1],
                           percentile=round(below / sum(counts), 4))


async def feature_test_data(app, source_name: str, index: int, raw_text: str) -> Outcome[FeatureTestPublic]:
    text = live_text.clean_text(raw_text)
    row = await run_in_threadpool(_feature_row, app, source_name, index)
    url = feature_url(row["source"], index)
    service, sae, reason = _service_or_reason(app, source_name)
    page = FeatureTestPublic(source=row["source"], index=index, url=url, test_url=url + "/test",
                             available=reason is None, reason=reason, text=text, corpus_max_act=row["max_act"],
                             act_hist=row["act_hist"])
    if reason is not None:
        return Outcome(page, 503 if text else 200)
    if index >= sae.cfg.d_sae:
        raise BrowseNotFound(f"The loaded SAE of {row['source']!r} has {sae.cfg.d_sae} features (0 to "
                             f"{sae.cfg.d_sae - 1}); there is no feature {index}.", [row["source"]], row["source"],
                             (0, sae.cfg.d_sae - 1))
    if not text:
        page.message = "Type or paste some text to see where this feature fires on it."
        return Outcome(page)
    tokens, message, status = _prepare(app, service, text)
    if tokens is None:
        page.message = message
        return Outcome(page, status)

    from app.ml.live import feature_trace

    def job():
        return feature_trace(sae, service.activations(tokens.ids)[sae.cfg.hook_name], index)

    try:
        acts = await service.run(job)
    except ModelBusy as exc:
        page.message = exc.message
        return Outcome(page, 503, exc.retry_after)
    values = [round(float(a), 6) for a in acts]
    first = 1 if tokens.has_bos and len(values) > 1 else 0  # BOS activations are not about the text
    max_pos = max(range(first, len(values)), key=values.__getitem__)
    page.tokens, page.titles, page.token_ids, page.acts = tokens.texts, tokens.titles, tokens.ids, values
    page.max_value, page.max_pos = values[max_pos], max_pos
    if row["max_act"] > 0:
        page.ratio_to_corpus_max = round(page.max_value / row["max_act"], 4)
    page.marker = histogram_marker(page.max_value, row["act_hist"]) if page.max_value > 0 else None
    return Outcome(page)
