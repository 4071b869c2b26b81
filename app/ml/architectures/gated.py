"""``gated`` (Rajamanoharan et al. 2024): a gate decides which features fire, a magnitude path
sharing ``W_enc`` (rescaled by ``exp(r_mag)``) decides how strongly::

    f = (x @ W_enc + b_gate > 0) * ReLU(x @ (W_enc * exp(r_mag)) + b_mag)
"""

import torch

from app.ml.architectures.base import Architecture, register


@register
class Gated(Architecture):
    name = "gated"

    def param_shapes(self, cfg):
        shapes = super().param_shapes(cfg)
        del shapes["b_enc"]
        return {**shapes, "b_gate": (cfg.d_sae,), "b_mag": (cfg.d_sae,), "r_mag": (cfg.d_sae,)}

    def encode(self, sae, x):
        gate = (x @ sae.W_enc + sae.b_gate) > 0
        magnitude = torch.relu(x @ (sae.W_enc * torch.exp(sae.r_mag)) + sae.b_mag)
        return gate.to(magnitude.dtype) * magnitude

    @torch.no_grad()
    def fold_decoder_norm(self, sae):
        norms = super().fold_decoder_norm(sae)
        sae.b_gate.mul_(norms)
        sae.b_mag.mul_(norms)
        return norms

    def _shift_encoder_biases(self, sae, shift):
        # The magnitude path reads W_enc * exp(r_mag), so its bias moves by that much more.
        sae.b_gate.sub_(shift)
        sae.b_mag.sub_(shift * sae.r_mag.exp())
