"""``groupmax`` (EleutherAI sparsify's ``activation: groupmax``): the d_sae latents form k
contiguous groups of d_sae / k; each group keeps only its largest ReLU'd pre-activation.
Not a SAELens architecture; sparsify checkpoints are the files that use it."""

import torch

from app.ml.architectures.base import Architecture, register


@register
class GroupMax(Architecture):
    name = "groupmax"
    needs_k = True

    def check(self, cfg, bad):
        if cfg.d_sae % cfg.k:
            raise bad("k", f"a divisor of d_sae={cfg.d_sae} for architecture=groupmax", cfg.k)

    def encode(self, sae, x):
        pre = torch.relu(x @ sae.W_enc + sae.b_enc)  # [..., d_sae]
        k = sae.cfg.k
        values, within = pre.unflatten(-1, (k, -1)).max(dim=-1)  # [..., k]
        offsets = torch.arange(0, sae.d_sae, sae.d_sae // k, device=pre.device)
        return torch.zeros_like(pre).scatter(-1, within + offsets, values)
