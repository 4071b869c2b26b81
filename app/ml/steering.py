"""Steering: generate with SAE features turned up, down or clamped, side by side with the unsteered text.

All rows of one run (default, steered, random-direction control, sweep strengths) are generated in one
batch, so they share every setting and the same seed: each row draws from its own ``torch.Generator``
seeded with the run's seed, so a row's text does not depend on which other rows ran beside it.

Methods (strengths are in the feature's activation units, so both methods read on one scale):

- ``additive``: at the SAE's hook, at every position (prompt and generated), add
  ``D(strength · e_i)``, the decoder's image of the feature firing at ``strength`` (for an SAE without
  activation normalisation this is exactly ``strength × W_dec[i]``). Strength 0 adds exact zeros.
- ``clamp``: splice the SAE in with its error term and set feature i to ``strength``:
  ``x' = x + D((strength − f_i(x)) · e_i)``, which equals ``decode(f') + (x − decode(f))``.
  Strength 0 ablates the feature.

The random-direction control adds, at each steered hook, a seeded random direction whose norm equals
that hook's steering vector ``‖Σ D(strength · e_i)‖``.

Scoring (:func:`score_continuations`) runs the *unsteered* model over prompt + continuation once and
reports the perplexity of the continuation and how strongly each steered feature fires on it.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from contextlib import ExitStack
from dataclasses import dataclass, field
from typing import Literal

import torch

from app.ml.hooks import hooked
from app.ml.lm import LanguageModel, new_kv_cache
from app.ml.sae import SAE

Method = Literal["additive", "clamp"]
TOP_K_ALTERNATIVES = 5
CONTROL_SEED_OFFSET = 7919  # the control direction's generator differs from the sampling generators


@dataclass(frozen=True)
class Intervention:
    """One feature to steer: ``sae`` (steered where it writes, ``sae.cfg.hook_name_out``: a
    transcoder's output hook), feature index, strength."""

    sae: SAE
    feature: int
    strength: float


@dataclass(frozen=True)
class RowSpec:
    """One generated row. ``method`` None = unsteered; ``control`` adds the random direction instead."""

    name: str
    interventions: tuple[Intervention, ...] = ()
    method: Method | None = None
    control: bool = False


@dataclass(frozen=True)
class SamplingConfig:
    n_tokens: int
    temperature: float = 0.0  # 0 = greedy
    top_p: float = 1.0
    seed: int = 0


@dataclass
class GeneratedToken:
    id: int
    text: str
    prob: float  # the model's probability of this token (temperature 1)
    top: list[dict]  # top-5 alternatives: [{"id", "text", "prob"}]


@dataclass
class RowResult:
    name: str
    tokens: list[GeneratedToken] = field(default_factory=list)
    finish: str = "length"  # length | eos | stopped
    # per intervention: mean activation of its feature at the hook over generated positions, while steered
    hook_activation: list[float] = field(default_factory=list)

    @property
    def ids(self) -> list[int]:
        return [t.id for t in self.tokens]


# -- prompts --------------------------------------------------------------------------------------
def prompt_token_ids(lm: LanguageModel, prompt: str) -> list[int]:
    """Token ids of ``prompt`` with the BOS token in front (SAEs are trained on BOS-prefixed contexts)."""
    ids = list(lm.tokenizer(prompt, add_special_tokens=True)["input_ids"])
    bos = lm.bos_token_id
    if bos is not None and (not ids or ids[0] != bos):
        ids = [bos, *ids]
    return ids



def token_texts(lm: LanguageModel, ids: Sequence[int]) -> list[str]:
    return [lm.tokenizer.decode([i]) for i in ids]


# -- interventions as hook functions ---------------------------------------------------------------
def _decoded(sae: SAE, coef: torch.Tensor, features: list[int], x: torch.Tensor | None) -> torch.Tensor:
    """Model-space image of feature coefficients ``coef: [..., k]`` for ``features`` (length k) → ``[..., d_in]``.

    Linear part of ``sae.decode`` only (b_dec cancels in a difference); the normalisation scale is undone
    per token when the SAE normalises activations (then ``x: [..., d_in]`` is needed).
    """
    coef = coef.to(sae.dtype)
    if sae.finetuning_scaling_factor is not None:
        coef = coef * sae.finetuning_scaling_factor[features]
    out = coef @ sae.W_dec[features]
    mode = "none" if sae.is_transcoder else sae.cfg.normalize_activations  # transcoders never undo it
    if mode == "expected_average_only_in" and sae.cfg.norm_scaling_factor:
        out = out / float(sae.cfg.norm_scaling_factor)
    elif mode in ("constant_norm_rescale", "layer_norm"):
        _, undo = sae.normalize(x)
        out = out * undo[0]
    return out


def _needs_tokens(sae: SAE) -> bool:
    return not sae.is_transcoder and sae.cfg.normalize_activations in ("constant_norm_rescale", "layer_norm")


def steering_vector(sae: SAE, features: list[int], strengths: list[float]) -> torch.Tensor:
    """``Σ strength_i · W_dec[i]`` through the decoder's constant scalings → ``[d_in]`` (used for the control norm)."""
    coef = torch.tensor(strengths, dtype=sae.dtype, device=sae.device)
    probe = torch.ones(sae.d_out, dtype=sae.dtype, device=sae.device) if _needs_tokens(sae) else None
    return _decoded(sae, coef, features, probe)


def random_direction(d: int, norm: float, seed: int, device, dtype) -> torch.Tensor:
    """A seeded uniformly random direction in ``R^d`` with the given norm → ``[d]``."""
    gen = torch.Generator(device="cpu").manual_seed(seed + CONTROL_SEED_OFFSET)
    v = torch.randn(d, generator=gen, dtype=torch.float32)
    return (v / v.norm() * norm).to(device=device, dtype=dtype)


class _HookPlan:
    """Everything one hook does to a batch of rows: additive deltas, clamp targets and controls per row.

    Built once per run (:meth:`finish` precomputes what is constant), so a generated token costs a handful of
    small tensor ops at this hook: the additive rows' delta and an additive control are one constant
    ``[rows, 1, d_in]`` add; clamping reads only the k steered features (:meth:`SAE.feature_encoder`).
    """

    def __init__(self, sae: SAE, n_rows: int):
        self.sae = sae
        self.n_rows = n_rows
        self.features: list[int] = []
        self.additive = torch.zeros(n_rows, 0)  # [rows, k] strengths (0 where not additive)
        self.clamp = torch.zeros(n_rows, 0)  # [rows, k] targets (NaN where not clamped)
        self.random_add: dict[int, torch.Tensor] = {}  # row -> [d_in] additive control vector
        self.random_clamp: dict[int, torch.Tensor] = {}  # row -> [d_in] unit direction of a clamp control
        self.measure: list[tuple[int, int]] = []  # (row, column of features) to measure per step
        self.measured_steps: list[torch.Tensor] = []  # per generated step: [rows, k] steered activations
        self.generating = False  # measure only generated positions

    def column(self, feature: int, n_rows: int) -> int:
        if feature not in self.features:
            self.features.append(feature)
            self.additive = torch.cat([self.additive, torch.zeros(n_rows, 1)], dim=1)
            self.clamp = torch.cat([self.clamp, torch.full((n_rows, 1), float("nan"))], dim=1)
        return self.features.index(feature)

    def finish(self):
        sae, n = self.sae, self.n_rows
        dev, dt = sae.device, sae.dtype
        self.additive = self.additive.to(device=dev, dtype=dt)
        self.clamp = self.clamp.to(device=dev, dtype=dt)
        self.has_additive = bool((self.additive != 0).any())
        self.per_token = _needs_tokens(sae)
        self.encode_cols = sae.feature_encoder(self.features) if self.features else None
        clamped = ~torch.isnan(self.clamp)  # [rows, k]; clamp rows and clamp-control rows
        self.has_clamp = bool(clamped.any())
        self.clamp_target = torch.where(clamped, self.clamp, torch.zeros_like(self.clamp))[:, None, :]
        self.clamp_mask = clamped.to(dt)[:, None, :]  # [rows, 1, k]
        k = len(self.features)
        # The decoder's image of each steered feature: _decoded is linear, so decoding the identity gives it.
        self.decoder_cols = None if self.per_token or not k else _decoded(
            sae, torch.eye(k, device=dev, dtype=dt), self.features, None)  # [k, d_in]
        constant = torch.zeros(n, sae.d_out, device=dev, dtype=dt)
        if self.has_additive and not self.per_token:
            constant = constant + self.additive @ self.decoder_cols
        for row, vec in self.random_add.items():
            constant[row] += vec
        self.constant_add = constant[:, None, :] if (self.has_additive and not self.per_token) or self.random_add \
            else None
        self.control_unit = None
        if self.random_clamp:
            unit = torch.zeros(n, 1, sae.d_out, device=dev, dtype=dt)
            is_control = torch.zeros(n, 1, 1, dtype=torch.bool, device=dev)
            for row, vec in self.random_clamp.items():
                unit[row, 0] = vec
                is_control[row] = True
            self.control_unit, self.is_control = unit, is_control
        self.measuring = bool(self.measure) and not sae.is_transcoder  # a transcoder reads elsewhere

    def _decode_cols(self, coef: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        """``coef: [rows, pos, k]`` → ``[rows, pos, d_in]``."""
        if self.decoder_cols is not None:
            return coef @ self.decoder_cols
        return _decoded(self.sae, coef, self.features, x)

    def __call__(self, acts: torch.Tensor) -> torch.Tensor:
        """``acts: [rows, pos, d_in]`` → steered ``[rows, pos, d_in]``."""
        x = acts.to(self.sae.dtype)
        out = x
        if self.constant_add is not None:
            out = out + self.constant_add
        if self.has_additive and self.per_token:
            out = out + _decoded(self.sae, self.additive[:, None, :].expand(*x.shape[:2], -1), self.features, x)
        if self.has_clamp:
            coef = (self.clamp_target - self.encode_cols(x)) * self.clamp_mask  # [rows, pos, k]
            delta = self._decode_cols(coef, x)
            if self.control_unit is not None:  # same per-token norm as the clamp, random direction
                delta = torch.where(self.is_control, delta.norm(dim=-1, keepdim=True) * self.control_unit, delta)
            out = out + delta
        if self.generating and self.measuring:
            self.measured_steps.append(self.encode_cols(out[:, -1, :]))
        return out if out is not x else acts

    def measured(self, row: int, col: int) -> list[float]:
        """The steered activation of column ``col`` in ``row`` at each measured step."""
        if not self.measured_steps:
            return []
        return torch.stack(self.measured_steps)[:, row, col].float().tolist()


def _plans(rows: Sequence[RowSpec], seed: int) -> tuple[dict[str, _HookPlan], dict[int, list[tuple[str, int]]]]:
    """Build one plan per hook; also (hook, column) per (row, intervention) for measurement."""
    n = len(rows)
    plans: dict[str, _HookPlan] = {}
    where: dict[int, list[tuple[str, int]]] = {}
    for r, row in enumerate(rows):
        where[r] = []
        for iv in row.interventions:
            hook = iv.sae.cfg.hook_name_out
            if row.method == "clamp" and iv.sae.is_transcoder:
                raise ValueError(f"clamp steering needs the feature read where it is written; {iv.sae!r} is a "
                                 "transcoder (reads at hook_name, writes at hook_name_out): use additive")
            plan = plans.setdefault(hook, _HookPlan(iv.sae, n))
            col = plan.column(iv.feature, n)
            where[r].append((hook, col))
    for r, row in enumerate(rows):
        by_hook: dict[str, list[Intervention]] = {}
        for iv, (hook, col) in zip(row.interventions, where[r]):
            plan = plans[hook]
            plan.measure.append((r, col))
            if row.control:
                by_hook.setdefault(hook, []).append(iv)
            elif row.method == "additive":
                plan.additive[r, col] += iv.strength
            elif row.method == "clamp":
                plan.clamp[r, col] = iv.strength
        for hook, ivs in by_hook.items():
            plan = plans[hook]
            if row.method == "clamp":
                # the clamp's own per-token change, |target − f_i(x)|·D(e_i), turned to a random direction
                for iv, (_, col) in zip(row.interventions, where[r]):
                    if iv in ivs:
                        plan.clamp[r, col] = iv.strength
                plan.random_clamp[r] = random_direction(plan.sae.d_out, 1.0, seed, plan.sae.device, plan.sae.dtype)
            else:
                norm = float(steering_vector(plan.sae, [i.feature for i in ivs], [i.strength for i in ivs]).norm())
                plan.random_add[r] = random_direction(plan.sae.d_out, norm, seed, plan.sae.device, plan.sae.dtype)
    for plan in plans.values():
        plan.finish()
    return plans, where


# -- sampling -------------------------------------------------------------------------------------
def _choose(logits: torch.Tensor, cfg: SamplingConfig, gen: torch.Generator) -> int:
    """Next token from ``logits: [vocab]``: argmax at temperature 0, else temperature + nucleus (top-p) sampling."""
    if cfg.temperature <= 0:
        return int(logits.argmax())
    probs = torch.softmax(logits / cfg.temperature, dim=-1)
    if cfg.top_p < 1.0:
        sorted_p, order = probs.sort(descending=True)
        keep = (sorted_p.cumsum(0) - sorted_p) < cfg.top_p  # always keeps the most likely token
        sorted_p = torch.where(keep, sorted_p, torch.zeros_like(sorted_p))
        probs = torch.zeros_like(probs).scatter(0, order, sorted_p)
    return int(torch.multinomial(probs.cpu(), 1, generator=gen))


StepCallback = Callable[[int, dict[str, GeneratedToken]], None]


def generate_rows(
    lm: LanguageModel,
    prompt_ids: Sequence[int],
    rows: Sequence[RowSpec],
    cfg: SamplingConfig,
    on_step: StepCallback | None = None,
    should_stop: Callable[[], bool] = lambda: False,
) -> dict[str, RowResult]:
    """Generate ``cfg.n_tokens`` tokens for every row in one batch (KV cache, same seed per row).

    ``on_step(step, {row name: token})`` is called after each step with the rows that produced a token
    (a row stops after EOS). ``should_stop()`` is polled before each step; True ends every row with
    finish="stopped".
    """
    model = lm.model
    eos = lm.tokenizer.eos_token_id
    plans, where = _plans(rows, cfg.seed)
    gens = [torch.Generator(device="cpu").manual_seed(cfg.seed) for _ in rows]
    results = {row.name: RowResult(row.name) for row in rows}
    texts: dict[int, str] = {}

    def text_of(token_id: int) -> str:
        if token_id not in texts:
            texts[token_id] = lm.tokenizer.decode([token_id])
        return texts[token_id]
    done = [False] * len(rows)
    x = torch.tensor([list(prompt_ids)] * len(rows), dtype=torch.long, device=lm.device)
    cache = new_kv_cache(lm)
    with ExitStack() as stack, torch.inference_mode():
        for hook, plan in plans.items():
            stack.enter_context(hooked(lm, hook, plan))
        for step in range(cfg.n_tokens):
            if should_stop():
                for r, row in enumerate(rows):
                    if not done[r]:
                        results[row.name].finish = "stopped"
                break
            for plan in plans.values():
                plan.generating = step > 0
            out = model(input_ids=x, use_cache=True, **cache)  # the cache object grows in place
            logits = out.logits[:, -1, :].float()
            probs = torch.softmax(logits, dim=-1)
            top_p, top_i = probs.topk(TOP_K_ALTERNATIVES, dim=-1)
            top_p, top_i = top_p.cpu(), top_i.cpu()
            emitted: dict[str, GeneratedToken] = {}
            next_ids = []
            for r, row in enumerate(rows):
                if done[r]:
                    next_ids.append(eos if eos is not None else 0)
                    continue
                tok = _choose(logits[r], cfg, gens[r])
                next_ids.append(tok)
                alts = [{"id": int(i), "text": text_of(int(i)), "prob": float(p)} for i, p in zip(top_i[r], top_p[r])]
                token = GeneratedToken(tok, text_of(tok), float(probs[r, tok]), alts)
                results[row.name].tokens.append(token)
                emitted[row.name] = token
                if eos is not None and tok == eos:
                    done[r] = True
                    results[row.name].finish = "eos"
            if on_step is not None and emitted:
                on_step(step, emitted)
            if all(done):
                break
            x = torch.tensor(next_ids, dtype=torch.long, device=lm.device)[:, None]
    # Hook activation is read when a generated token is fed back (steps 1..), so the last token is not
    # measured: one more forward pass only for that was not worth its cost.
    for r, row in enumerate(rows):
        res = results[row.name]
        for hook, col in where[r]:
            values = plans[hook].measured(r, col)
            n = min(len(values), len(res.tokens))
            res.hook_activation.append(sum(values[:n]) / n if n else 0.0)
    return results


# -- scoring --------------------------------------------------------------------------------------
@dataclass
class ContinuationScore:
    perplexity: float | None  # exp(mean NLL of the continuation under the unsteered model); None if empty
    activation_mean: list[float]  # per feature: mean activation over continuation tokens
    activation_max: list[float]
    firing_fraction: list[float]  # per feature: share of continuation tokens where it is > 0


def score_continuations(
    lm: LanguageModel,
    prompt_ids: Sequence[int],
    continuations: Sequence[Sequence[int]],
    features: Sequence[tuple[SAE, int]],
) -> list[ContinuationScore]:
    """Run the unsteered model over prompt + each continuation (one right-padded batch) and score it."""
    if not continuations:
        return []
    p = len(prompt_ids)
    lengths = [len(c) for c in continuations]
    width = p + max(lengths)
    pad = lm.tokenizer.pad_token_id if lm.tokenizer.pad_token_id is not None else 0
    ids = torch.full((len(continuations), width), pad, dtype=torch.long)
    mask = torch.zeros_like(ids)
    for b, cont in enumerate(continuations):
        seq = list(prompt_ids) + list(cont)
        ids[b, : len(seq)] = torch.tensor(seq)
        mask[b, : len(seq)] = 1
    captured: dict[str, torch.Tensor] = {}

    def capture(name):
        def fn(acts):
            captured[name] = acts
            return acts

        return fn

    hooks = {sae.cfg.hook_name for sae, _ in features}
    with ExitStack() as stack, torch.inference_mode():
        for hook in hooks:
            stack.enter_context(hooked(lm, hook, capture(hook)))
        logits = lm.model(input_ids=ids.to(lm.device), attention_mask=mask.to(lm.device), use_cache=False).logits.float()
        logp = torch.log_softmax(logits[:, :-1], dim=-1)
        nll = -logp.gather(-1, ids[:, 1:].to(lm.device)[..., None])[..., 0]  # [b, width-1]
        per_feature = []
        for sae, index in features:
            per_feature.append(sae.encode(captured[sae.cfg.hook_name])[..., index].float())  # [b, width]
    scores = []
    for b, n in enumerate(lengths):
        if n == 0:
            scores.append(ContinuationScore(None, [0.0] * len(features), [0.0] * len(features), [0.0] * len(features)))
            continue
        ppl = math.exp(float(nll[b, p - 1 : p - 1 + n].mean()))
        means, maxes, fire = [], [], []
        for acts in per_feature:
            a = acts[b, p : p + n]
            means.append(float(a.mean()))
            maxes.append(float(a.max()))
            fire.append(float((a > 0).float().mean()))
        scores.append(ContinuationScore(ppl, means, maxes, fire))
    return scores


def feature_activations(lm: LanguageModel, ids: Sequence[int], sae: SAE, steer: RowSpec | None = None) -> torch.Tensor:
    """Activation of every feature of ``sae`` at its hook on ``ids``, optionally under ``steer`` → ``[pos, d_sae]``.

    The steering is applied at the hook first, then the SAE reads the (steered) activation, so a clamp to 0
    reads back as the feature removed.
    """
    rows = [steer] if steer is not None else [RowSpec("plain")]
    plans, _ = _plans(rows, 0)
    captured: dict[str, torch.Tensor] = {}
    plan = plans.get(sae.cfg.hook_name)

    def fn(acts):
        out = plan(acts) if plan is not None else acts
        captured["acts"] = out
        return out

    with torch.inference_mode(), hooked(lm, sae.cfg.hook_name, fn):
        lm.model(input_ids=torch.tensor([list(ids)], device=lm.device), use_cache=False)
    with torch.inference_mode():
        return sae.encode(captured["acts"])[0]


# -- one run: default, steered, control and sweep rows, scored ------------------------------------
def run_steering(
    lm: LanguageModel,
    prompt_ids: Sequence[int],
    interventions: Sequence[Intervention],
    method: Method,
    cfg: SamplingConfig,
    control: bool = False,
    sweep_multipliers: Sequence[float] = (),
    on_step: StepCallback | None = None,
    should_stop: Callable[[], bool] = lambda: False,
) -> dict:
    """Generate every row of a run in one batch and score it with the unsteered model; plain Python out.

    Rows: "default" (nothing steered), "steered", "control" (random direction, when asked) and "sweep:<m>" for
    each multiplier m (strengths × m). Returns ``{"rows": {name: {...}}, "sweep": [...], "stopped": bool}``.
    """
    ivs = tuple(interventions)
    rows = [RowSpec("default"), RowSpec("steered", ivs, method)]
    if control:
        rows.append(RowSpec("control", ivs, method, control=True))
    for m in sweep_multipliers:
        scaled = tuple(Intervention(i.sae, i.feature, i.strength * m) for i in ivs)
        rows.append(RowSpec(f"sweep:{m:g}", scaled, method))
    results = generate_rows(lm, prompt_ids, rows, cfg, on_step=on_step, should_stop=should_stop)
    stopped = any(r.finish == "stopped" for r in results.values())
    scores = [] if stopped else score_continuations(
        lm, prompt_ids, [results[r.name].ids for r in rows], [(i.sae, i.feature) for i in ivs])
    out_rows = {}
    for k, row in enumerate(rows):
        res = results[row.name]
        score = scores[k] if scores else None
        out_rows[row.name] = {
            "tokens": [{"id": t.id, "text": t.text, "prob": t.prob, "top": t.top} for t in res.tokens],
            "text": lm.tokenizer.decode(res.ids),
            "finish": res.finish,
            "hook_activation": res.hook_activation,
            "perplexity": score.perplexity if score else None,
            "activation_mean": score.activation_mean if score else [],
            "activation_max": score.activation_max if score else [],
            "firing_fraction": score.firing_fraction if score else [],
        }
    return {"rows": out_rows, "stopped": stopped}
