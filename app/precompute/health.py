"""SAE health on a bounded sample of contexts: reconstruction and downstream CE loss.

Measured at valid positions only (BOS/EOS/pad excluded), both for the reconstruction figures and
for splicing: the SAE (or zero) replaces the activation at valid positions and the BOS position
keeps its original activation, because most SAEs are not trained on BOS and its huge norm would
swamp the comparison. CE loss is the mean next-token loss over targets that are valid tokens.
``ce_recovered = (ce_zero - ce_sae) / (ce_zero - ce_clean)``.

Whole-corpus figures (L0, dead, dense) come from the pass-1 counts, not from this sample.
"""

from __future__ import annotations

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
    ``ce_clean`` may be passed in when several SAEs share the sample (it does not depend on the SAE)."""
    from app.ml import capture_activations, hooked

    input_ids, valid = input_ids.to(lm.device), valid.to(lm.device)
    x = capture_activations(lm, input_ids, hook_names=[sae.hook_name])[sae.hook_name]
    reconstruction = _reconstruct(sae, x)  # once: the spliced forward below sees the same x
    x_valid = x[valid].to(sae.dtype).float()
    recon = reconstruction[valid].float()
    residual = ((x_valid - recon) ** 2).sum()
    total = ((x_valid - x_valid.mean(dim=0)) ** 2).sum()
    mse = float(residual / max(x_valid.numel(), 1))
    explained = float(1 - residual / total) if total > 0 else float("nan")
    mask = valid.unsqueeze(-1)

    def spliced(acts: torch.Tensor) -> torch.Tensor:
        replacement = reconstruction if torch.equal(acts, x) else _reconstruct(sae, acts)
        return torch.where(mask, replacement.to(acts.dtype), acts)

    def zeroed(acts: torch.Tensor) -> torch.Tensor:
        return torch.where(mask, torch.zeros_like(acts), acts)

    if ce_clean is None:
        ce_clean = _ce_loss(lm, input_ids, valid)
    with hooked(lm, sae.hook_name, spliced):
        ce_sae = _ce_loss(lm, input_ids, valid)
    with hooked(lm, sae.hook_name, zeroed):
        ce_zero = _ce_loss(lm, input_ids, valid)
    gap = ce_zero - ce_clean
    return {
        "mse": mse, "explained_variance": explained, "ce_loss_clean": ce_clean, "ce_loss_sae": ce_sae,
        "ce_loss_zero_ablation": ce_zero, "ce_recovered": (ce_zero - ce_sae) / gap if gap != 0 else float("nan"),
        "health_tokens": int(valid.sum()), "health_contexts": int(input_ids.shape[0]),
    }


def _reconstruct(sae, x: torch.Tensor) -> torch.Tensor:
    """``sae(x)`` for ``x: [..., d_in]`` in cache-sized row chunks (a 65k-wide SAE on 4k tokens
    would otherwise hold 1 GB of dense activations at once)."""
    from app.precompute.encode import chunk_rows

    flat = x.reshape(-1, x.shape[-1]).to(sae.dtype)
    step = chunk_rows(sae.d_sae, flat.device)
    return torch.cat([sae(flat[i:i + step]) for i in range(0, flat.shape[0], step)]).reshape(x.shape)


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
