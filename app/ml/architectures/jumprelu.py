"""``jumprelu`` (Gemma Scope; also what SAELens saves batchtopk / matryoshka SAEs as)::

    pre = x @ W_enc + b_enc;  f = ReLU(pre) * (pre > threshold)
"""

import torch

from app.ml.architectures.base import Architecture, register


def jumprelu(pre: torch.Tensor, threshold: torch.Tensor) -> torch.Tensor:
    """``pre: [..., d_sae]``, ``threshold: [d_sae]`` → features ``[..., d_sae]``."""
    return torch.relu(pre) * (pre > threshold).to(pre.dtype)


class JumpReLUMixin:
    def param_shapes(self, cfg):
        return {**super().param_shapes(cfg), "threshold": (cfg.d_sae,)}

    def encode(self, sae, x):
        return jumprelu(x @ sae.W_enc + sae.b_enc, sae.threshold)

    def column_encoder(self, sae, cols):
        threshold = sae.threshold[cols]
        return sae.W_enc[:, cols], sae.b_enc[cols], lambda pre: jumprelu(pre, threshold)

    @torch.no_grad()
    def fold_decoder_norm(self, sae):
        norms = super().fold_decoder_norm(sae)
        sae.threshold.mul_(norms)
        return norms


@register
class JumpReLU(JumpReLUMixin, Architecture):
    name = "jumprelu"
