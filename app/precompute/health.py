"""SAE health on a bounded sample of contexts: reconstruction and downstream CE loss.

Measured at valid positions only (BOS/EOS/pad excluded), both for the reconstruction figures and
for splicing: the SAE (or zero) replaces the activation at valid positions and the BOS position
keeps its original activation, because most SAEs are not trained on BOS and its huge norm would
swamp the comparison. CE loss is the mean next-token loss over targets that are valid tokens.
``ce_recovered = (ce_zero - ce_sae) / (ce_zero - ce_clean)``.

Whole-corpus figures (L0, dead, dense) come from the pass-1 counts, not from this sample.
"""

from __future__ import annotations

import contextlib
import functools

import torch

DENSE_THRESHOLD = 0.1


@torch.inference_mode()
def _ce_loss(lm, input_ids: torch.Tensor, valid: torch.Tensor) -> float:
    logits = lm.model(input_ids=input_ids, use_cache=False).logits.float()
    losses = torch.nn.functional.cross_entropy(
        logits[:, :-1].reshape(-1, logits.shape[-1]), input_ids[:, 1:].reshape(-1), reduction="none")
    mask = valid[:, 1:].reshape(-1).float()
    return float((losses * mask).sum() / mask.sum().clamp(min=1))


@torch.inference_mode()
def sample_health(lm, sae, input_ids: torch.Tensor, valid: torch.Tensor, ce_clean: float | None = None) -> dict:
    """``input_ids, valid: [n_ctx, T]`` (a bounded sample) → MSE, explained variance and CE losses.
    ``ce_clean`` may be passed in when several SAEs share the sample (it does not depend on the SAE).

    Measured where the SAE writes (``hook_name_out``; for a transcoder the output hook, which it
    reconstructs from its input hook). The SAE sees whole contexts (temporal SAEs read context)."""
    from app.ml import capture_activations, hooked

    input_ids, valid = input_ids.to(lm.device), valid.to(lm.device)
    hook_in, hook_out = sae.hook_name, sae.cfg.hook_name_out
    names = list(dict.fromkeys([hook_in, hook_out]))
    if ce_clean is None:  # the clean forward is needed anyway: read the activations on the way through it
        acts = {}
        with contextlib.ExitStack() as stack:
            for name in names:
                stack.enter_context(hooked(lm, name, functools.partial(_keep, acts, name)))
            ce_clean = _ce_loss(lm, input_ids, valid)
    else:
        acts = capture_activations(lm, input_ids, hook_names=names)
    x_in = acts[hook_in]
    reconstruction = _reconstruct(sae, x_in)  # once: the spliced forward below reads the same input
    recon = reconstruction[valid].float()
    x_valid = acts[hook_out][valid].float()
    residual = ((x_valid - recon) ** 2).sum()
    total = ((x_valid - x_valid.mean(dim=0)) ** 2).sum()
    mse = float(residual / max(x_valid.numel(), 1))
    explained = float(1 - residual / total) if total > 0 else float("nan")
    mask = valid.unsqueeze(-1)
    seen: dict[str, torch.Tensor] = {}

    def read_input(acts: torch.Tensor) -> torch.Tensor:
        seen["x"] = acts
        return acts

    def spliced(acts: torch.Tensor) -> torch.Tensor:
        x = seen["x"]
        replacement = reconstruction if torch.equal(x, x_in) else _reconstruct(sae, x)
        return torch.where(mask, replacement.to(acts.dtype), acts)

    def zeroed(acts: torch.Tensor) -> torch.Tensor:
        return torch.where(mask, torch.zeros_like(acts), acts)

    with hooked(lm, hook_in, read_input), hooked(lm, hook_out, spliced):
        ce_sae = _ce_loss(lm, input_ids, valid)
    with hooked(lm, hook_out, zeroed):
        ce_zero = _ce_loss(lm, input_ids, valid)
    gap = ce_zero - ce_clean
    return {
        "mse": mse, "explained_variance": explained, "ce_loss_clean": ce_clean, "ce_loss_sae": ce_sae,
        "ce_loss_zero_ablation": ce_zero, "ce_recovered": (ce_zero - ce_sae) / gap if gap != 0 else float("nan"),
        "health_tokens": int(valid.sum()), "health_contexts": int(input_ids.shape[0]),
    }


def _keep(store: dict, name: str, acts: torch.Tensor) -> torch.Tensor:
    store[name] = acts.clone()  # a later layer may reuse the buffer
    return acts


def _reconstruct(sae, x: torch.Tensor) -> torch.Tensor:
    """``sae(x)`` for ``x: [n_ctx, T, d_in]`` a few whole contexts at a time (a 65k-wide SAE on 4k tokens would
    otherwise hold 1 GB of dense activations at once; whole contexts, because temporal SAEs read context)."""
    from app.precompute.encode import chunk_rows

    x = x.to(sae.dtype)
    per_ctx = max(1, x.shape[1] if x.dim() == 3 else 1)
    step = max(1, chunk_rows(sae.d_sae, x.device) // per_ctx)
    return torch.cat([sae(x[i:i + step]) for i in range(0, x.shape[0], step)])


def corpus_health(n_active: torch.Tensor, n_valid_tokens: int) -> dict:
    """Whole-corpus figures from the firing counts ``n_active int64 [d_sae]``."""
    density = n_active.double() / max(n_valid_tokens, 1)
    return {
        "l0": float(n_active.sum()) / max(n_valid_tokens, 1),
        "dead": int((n_active == 0).sum()),
        "dense": int((density > DENSE_THRESHOLD).sum()),
        "alive": int((n_active > 0).sum()),
        "dense_threshold": DENSE_THRESHOLD,
    }
