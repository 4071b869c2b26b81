"""Live inference on one text: the model's activations at every SAE hook in one forward pass, then
per-source feature activations, reduced on the device to the few numbers a page shows.

Everything returned is plain Python or numpy (never a tensor), so app/live and the routes stay free
of torch. Callers serialise calls per device (app/live/service.py holds the bundle lock).

Shapes: ``pos`` is the number of tokens of the text (BOS included), ``d_in`` the SAE's input width,
``d_sae`` its number of features.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import numpy as np
import torch

from app.ml.hooks import capture_activations
from app.ml.lm import LanguageModel
from app.ml.sae import SAE


def hook_activations(lm: LanguageModel, token_ids: Sequence[int], hook_names: Iterable[str]) -> dict[str, torch.Tensor]:
    """One forward pass over ``token_ids: [pos]`` → ``{hook_name: acts [pos, d_in]}`` for every hook asked.

    The forward stops after the deepest hook (capture_activations), so sources that share the model
    share this one pass whatever their layers.
    """
    hooks = sorted(set(hook_names))
    input_ids = torch.tensor([list(token_ids)], dtype=torch.long)
    captured = capture_activations(lm, input_ids, None, hooks)
    return {name: acts[0].detach() for name, acts in captured.items()}


@dataclass(frozen=True)
class LiveFeatures:
    """What one source's page needs from one text (all numpy, no tensors).

    token_top_indices / token_top_values: [pos, k] the k strongest features at each token, strongest first,
        value 0 where fewer than k fire (index -1 there).
    token_l0: [pos] how many features fire at each token (hidden ones excluded).
    token_l0_all: [pos] how many fire at each token, hidden ones included (so a page can say what it hides).
    ranked_indices / ranked_max / ranked_pos / ranked_n_tokens: [n] features ordered by their max over the
        tokens kept by the mask, with the position of that max and on how many kept tokens they fire.
    n_firing / n_firing_all: distinct features that fire on the kept tokens, without / with the hidden ones.
    """

    token_top_indices: np.ndarray
    token_top_values: np.ndarray
    token_l0: np.ndarray
    ranked_indices: np.ndarray
    ranked_max: np.ndarray
    ranked_pos: np.ndarray
    ranked_n_tokens: np.ndarray
    token_l0_all: np.ndarray | None = None
    n_firing: int = 0
    n_firing_all: int = 0


def live_features(sae: SAE, acts: torch.Tensor, *, top_k: int, n_ranked: int, token_mask: Sequence[bool],
                  hidden: Sequence[int] = ()) -> LiveFeatures:
    """Per-token top features and the features ranked by max over the masked tokens.

    acts: [pos, d_in] activations at ``sae.cfg.hook_name``; token_mask: [pos] tokens that count for the
    ranking; hidden: feature indices left out of both lists (e.g. too dense to be interesting).
    """
    with torch.inference_mode():
        f = sae.encode(acts.to(sae.device)).float()  # [pos, d_sae]
        l0_all = (f > 0).sum(dim=-1)
        mask = torch.as_tensor(list(token_mask), dtype=torch.bool, device=f.device)
        n_firing_all = int((f[mask] > 0).any(dim=0).sum()) if mask.any() else 0
        if len(hidden):
            f[:, torch.as_tensor(list(hidden), dtype=torch.long, device=f.device)] = 0.0
        k = max(0, min(top_k, f.shape[1]))
        values, indices = f.topk(k, dim=-1)  # [pos, k]
        indices = torch.where(values > 0, indices, torch.full_like(indices, -1))
        l0 = (f > 0).sum(dim=-1)

        n_firing = 0
        if mask.any():
            kept = f[mask]  # [kept, d_sae]
            positions = torch.nonzero(mask).flatten()
            best, where = kept.max(dim=0)  # [d_sae]
            n_tokens = (kept > 0).sum(dim=0)
            n_firing = int((best > 0).sum())
            n = min(n_ranked, n_firing)
            top_best, order = best.topk(n)
            ranked = (order, top_best, positions[where[order]], n_tokens[order])
        else:
            empty = torch.zeros(0, dtype=torch.long)
            ranked = (empty, empty.float(), empty, empty)
    return LiveFeatures(
        token_top_indices=indices.cpu().numpy(), token_top_values=values.clamp(min=0).cpu().numpy(),
        token_l0=l0.cpu().numpy(), ranked_indices=ranked[0].cpu().numpy(), ranked_max=ranked[1].cpu().numpy(),
        ranked_pos=ranked[2].cpu().numpy(), ranked_n_tokens=ranked[3].cpu().numpy(),
        token_l0_all=l0_all.cpu().numpy(), n_firing=n_firing, n_firing_all=n_firing_all,
    )


def feature_trace(sae: SAE, acts: torch.Tensor, index: int) -> np.ndarray:
    """``[pos]`` activations of feature ``index`` over the text (exact: the full encode, then one column,
    so topk and gated SAEs behave as they do everywhere else)."""
    with torch.inference_mode():
        return sae.encode(acts.to(sae.device))[:, index].float().cpu().numpy()
