"""Per-feature tables computed from the weights alone, blockwise over features.

Logit effects: ``W_dec[i] @ W_U'`` where ``W_U'`` is the unembedding with the final norm's
elementwise weight (LayerNorm / RMSNorm ``weight``) folded in, ``diag(w) @ W_U``. The norm's
centering and per-token scale are ignored (they depend on the whole residual, not on the
direction), and so is its bias (the same for every feature): the usual "direct logit
attribution" convention. Values are therefore comparable across features, not absolute logits.

Neighbours: the features whose decoder rows have the highest cosine with ``W_dec[i]``, computed
``block × d_sae`` at a time, so no ``d_sae × d_sae`` matrix is ever held.
"""

from __future__ import annotations

import torch

_BLOCK_ELEMENTS = 1 << 24  # ~64 MB of float32 per block


def folded_unembedding(lm) -> torch.Tensor:
    """``W_U' : float32 [d_model, d_vocab]`` (final norm weight folded in, see module docstring)."""
    from app.ml import unembed

    norm, w_u = unembed(lm)
    w_u = w_u.float()
    weight = getattr(norm, "weight", None) if norm is not None else None
    if isinstance(weight, torch.Tensor) and weight.shape == (w_u.shape[0],):
        w_u = weight.detach().float().unsqueeze(1) * w_u
    return w_u


def _block_rows(d_sae: int, width: int) -> int:
    return max(1, min(d_sae, _BLOCK_ELEMENTS // max(width, 1)))


def logit_tables(w_dec: torch.Tensor, w_u: torch.Tensor, n_top: int = 10, hist_bins: int = 50) -> dict:
    """``w_dec [d_sae, d_model]``, ``w_u [d_model, d_vocab]`` → dict of tensors:
    ``top_ids/top_values [d_sae, n]`` (largest first), ``bottom_ids/bottom_values`` (smallest
    first), ``hist_counts int64 [d_sae, bins]`` over each row's logit effects with
    ``hist_lo/hist_hi [d_sae]`` (its min and max)."""
    d_sae, d_vocab = w_dec.shape[0], w_u.shape[1]
    n = min(n_top, d_vocab)
    w_dec, w_u = w_dec.float(), w_u.to(w_dec.device).float()
    out = {name: [] for name in ("top_ids", "top_values", "bottom_ids", "bottom_values",
                                 "hist_counts", "hist_lo", "hist_hi")}
    step = _block_rows(d_sae, d_vocab)
    for start in range(0, d_sae, step):
        effects = w_dec[start:start + step] @ w_u  # [block, d_vocab]
        top = effects.topk(n, dim=1)
        bottom = effects.topk(n, dim=1, largest=False)
        lo, hi = effects.min(dim=1).values, effects.max(dim=1).values
        width = (hi - lo).clamp(min=1e-12)
        bins = ((effects - lo[:, None]) / width[:, None] * hist_bins).floor().long().clamp_(0, hist_bins - 1)
        rows = torch.arange(effects.shape[0], device=effects.device).unsqueeze(1)
        counts = torch.bincount((rows * hist_bins + bins).view(-1), minlength=effects.shape[0] * hist_bins)
        for name, value in (("top_ids", top.indices), ("top_values", top.values), ("bottom_ids", bottom.indices),
                            ("bottom_values", bottom.values), ("hist_counts", counts.view(-1, hist_bins)),
                            ("hist_lo", lo), ("hist_hi", hi)):
            out[name].append(value.cpu())
    return {name: torch.cat(parts) for name, parts in out.items()}


def decoder_neighbours(w_dec: torch.Tensor, n_neighbours: int = 10) -> tuple[torch.Tensor, torch.Tensor]:
    """``w_dec [d_sae, d_in]`` → (indices int64 [d_sae, n], cosines float32 [d_sae, n]), nearest
    first, a feature never its own neighbour; computed in row blocks."""
    d_sae = w_dec.shape[0]
    n = min(n_neighbours, d_sae - 1)
    unit = torch.nn.functional.normalize(w_dec.float(), dim=1)
    indices, cosines = [], []
    step = _block_rows(d_sae, d_sae)
    for start in range(0, d_sae, step):
        sims = unit[start:start + step] @ unit.T  # [block, d_sae]
        rows = torch.arange(sims.shape[0], device=sims.device)
        sims[rows, rows + start] = -float("inf")
        top = sims.topk(n, dim=1)
        indices.append(top.indices.cpu())
        cosines.append(top.values.cpu())
    return torch.cat(indices), torch.cat(cosines)
