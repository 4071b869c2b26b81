"""``matching_pursuit``: a tied SAE (``W_enc = W_dec.T``, not stored) encoded greedily.

Per token, repeatedly pick the feature whose decoder row best matches the residual
(``argmax ReLU(r @ W_dec.T)``), add its ReLU'd projection to ``f``, subtract it from the
residual; stop after ``max_iterations`` (default d_in), when the support stops changing
(``stop_on_duplicate_support``) or when ``‖r‖ < residual_threshold``. As in SAELens, decode adds
``b_dec`` only when it was subtracted from the input.
"""

import torch

from app.ml.architectures.base import Architecture, register


def matching_pursuit(x: torch.Tensor, W_dec: torch.Tensor, residual_threshold: float, max_iterations: int | None,
                     stop_on_duplicate_support: bool) -> torch.Tensor:
    """``x: [..., d_in]`` (centred), ``W_dec: [d_sae, d_in]`` → ``f: [..., d_sae]``."""
    shape = x.shape
    residual = x.reshape(-1, shape[-1]).clone()
    n, d_sae = residual.shape[0], W_dec.shape[0]
    f = torch.zeros(n, d_sae, dtype=residual.dtype, device=residual.device)
    support = torch.zeros(n, d_sae, dtype=torch.bool, device=residual.device)
    done = torch.zeros(n, dtype=torch.bool, device=residual.device)
    for _ in range(max_iterations if max_iterations is not None else shape[-1]):
        best = (residual @ W_dec.T).relu().argmax(dim=1)  # [n]
        rows = W_dec[best]  # [n, d_in]
        value = ((residual * rows).sum(dim=-1, keepdim=True).relu() * (~done)[:, None]).to(f.dtype)
        f.scatter_add_(1, best[:, None], value)
        residual = residual - value * rows
        if stop_on_duplicate_support:
            new_support = f != 0
            done = done | (new_support == support).all(dim=1)
            support = new_support
        if residual_threshold > 0:
            done = done | (residual.norm(dim=-1) < residual_threshold)
        if (stop_on_duplicate_support or residual_threshold > 0) and bool(done.all()):
            break
    return f.reshape(*shape[:-1], d_sae)


@register
class MatchingPursuit(Architecture):
    name = "matching_pursuit"
    tied = True
    normalizations = Architecture.UNWHITENED
    cfg_fields = {"residual_threshold": 1e-2, "max_iterations": None, "stop_on_duplicate_support": True}

    def param_shapes(self, cfg):
        return {"W_dec": (cfg.d_sae, cfg.d_out), "b_dec": (cfg.d_out,)}

    def check(self, cfg, bad):
        params = cfg.arch_cfg
        if not isinstance(params["residual_threshold"], (int, float)) or isinstance(params["residual_threshold"], bool):
            raise bad("residual_threshold", "a number", params["residual_threshold"])
        iters = params["max_iterations"]
        if iters is not None and (isinstance(iters, bool) or not isinstance(iters, int) or iters < 1):
            raise bad("max_iterations", "a positive integer or null", iters)

    def encode(self, sae, x):
        p = sae.cfg.arch_cfg
        return matching_pursuit(x, sae.W_dec, float(p["residual_threshold"]), p["max_iterations"],
                                bool(p["stop_on_duplicate_support"]))

    def decode(self, sae, f):
        out = f @ sae.W_dec
        return out + sae.b_dec if sae.cfg.apply_b_dec_to_input else out

    def fold_decoder_norm(self, sae):
        raise NotImplementedError("matching pursuit reads its decoder norms; they cannot be folded")
