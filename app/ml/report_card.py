"""The steering report card: for one feature or a set, over a prompt set and a strength sweep, how strongly the
concept shows, how fluent the text stays, how much the model changes elsewhere, and the same against a random
direction of the same size.

At each strength multiple m (strength_i = m × base_i for every feature), for the steered rows and for the
random-direction control of the same method (:mod:`app.ml.steering`: additive control = a fixed random vector with
the steering vector's norm; clamp control = the clamp's own per-token change turned into a fixed random
direction):

- concept: each feature's mean activation on the generated text, read by the unsteered model, averaged over
  prompts (``activation``, one value per feature); the texts themselves are returned, so a caller can also embed
  them (label similarity is computed in the service, which owns the labels);
- fluency: geometric mean over prompts of the generated text's perplexity under the unsteered model;
- off-target change: mean ``KL(p_clean ‖ p_steered)`` of the next-token distributions over every position of the
  neutral prompts, teacher-forced (no generation), steering applied as in generation.

Generation is greedy (or seeded sampling), every row of a prompt in one batch.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from contextlib import ExitStack
from dataclasses import dataclass

import torch

from app.ml.hooks import hooked
from app.ml.lm import LanguageModel
from app.ml.prompts import NEUTRAL_PROMPTS
from app.ml.sae import SAE
from app.ml.steering import (
    Intervention,
    Method,
    RowSpec,
    SamplingConfig,
    _plans,
    generate_rows,
    prompt_token_ids,
    score_continuations,
)


@dataclass(frozen=True)
class ReportConfig:
    method: Method = "additive"
    multiples: tuple[float, ...] = (0.25, 0.5, 1.0, 2.0, 4.0)
    prompts: tuple[str, ...] = NEUTRAL_PROMPTS  # generation prompts (editable)
    kl_prompts: tuple[str, ...] = NEUTRAL_PROMPTS  # off-target KL is always measured on the built-in ones
    n_tokens: int = 24
    seed: int = 0


def _rows(ivs: Sequence[Intervention], cfg: ReportConfig) -> list[RowSpec]:
    rows = [RowSpec("default")]
    for m in cfg.multiples:
        scaled = tuple(Intervention(i.sae, i.feature, i.strength * m) for i in ivs)
        rows.append(RowSpec(f"steered:{m:g}", scaled, cfg.method))
        rows.append(RowSpec(f"control:{m:g}", scaled, cfg.method, control=True))
    return rows


def off_target_kl(lm: LanguageModel, rows: Sequence[RowSpec], prompts: Sequence[str], seed: int) -> dict[str, float]:
    """{row name: mean KL(p_clean ‖ p_row)} over every position of ``prompts`` (teacher-forced)."""
    totals = dict.fromkeys((r.name for r in rows), 0.0)
    count = 0
    for prompt in prompts:
        ids = torch.tensor([prompt_token_ids(lm, prompt)] * len(rows), device=lm.device)
        plans, _ = _plans(rows, seed)
        with ExitStack() as stack, torch.inference_mode():
            for hook, plan in plans.items():
                stack.enter_context(hooked(lm, hook, plan))
            logp = torch.log_softmax(lm.model(input_ids=ids, use_cache=False).logits.float(), dim=-1)
        with torch.inference_mode():
            clean = torch.log_softmax(lm.model(input_ids=ids[:1], use_cache=False).logits.float(), dim=-1)
            kl = (clean.exp() * (clean - logp)).sum(-1)  # [rows, pos]
        for r, row in enumerate(rows):
            totals[row.name] += float(kl[r].sum())
        count += ids.shape[1]
    return {name: total / count for name, total in totals.items()}


def report_card(lm: LanguageModel, features: Sequence[tuple[SAE, int, float]], cfg: ReportConfig) -> dict:
    """``features``: (sae, index, base strength). Plain Python out: ``{"points": [{"multiple", "strengths",
    "steered": {...}, "control": {...}}], "default": {...}}`` where each side holds ``perplexity``, ``activation``
    (per feature), ``kl`` and ``texts`` (one per prompt)."""
    if not features:
        raise ValueError("a report card needs at least one feature")
    if not cfg.prompts or not cfg.multiples:
        raise ValueError("a report card needs at least one prompt and one strength multiple")
    ivs = tuple(Intervention(sae, index, strength) for sae, index, strength in features)
    rows = _rows(ivs, cfg)
    sampling = SamplingConfig(n_tokens=cfg.n_tokens, seed=cfg.seed)
    logs: dict[str, list[float]] = {r.name: [] for r in rows}
    acts: dict[str, list[list[float]]] = {r.name: [] for r in rows}
    texts: dict[str, list[str]] = {r.name: [] for r in rows}
    for prompt in cfg.prompts:
        ids = prompt_token_ids(lm, prompt)
        out = generate_rows(lm, ids, rows, sampling)
        scores = score_continuations(lm, ids, [out[r.name].ids for r in rows], [(i.sae, i.feature) for i in ivs])
        for row, score in zip(rows, scores):
            logs[row.name].append(math.log(score.perplexity) if score.perplexity else float("nan"))
            acts[row.name].append(score.activation_mean)
            texts[row.name].append(lm.tokenizer.decode(out[row.name].ids))
    kl = off_target_kl(lm, rows, cfg.kl_prompts, cfg.seed)

    def side(name: str) -> dict:
        finite = [v for v in logs[name] if math.isfinite(v)]
        return {"perplexity": math.exp(sum(finite) / len(finite)) if finite else None,
                "activation": [sum(a[k] for a in acts[name]) / len(acts[name]) for k in range(len(ivs))],
                "kl": kl[name], "texts": texts[name]}

    points = [{"multiple": m, "strengths": [i.strength * m for i in ivs],
               "steered": side(f"steered:{m:g}"), "control": side(f"control:{m:g}")} for m in cfg.multiples]
    return {"method": cfg.method, "prompts": list(cfg.prompts), "kl_prompts": list(cfg.kl_prompts),
            "n_tokens": cfg.n_tokens, "seed": cfg.seed, "default": side("default"), "points": points}
