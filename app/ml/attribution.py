"""Attribution of a next-token target to SAE features, across every loaded SAE on the model.

Target metric ``m`` at the last position of the text: the logit of one token, or the difference of two logits.
At every SAE hook the activation is left exactly as it is (the forward pass is the model's own) while the SAE's
decomposition ``x = decode(f) + ε`` is attached to it for gradients: ``out = x + decode(f) − stop_grad(decode(f))``
with ``f = stop_grad(encode(x))`` a leaf. One backward pass then gives, at every hook at once, the true gradient
``g = ∂m/∂x`` and ``∂m/∂f = W_dec g`` (through the decoder, normalisation included). Per feature and position,
attribution = ``f_i · ∂m/∂f_i`` (activation × gradient); the SAE error term ``ε · g`` and the decoder bias
``decode(0) · g`` complete it, so that for each SAE

    Σ_features attribution + error + bias = x · g     (exactly; the first-order effect of the whole activation)

:func:`ablate` answers the click: clamp the feature to 0 at every position (error term kept) and read the target's
probability again.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from contextlib import ExitStack

import torch

from app.ml.hooks import hooked
from app.ml.lm import LanguageModel
from app.ml.sae import SAE
from app.ml.steering import Intervention, RowSpec, _plans


def _metric(logits: torch.Tensor, target: int, baseline: int | None) -> torch.Tensor:
    last = logits[0, -1].float()
    return last[target] - (last[baseline] if baseline is not None else 0.0)


def _probs(logits: torch.Tensor, target: int, baseline: int | None) -> dict:
    p = torch.softmax(logits[0, -1].float(), dim=-1)
    return {"target_prob": float(p[target]), "baseline_prob": float(p[baseline]) if baseline is not None else None}


def attribute(lm: LanguageModel, saes: Mapping[str, SAE], ids: Sequence[int], target: int,
              baseline: int | None = None, top_k: int = 30) -> dict:
    """Rank (SAE, feature) by attribution summed over positions. Transcoders are skipped (they write at another
    hook than they read; their decomposition is not of one activation). Returns ``{"metric", "target_prob",
    "baseline_prob", "features": [{"source", "feature", "attribution", "activation", "position"}], "saes":
    [{"source", "features_total", "error", "bias", "total"}], "skipped": [...]}``."""
    usable = {name: sae for name, sae in saes.items() if not sae.is_transcoder}
    state: dict[str, dict] = {}

    def make(name: str, sae: SAE):
        def fn(x: torch.Tensor) -> torch.Tensor:
            x_norm, undo = sae.normalize(x.detach())
            if undo is not None and isinstance(undo[0], torch.Tensor):
                undo = tuple(u.detach() if isinstance(u, torch.Tensor) else u for u in undo)
            f = sae.encode_normalized(x_norm).detach().requires_grad_(True)  # [1, pos, d_sae]
            recon = sae.decode(f, undo)
            out = x + recon - recon.detach()
            state[name] = {"x": x.detach(), "f": f, "recon": recon.detach(), "out": out, "undo": undo}
            return out

        return fn

    input_ids = torch.tensor([list(ids)], device=lm.device)
    with ExitStack() as stack, torch.enable_grad():
        for name, sae in usable.items():
            stack.enter_context(hooked(lm, sae.cfg.hook_name, make(name, sae)))
        logits = lm.model(input_ids=input_ids, use_cache=False).logits
        metric = _metric(logits, target, baseline)
        names = list(state)
        # autograd.grad, not backward(): nothing accumulates in the model's parameters' .grad
        grads = torch.autograd.grad(metric, [state[n]["out"] for n in names] + [state[n]["f"] for n in names])
        for k, n in enumerate(names):
            state[n]["g_out"], state[n]["g_f"] = grads[k], grads[len(names) + k]
    rows, per_sae = [], []
    with torch.no_grad():
        for name, sae in usable.items():
            s = state[name]
            g = s["g_out"][0].to(sae.dtype)  # [pos, d_in]
            attr = (s["f"].detach() * s["g_f"])[0]  # [pos, d_sae]
            zero = sae.decode(torch.zeros_like(s["f"]), s["undo"])[0]  # decode(0): the bias, per position
            error = float(((s["x"][0].to(sae.dtype) - s["recon"][0]) * g).sum())
            bias = float((zero * g).sum())
            total = float((s["x"][0].to(sae.dtype) * g).sum())
            per_feature = attr.sum(0)  # [d_sae]
            per_sae.append({"source": name, "features_total": float(per_feature.sum()), "error": error,
                            "bias": bias, "total": total})
            k = min(top_k, sae.cfg.d_sae)
            top = per_feature.abs().topk(k)
            for i in top.indices.tolist():
                column = attr[:, i]
                rows.append({"source": name, "feature": i, "attribution": float(per_feature[i]),
                             "activation": float(s["f"].detach()[0, :, i].max()),
                             "position": int(column.abs().argmax())})
    rows.sort(key=lambda r: -abs(r["attribution"]))
    return {"metric": float(metric.detach()), **_probs(logits.detach(), target, baseline),
            "features": rows[:top_k], "saes": per_sae,
            "skipped": sorted(set(saes) - set(usable))}


def ablate(lm: LanguageModel, sae: SAE, feature: int, ids: Sequence[int], target: int,
           baseline: int | None = None) -> dict:
    """Target (and baseline) probability and metric with ``feature`` clamped to 0 at every position, and without."""
    input_ids = torch.tensor([list(ids)], device=lm.device)
    plan = _plans([RowSpec("ablate", (Intervention(sae, feature, 0.0),), "clamp")], seed=0)[0][sae.cfg.hook_name_out]
    with torch.inference_mode():
        clean = lm.model(input_ids=input_ids, use_cache=False).logits
        with hooked(lm, sae.cfg.hook_name_out, plan):
            ablated = lm.model(input_ids=input_ids, use_cache=False).logits
    before, after = _probs(clean, target, baseline), _probs(ablated, target, baseline)
    return {"before": {**before, "metric": float(_metric(clean, target, baseline))},
            "after": {**after, "metric": float(_metric(ablated, target, baseline))},
            "change": after["target_prob"] - before["target_prob"]}
