"""Attribution on the live page: which features of every loaded SAE push the model toward a chosen next token
(or toward one token rather than another), and what ablating one of them does to that token's probability.
Model work runs on the one model runner (app/services/runner.py); the maths is app/ml/attribution.py.
"""

from __future__ import annotations

from collections.abc import Mapping

from app.errors import FeatureboardError, Invalid, NotFound
from app.services import live_text
from app.services.context import Context
from app.store import labels as ql
from app.store import output as qo

TOP_K = 30


def _token(ctx: Context, value: str, field: str) -> int:
    """One token id from ``#123`` or from text that is exactly one token (spaces count: " the")."""
    lm = ctx.bundle.lm
    if value.startswith("#") and value[1:].isdigit():
        token = int(value[1:])
        if token >= lm.vocab_size:
            raise Invalid(f"{field}: token id {token} is past the vocabulary (0-{lm.vocab_size - 1})")
        return token
    if value == "":
        raise Invalid(f"{field}: give the next token to explain, as text (\" the\") or as an id (#262)")
    ids = list(lm.tokenizer(value, add_special_tokens=False)["input_ids"])
    if len(ids) != 1:
        pieces = " + ".join(repr(lm.tokenizer.decode([i])) for i in ids)
        raise Invalid(f"{field}: {value!r} is {len(ids)} tokens ({pieces}); give one token (a leading space is "
                      "part of a token), or its id as #N")
    return ids[0]


def parse(ctx: Context, params: Mapping) -> dict:
    """``text``, ``target``, optional ``baseline`` (compare: target − baseline) → token ids (Invalid, TooLarge)."""
    ctx.require_runner()
    text = live_text.clean_text(str(params.get("text") or ""))
    if not text.strip():
        raise Invalid("text: write the text whose next token should be explained")
    live_text.check_chars(text, ctx.settings.max_live_chars)
    lm = ctx.bundle.lm
    tokens = live_text.tokenize(lm.tokenizer, text, lm.bos_token_id, lm.name)
    limit, why = live_text.token_limit(ctx.settings.max_live_tokens, lm.max_positions)
    live_text.check_tokens(len(tokens.ids), limit, why)
    target = _token(ctx, str(params.get("target") or ""), "target")
    baseline_text = str(params.get("baseline") or "")
    baseline = _token(ctx, baseline_text, "baseline") if baseline_text else None
    if baseline == target:
        raise Invalid("baseline: the same token as the target; leave it empty or pick another token")
    return {"text": text, "ids": tokens.ids, "tokens": tokens.texts, "target": target, "baseline": baseline}


def _token_text(ctx: Context, token: int | None) -> str | None:
    return None if token is None else ctx.bundle.lm.tokenizer.decode([token])


async def attribution_data(ctx: Context, params: Mapping) -> dict:
    """The attribution table for the request in ``params`` (runs the model)."""
    req = parse(ctx, params)
    bundle = ctx.require_runner().bundle

    def job():
        from app.ml.attribution import attribute

        return attribute(bundle.lm, bundle.saes, req["ids"], req["target"], req["baseline"], top_k=TOP_K)

    result = await ctx.require_runner().run(job)
    result["sae_totals"] = result.pop("saes")
    labels: dict[tuple[str, int], str] = {}
    with ctx.sessionmaker() as session:
        for name in {r["source"] for r in result["features"]}:
            source = qo.source_by_name(session, name)
            if source is not None:
                wanted = [r["feature"] for r in result["features"] if r["source"] == name]
                labels.update({(name, i): t for i, t in ql.canonical_labels(session, source.id, wanted).items()})
    for row in result["features"]:
        row["label"] = labels.get((row["source"], row["feature"]))
        row["position_token"] = req["tokens"][row["position"]]
    return {"query": {"text": req["text"], "target": params.get("target"), "baseline": params.get("baseline") or None,
                        "target_id": req["target"], "baseline_id": req["baseline"],
                        "target_text": _token_text(ctx, req["target"]),
                        "baseline_text": _token_text(ctx, req["baseline"])},
            "n_tokens": len(req["ids"]), **result}


async def ablation_data(ctx: Context, params: Mapping) -> dict:
    """The target's probability with one feature ablated (``source``, ``feature``) against without."""
    req = parse(ctx, params)
    source = str(params.get("source") or "")
    sae = ctx.require_sae(source)
    feature = str(params.get("feature") or "")
    if not feature.isdigit() or int(feature) >= sae.cfg.d_sae:
        raise NotFound(f"feature {feature!r}: {source} has features 0-{sae.cfg.d_sae - 1}")
    bundle = ctx.require_runner().bundle

    def job():
        from app.ml.attribution import ablate

        return ablate(bundle.lm, sae, int(feature), req["ids"], req["target"], req["baseline"])

    result = await ctx.require_runner().run(job)
    return {"source": source, "feature": int(feature), "target_text": _token_text(ctx, req["target"]),
            "baseline_text": _token_text(ctx, req["baseline"]), **result}


async def attribution_page(ctx: Context, params: Mapping) -> dict:
    """The page with its results; a problem comes back with the form as it was sent and the message."""
    try:
        data = await attribution_data(ctx, params)
    except FeatureboardError as exc:
        exc.page = {**form_data(ctx, params), "message": exc.message}
        raise
    return {**form_data(ctx, params), **data}


def form_data(ctx: Context, params: Mapping) -> dict:
    """The empty or pre-filled form (no model work)."""
    return {"query": {"text": params.get("text") or "", "target": params.get("target") or "",
                        "baseline": params.get("baseline") or ""},
            "off_reason": ctx.model_off_reason(),
            "saes": sorted(ctx.bundle.saes) if ctx.bundle is not None else [], "features": None, "message": None}
