"""``standard``: ``f = ReLU(x @ W_enc + b_enc)``, ``x̂ = f @ W_dec + b_dec``."""

from app.ml.architectures.base import Architecture, register


@register
class Standard(Architecture):
    name = "standard"
