"""``standard``: ``f = ReLU(x @ W_enc + b_enc)``, ``x̂ = f @ W_dec + b_dec``."""

import torch

from app.ml.architectures.base import Architecture, register


@register
class Standard(Architecture):
    name = "standard"

    def column_encoder(self, sae, cols):
        return sae.W_enc[:, cols], sae.b_enc[cols], torch.relu
