"""``topk`` (Gao et al. 2024): per token keep the k largest pre-activations, ReLU'd, zero the rest.

With ``rescale_acts_by_decoder_norm`` (SAELens' TopK training default) the ranking reads
``pre * ‖W_dec[i]‖`` and decode divides by the norm again, as if the decoder were unit-norm::

    pre = (x @ W_enc + b_enc) * ‖W_dec‖;  f = scatter(topk(pre, k)).relu()
    x̂ = (f / ‖W_dec‖) @ W_dec + b_dec

The loader folds the norms into the weights (SAELens' ``fold_W_dec_norm``, exact for this
architecture) and clears ``sae.rescale_acts``, so ``W_dec`` rows are unit-norm everywhere else
(steering, logit tables) and the rescaling is a no-op from then on.
"""

import torch

from app.ml.architectures.base import Architecture, register


def topk_relu(pre: torch.Tensor, k: int) -> torch.Tensor:
    """Keep the ``k`` largest entries of ``pre: [..., d_sae]`` per row (ReLU'd), zero the rest."""
    values, indices = pre.topk(k, dim=-1, sorted=False)
    return torch.zeros_like(pre).scatter(-1, indices, torch.relu(values))


class TopKFamily(Architecture):
    needs_k = True
    has_rescale = True

    def select(self, pre: torch.Tensor, k: int) -> torch.Tensor:
        return topk_relu(pre, k)

    def encode(self, sae, x):
        pre = x @ sae.W_enc + sae.b_enc
        if sae.rescale_acts:
            pre = pre * sae.W_dec.norm(dim=-1)
        return self.select(pre, sae.cfg.k)

    def decode(self, sae, f):
        if sae.rescale_acts:
            f = f / sae.W_dec.norm(dim=-1)
        return f @ sae.W_dec + sae.b_dec

    @torch.no_grad()
    def fold_whitening(self, sae, mean, matrix, inverse):
        # Unwhitening changes decoder norms and so the ranking; with unit-norm rows first the
        # rescaled ranking no longer depends on them (SAELens folds the norms first too).
        if sae.rescale_acts:
            self.fold_decoder_norm(sae)
            sae.rescale_acts = False
        super().fold_whitening(sae, mean, matrix, inverse)


@register
class TopK(TopKFamily):
    name = "topk"
