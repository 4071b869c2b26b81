"""Steering report cards: the request, its checks, finding or running it on the model runner, and the stored
result (shareable as /steer/report/{id}). The maths is app/ml/report_card.py; the label similarity (embedding of
each generated text against the feature's canonical label, when it has one and the embedding model is installed)
is computed here, where the labels are.
"""

from __future__ import annotations

import hashlib
import json

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from app.errors import Invalid, NotFound
from app.ml.prompts import NEUTRAL_PROMPTS
from app.services import calibration
from app.services.context import Context
from app.services.steer_spec import DEFAULT_STRENGTH_MULTIPLE, MAX_STRENGTH
from app.store import labels as ql
from app.store import output as qo
from app.store import reports as q
from app.store import steering as qs

MAX_PROMPTS = 12
MAX_MULTIPLES = 8
DEFAULT_MULTIPLES = (0.25, 0.5, 1.0, 2.0, 4.0)


class ReportFeature(BaseModel):
    model_config = ConfigDict(extra="forbid")

    source: str = Field(min_length=1, max_length=200)
    feature: int = Field(ge=0)
    strength: float | None = Field(None, ge=-MAX_STRENGTH, le=MAX_STRENGTH, allow_inf_nan=False,
                                   description="Strength at ×1; empty: the calibrated strength, else "
                                               f"{DEFAULT_STRENGTH_MULTIPLE:g} × max activation")


class ReportRequest(BaseModel):
    """A report card request (POST /api/v1/steer/report; the form carries the same fields)."""

    model_config = ConfigDict(extra="forbid")

    features: list[ReportFeature] = Field(min_length=1, max_length=8)
    method: str = Field("additive", pattern="^(additive|clamp)$")
    prompts: list[str] = Field(default_factory=lambda: list(NEUTRAL_PROMPTS), min_length=1, max_length=MAX_PROMPTS,
                               description="Generation prompts (default: the built-in neutral prompts)")
    multiples: list[float] = Field(default_factory=lambda: list(DEFAULT_MULTIPLES), min_length=1,
                                   max_length=MAX_MULTIPLES, description="Strength multiples of the sweep")
    n_tokens: int = Field(24, ge=1, le=64)
    seed: int = Field(0, ge=0, le=2**31 - 1)


def parse(data: dict) -> ReportRequest:
    try:
        req = ReportRequest.model_validate(data)
    except ValidationError as exc:
        errors = [{"loc": ["body", *e["loc"]], "msg": e["msg"], "type": e["type"]} for e in exc.errors()]
        raise Invalid("; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in errors), errors=errors) from None
    bad = [i for i, p in enumerate(req.prompts) if not p.strip() or len(p) > 500]
    if bad:
        raise Invalid(f"prompt {bad[0] + 1} is empty or longer than 500 characters; give one prompt per line")
    if any(not (0 < m <= 100) for m in req.multiples):
        raise Invalid(f"strength multiples must be above 0 and at most 100, got {req.multiples}")
    return req


def resolve(ctx: Context, req: ReportRequest) -> list[dict]:
    """Each feature with its strength at ×1 and where it came from (given, calibrated, default); checks that its
    SAE is loaded and the index exists (Unavailable, NotFound, Invalid)."""
    out = []
    for f in req.features:
        sae = ctx.require_sae(f.source)
        if f.feature >= sae.cfg.d_sae:
            raise NotFound(f"unknown feature {f.feature}: {f.source} has features 0-{sae.cfg.d_sae - 1}")
        if f.strength is not None:
            out.append({"source": f.source, "feature": f.feature, "strength": f.strength, "strength_from": "given"})
            continue
        cal = calibration.stored(ctx, [(f.source, f.feature)]).get((f.source, f.feature))
        if cal is not None and cal["strength"] is not None:
            out.append({"source": f.source, "feature": f.feature, "strength": cal["strength"],
                        "strength_from": "calibrated"})
            continue
        with ctx.sessionmaker() as session:
            max_act = qs.feature_max_acts(session, [(f.source, f.feature)]).get((f.source, f.feature))
        if not max_act or max_act <= 0:
            raise Invalid(f"{f.source} feature {f.feature} has no max activation to scale from (dead, or no "
                          "statistics): give a strength")
        out.append({"source": f.source, "feature": f.feature, "strength": DEFAULT_STRENGTH_MULTIPLE * max_act,
                    "strength_from": f"{DEFAULT_STRENGTH_MULTIPLE:g} × max activation"})
    return out


def request_key(model_name: str, request: dict) -> str:
    canonical = json.dumps({"model": model_name, **request}, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()


def _labels(ctx: Context, features: list[dict]) -> list[str | None]:
    out = []
    with ctx.sessionmaker() as session:
        for f in features:
            source = qo.source_by_name(session, f["source"])
            out.append(ql.canonical_labels(session, source.id, [f["feature"]]).get(f["feature"]) if source else None)
    return out


def _label_similarity(result: dict, labels: list[str | None]) -> str | None:
    """Adds ``label_similarity`` (per feature: mean cosine of the texts to its label, None without a label) to
    every side of every point; returns why it could not, or None."""
    from app.ml import embed

    if not any(labels):
        return "no feature has a label"
    reason = embed.available()
    if reason:
        return reason
    embedder = embed.get_embedder()
    label_vecs = {t: embedder.embed([t])[0] for t in labels if t}
    sides = [result["default"]] + [p[s] for p in result["points"] for s in ("steered", "control")]
    for side in sides:
        vecs = embedder.embed([t if t.strip() else "(empty)" for t in side["texts"]])
        side["label_similarity"] = [float((vecs @ label_vecs[t]).mean()) if t else None for t in labels]
    return None


async def create(ctx: Context, data: dict, account_id: int | None) -> tuple[dict, bool]:
    """(report, created). An identical request on this model returns the stored report without model work."""
    req = parse(data)
    runner = ctx.require_runner()
    features = resolve(ctx, req)
    request = {**req.model_dump(), "features": features}
    key = request_key(runner.bundle.lm.name, request)
    with ctx.sessionmaker() as session:
        found = q.report_by_key(session, key)
    if found is not None:
        return found, False
    labels = _labels(ctx, features)
    bundle = runner.bundle

    def job() -> dict:
        from app.ml.report_card import ReportConfig, report_card

        cfg = ReportConfig(method=req.method, multiples=tuple(req.multiples), prompts=tuple(req.prompts),
                           n_tokens=req.n_tokens, seed=req.seed)
        result = report_card(bundle.lm, [(bundle.saes[f["source"]], f["feature"], f["strength"]) for f in features],
                             cfg)
        result["labels"] = labels
        result["label_similarity_unavailable"] = _label_similarity(result, labels)
        return result

    result = await runner.run(job)
    with ctx.sessionmaker() as session:
        return q.save_report(session, request_key=key, model_name=bundle.lm.name, request=request, result=result,
                             account_id=account_id), True


def require(ctx: Context, report_id: str) -> dict:
    with ctx.sessionmaker() as session:
        found = q.get_report(session, report_id)
    if found is None:
        raise NotFound(f"No report card {report_id!r}; report cards are shared as /steer/report/{{id}} links.")
    return found


def form_page(ctx: Context, prefill: dict | None = None, report: dict | None = None) -> dict:
    """The report card page: the form (pre-filled) and, when given, a stored report."""
    prefill = prefill or {}
    with ctx.sessionmaker() as session:
        recent = q.recent_reports(session)
    return {
        "model": None if ctx.bundle is None else {"name": ctx.bundle.lm.name, "device": ctx.bundle.device_name},
        "off_reason": ctx.model_off_reason(),
        "sources": sorted(ctx.bundle.saes) if ctx.bundle is not None else [],
        "form": {"features": prefill.get("features") or [], "method": prefill.get("method", "additive"),
                 "prompts": prefill.get("prompts") or list(NEUTRAL_PROMPTS),
                 "multiples": prefill.get("multiples") or list(DEFAULT_MULTIPLES),
                 "n_tokens": prefill.get("n_tokens", 24), "seed": prefill.get("seed", 0)},
        "neutral_prompts": list(NEUTRAL_PROMPTS),
        "report": report,
        "recent": recent,
    }
