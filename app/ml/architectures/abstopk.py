"""``abstopk`` (AbsTopK, ICLR 2026): per token keep the k pre-activations of largest *magnitude*
with their signs (no ReLU), so a feature can fire in either direction."""

import torch

from app.ml.architectures.base import register
from app.ml.architectures.topk import TopKFamily


@register
class AbsTopK(TopKFamily):
    name = "abstopk"
    signed = True

    def select(self, pre: torch.Tensor, k: int) -> torch.Tensor:
        indices = pre.abs().topk(k, dim=-1, sorted=False).indices
        return torch.zeros_like(pre).scatter(-1, indices, pre.gather(-1, indices))
