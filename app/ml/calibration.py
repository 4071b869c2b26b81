"""Calibrated steering strength: the strongest additive strength whose text stays fluent.

A quick sweep: on each neutral prompt, generate greedily with nothing steered and at each strength of a grid
(multiples of the feature's max activation on the corpus), all rows in one batch; score every continuation with
the *unsteered* model (:func:`app.ml.steering.score_continuations`). Fluency at a strength is the geometric mean
over prompts of the continuation's perplexity. The calibrated strength is the largest grid strength such that it
and every weaker grid strength stay within ``budget ×`` the unsteered text's perplexity (a strength past the
first break is never picked, even where the curve dips again into repetition).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from app.ml.lm import LanguageModel
from app.ml.prompts import NEUTRAL_PROMPTS
from app.ml.sae import SAE
from app.ml.steering import Intervention, RowSpec, SamplingConfig, generate_rows, prompt_token_ids, score_continuations

MULTIPLES = (0.125, 0.25, 0.5, 0.75, 1.0, 1.5, 2.0, 3.0, 4.0, 6.0, 8.0)


@dataclass(frozen=True)
class CalibrationConfig:
    budget: float = 2.0  # allowed ratio of perplexities, steered text / unsteered text
    n_tokens: int = 32
    multiples: tuple[float, ...] = MULTIPLES
    prompts: tuple[str, ...] = NEUTRAL_PROMPTS
    method: str = "additive"

    def __post_init__(self):
        if not self.budget > 1.0:
            raise ValueError(f"budget must be a perplexity ratio above 1, got {self.budget}")
        if not self.multiples or any(m <= 0 for m in self.multiples):
            raise ValueError(f"multiples must be positive, got {self.multiples}")


def _gmean(values: Sequence[float]) -> float:
    return math.exp(sum(math.log(v) for v in values) / len(values))


def calibrate_strength(lm: LanguageModel, sae: SAE, feature: int, max_act: float,
                       cfg: CalibrationConfig = CalibrationConfig()) -> dict:
    """Sweep ``cfg.multiples × max_act`` on ``cfg.prompts``; plain Python out (stored as it is).

    Returns ``{"strength", "multiple", "budget", "perplexity_default", "perplexity", "activation_default",
    "activation", "points": [{"multiple", "strength", "perplexity", "activation_mean", "hook_activation",
    "within"}], ...}``; ``strength`` is None when even the weakest grid strength breaks the budget.
    Activations are the feature's mean activation on the generated text read by the unsteered model
    (``activation_mean``) and at the hook while steered (``hook_activation``), averaged over prompts.
    """
    if not (max_act > 0 and math.isfinite(max_act)):
        raise ValueError(f"feature {feature} has max activation {max_act}: nothing to calibrate against")
    multiples = sorted(cfg.multiples)
    strengths = {m: _round(m * max_act) for m in multiples}  # the values the form will carry, swept as they are
    rows = [RowSpec("default")] + [RowSpec(f"x{m:g}", (Intervention(sae, feature, strengths[m]),), cfg.method)
                                   for m in multiples]
    ppl: dict[str, list[float]] = {r.name: [] for r in rows}
    act: dict[str, list[float]] = {r.name: [] for r in rows}
    hook: dict[str, list[float]] = {r.name: [] for r in rows}
    examples: dict[str, str] = {}
    sampling = SamplingConfig(n_tokens=cfg.n_tokens)
    for p, prompt in enumerate(cfg.prompts):
        ids = prompt_token_ids(lm, prompt)
        out = generate_rows(lm, ids, rows, sampling)
        scores = score_continuations(lm, ids, [out[r.name].ids for r in rows], [(sae, feature)])
        for row, score in zip(rows, scores):
            res = out[row.name]
            ppl[row.name].append(score.perplexity if score.perplexity is not None else float("inf"))
            act[row.name].append(score.activation_mean[0])
            hook[row.name].append(res.hook_activation[0] if res.hook_activation else 0.0)
            if p == 0:
                examples[row.name] = lm.tokenizer.decode(res.ids)
    base = _gmean(ppl["default"])
    limit = cfg.budget * base
    values = [_gmean(ppl[f"x{m:g}"]) for m in multiples]
    last = strongest_within(values, limit)
    chosen = (multiples[last], f"x{multiples[last]:g}", values[last]) if last is not None else None
    points = []
    for m, value in zip(multiples, values):
        name = f"x{m:g}"
        within = value <= limit
        points.append({"multiple": m, "strength": strengths[m], "perplexity": value,
                       "activation_mean": sum(act[name]) / len(act[name]),
                       "hook_activation": sum(hook[name]) / len(hook[name]), "within": within,
                       "example": examples[name]})
    mean = lambda xs: sum(xs) / len(xs)  # noqa: E731
    return {
        "feature": feature, "max_act": max_act, "method": cfg.method, "budget": cfg.budget,
        "n_tokens": cfg.n_tokens, "prompts": list(cfg.prompts),
        "strength": strengths[chosen[0]] if chosen else None,
        "multiple": chosen[0] if chosen else None,
        "perplexity_default": base, "perplexity_limit": limit,
        "perplexity": chosen[2] if chosen else None,
        "activation_default": mean(act["default"]),
        "activation": mean(act[chosen[1]]) if chosen else None,
        "example_default": examples["default"],
        "points": points,
    }


def strongest_within(perplexities: Sequence[float], limit: float) -> int | None:
    """Index of the last of ``perplexities`` (ordered by strength) before the first one above ``limit``."""
    last = None
    for i, value in enumerate(perplexities):
        if not value <= limit:
            break
        last = i
    return last


def _round(value: float) -> float:
    """Two significant digits (what a person types into the strength field)."""
    if value == 0:
        return 0.0
    return round(value, 1 - int(math.floor(math.log10(abs(value)))))
