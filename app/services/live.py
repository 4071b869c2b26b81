"""Data functions of the live pages: which features fire on my text, and testing one feature on any text.

Each builds the page's data (rendered by the HTML route, returned as is by the JSON twin). A problem the user
can fix (a text over a limit, a bad field, no model, a busy model) is raised as an app.errors error that carries
the page, so the HTML twin shows the form again with the message and the JSON twin answers ``{"detail": ...}``.

Database work runs in the thread pool, model work on the one model runner (app/services/runner.py); the event
loop only awaits.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from starlette.concurrency import run_in_threadpool

from app.errors import FeatureboardError, Unavailable
from app.services import live_text
from app.services.browse import feature_url, not_found, require_feature, source_url
from app.services.context import Context
from app.services.schemas.live import (
    FeatureTestPublic,
    HistogramMarker,
    LiveFeaturePublic,
    LiveFilters,
    LiveLimits,
    LiveMultiPublic,
    LiveMultiRequest,
    LivePublic,
    LiveRequest,
    LiveTokenPublic,
)
from app.store import live as q
from app.store.labels import canonical_labels
from app.store.sources import source_by_name, source_names

EMPTY_TEXT = "Type or paste some text, then run it: each token will show the features that fire on it."


@dataclass(frozen=True)
class _SourceRow:
    id: int
    name: str
    hidden: list[int]


def _sae_or_reason(ctx: Context, source_name: str):
    """(the loaded SAE, None) or (None, why live work is off for this source)."""
    try:
        return ctx.require_sae(source_name), None
    except Unavailable as exc:
        return None, exc.message


def _limits(ctx: Context) -> LiveLimits:
    positions = ctx.bundle.lm.max_positions if ctx.bundle is not None else None
    limit, why = live_text.token_limit(ctx.settings.max_live_tokens, positions)
    return LiveLimits(max_chars=ctx.settings.max_live_chars, max_tokens=limit, max_tokens_reason=why)


def _tokenize(ctx: Context, text: str, page) -> live_text.Tokenized:
    """The text's tokens with BOS, the character and token limits checked (TooLarge carrying ``page``)."""
    limits = _limits(ctx)
    try:
        live_text.check_chars(text, limits.max_chars)
        lm = ctx.bundle.lm
        tokens = live_text.tokenize(lm.tokenizer, text, lm.bos_token_id, lm.name)
        live_text.check_tokens(len(tokens.ids), limits.max_tokens, limits.max_tokens_reason)
    except FeatureboardError as exc:
        raise _with_page(exc, page) from None
    return tokens


def _with_page(exc: FeatureboardError, page) -> FeatureboardError:
    """The error, carrying the page with its message, so the form is shown again with what was typed."""
    page.message = exc.message
    exc.page = page
    return exc


async def _run(ctx: Context, job, page):
    try:
        return await ctx.require_runner().run(job)
    except FeatureboardError as exc:  # Busy: the page keeps the text; try again later
        raise _with_page(exc, page) from None


# ---- which features fire on my text ----------------------------------------------------------------------

def _live_source(ctx: Context, source_name: str, max_density_percent: float | None) -> _SourceRow:
    with ctx.sessionmaker() as session:
        source = source_by_name(session, source_name)
        if source is None:
            raise not_found(f"There is no source named {source_name!r}.", source_names(session))
        hidden = ([] if max_density_percent is None
                  else q.dense_feature_indices(session, source.id, max_density_percent / 100.0))
        return _SourceRow(source.id, source.name, hidden)


async def live_data_from_params(ctx: Context, source_name: str, params: Mapping) -> LivePublic:
    """The live page from its form or query string; a bad field is shown on the page, nothing is run."""
    try:
        req = live_text.live_request_from_params(params)
    except FeatureboardError as exc:
        page = await live_data(ctx, source_name, LiveRequest(text=params.get("text") or ""), run=False)
        raise _with_page(exc, page) from None
    return await live_data(ctx, source_name, req)


async def live_data(ctx: Context, source_name: str, req: LiveRequest, run: bool = True) -> LivePublic:
    """The live page for ``req``: every token with its top features, and the features ranked by their max."""
    text = live_text.clean_text(req.text)
    row = await run_in_threadpool(_live_source, ctx, source_name, req.max_density)
    sae, reason = _sae_or_reason(ctx, source_name)
    page = LivePublic(
        source=row.name, url=source_url(row.name) + "/live", api_url="/api/v1" + source_url(row.name) + "/live",
        available=reason is None, reason=reason, text=text, limits=_limits(ctx),
        filters=LiveFilters(ignore_bos=req.ignore_bos, max_density=req.max_density, tokens=sorted(set(req.tokens)),
                            tokens_spec=live_text.format_positions(req.tokens), top_k=req.top_k,
                            n_ranked=req.n_ranked),
        n_hidden=len(row.hidden),
    )
    if not run:
        return page
    if reason is not None:
        if text:
            raise Unavailable(reason, page=page)
        return page
    if not text:
        page.message = EMPTY_TEXT
        return page
    tokens = _tokenize(ctx, text, page)
    return await _run_live(ctx, sae, row, tokens, req, page)


async def live_multi_data(ctx: Context, body: LiveMultiRequest) -> LiveMultiPublic:
    """Several sources on one text; sources on the same model share one forward pass."""
    runner = ctx.require_runner()
    names = body.sources or sorted(runner.bundle.saes)
    before = runner.forward_passes
    single = LiveRequest(**body.model_dump(exclude={"sources"}))
    data = {name: await live_data(ctx, name, single) for name in names}
    return LiveMultiPublic.model_construct(data=data, forward_passes=runner.forward_passes - before)


async def _run_live(ctx: Context, sae, row: _SourceRow, tokens: live_text.Tokenized, req: LiveRequest,
                    page: LivePublic) -> LivePublic:
    from app.ml.live import live_features

    n = len(tokens.ids)
    selected = [p for p in page.filters.tokens if 0 <= p < n]
    page.filters.tokens = selected
    page.filters.tokens_spec = live_text.format_positions(selected)
    keep = set(selected) if selected else set(range(n))
    if req.ignore_bos and tokens.has_bos:
        keep.discard(0)
    mask = [p in keep for p in range(n)]

    runner = ctx.require_runner()

    def job():
        acts = runner.activations(tokens.ids)[sae.cfg.hook_name]
        return live_features(sae, acts, top_k=req.top_k, n_ranked=req.n_ranked, token_mask=mask, hidden=row.hidden)

    result = await _run(ctx, job, page)

    top_indices, top_values = result.token_top_indices.tolist(), result.token_top_values.round(6).tolist()
    indices = set(result.ranked_indices.tolist()) | {i for row_ in top_indices for i in row_ if i >= 0}
    stats, labels = await run_in_threadpool(_stats_and_labels, ctx, row.id, indices)
    prefix = feature_url(row.name, 0)[:-1]

    # Up to pos x top_k of these per request: built without validation (the values are ours) to keep the
    # event loop free for other pages.
    def feature(index: int, value: float, **extra) -> LiveFeaturePublic:
        s = stats.get(index)
        max_act = s.max_act if s else None
        return LiveFeaturePublic.model_construct(
            index=index, value=value, density=s.density if s else None, max_act=max_act,
            of_max=round(value / max_act, 4) if max_act else None,
            label=labels.get(index), url=f"{prefix}{index}", **{"position": None, "token": None, "n_tokens": None,
                                                                 **extra})

    l0 = result.token_l0.tolist()
    l0_all = result.token_l0_all.tolist() if result.token_l0_all is not None else l0
    page.n_firing, page.n_firing_all = result.n_firing, result.n_firing_all
    page.tokens = [
        LiveTokenPublic.model_construct(
            position=p, id=tokens.ids[p], text=tokens.texts[p], title=tokens.titles[p], l0=l0[p], l0_all=l0_all[p],
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
    return page


def _stats_and_labels(ctx: Context, source_id: int, indices: set[int]):
    with ctx.sessionmaker() as session:
        return q.feature_stats(session, source_id, indices), canonical_labels(session, source_id, indices)


# ---- test this feature -------------------------------------------------------------------------------------

def _feature_row(ctx: Context, source_name: str, index: int) -> dict:
    with ctx.sessionmaker() as session:
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


async def feature_test_data(ctx: Context, source_name: str, index: int, raw_text: str) -> FeatureTestPublic:
    """This feature's activation at every token of the text, its max, and where that max falls in the corpus."""
    text = live_text.clean_text(raw_text)
    row = await run_in_threadpool(_feature_row, ctx, source_name, index)
    url = feature_url(row["source"], index)
    sae, reason = _sae_or_reason(ctx, source_name)
    page = FeatureTestPublic(source=row["source"], index=index, url=url, test_url=url + "/test",
                             available=reason is None, reason=reason, text=text, corpus_max_act=row["max_act"],
                             act_hist=row["act_hist"])
    if reason is not None:
        if text:
            raise Unavailable(reason, page=page)
        return page
    if index >= sae.cfg.d_sae:
        raise not_found(f"The loaded SAE of {row['source']!r} has {sae.cfg.d_sae} features (0 to "
                        f"{sae.cfg.d_sae - 1}); there is no feature {index}.", [row["source"]], row["source"],
                        (0, sae.cfg.d_sae - 1))
    if not text:
        page.message = "Type or paste some text to see where this feature fires on it."
        return page
    tokens = _tokenize(ctx, text, page)

    from app.ml.live import feature_trace

    runner = ctx.require_runner()

    def job():
        return feature_trace(sae, runner.activations(tokens.ids)[sae.cfg.hook_name], index)

    acts = await _run(ctx, job, page)
    values = [round(float(a), 6) for a in acts]
    first = 1 if tokens.has_bos and len(values) > 1 else 0  # BOS activations are not about the text
    max_pos = max(range(first, len(values)), key=values.__getitem__)
    page.tokens, page.titles, page.token_ids, page.acts = tokens.texts, tokens.titles, tokens.ids, values
    page.max_value, page.max_pos = values[max_pos], max_pos
    if row["max_act"] > 0:
        page.ratio_to_corpus_max = round(page.max_value / row["max_act"], 4)
    page.marker = histogram_marker(page.max_value, row["act_hist"]) if page.max_value > 0 else None
    return page
