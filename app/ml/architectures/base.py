"""What an architecture declares, and the registry that maps ``cfg.architecture`` to it.

The SAE (:class:`app.ml.sae.SAE`) does what every SAELens architecture shares, in SAELens'
order: cast to the SAE's dtype, flatten hook_z heads, normalise, subtract ``b_dec`` when
``apply_b_dec_to_input`` (and the architecture honours it), then calls :meth:`Architecture.encode`;
``decode`` is :meth:`Architecture.decode` followed by undoing the normalisation.

Shapes: ``x: [..., d_in]`` (already normalised and centred), ``f: [..., d_sae]``,
reconstruction ``[..., d_out]`` (``d_out == d_in`` except for transcoders).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any, ClassVar

import torch

from app.ml.errors import LoadError

if TYPE_CHECKING:
    from app.ml.sae import SAE
    from app.ml.sae_config import SAEConfig

BadField = Callable[[str, str, Any], LoadError]
# (W [d_in, k], b [k], activation applied to the pre-activation [..., k])
ColumnEncoder = tuple[torch.Tensor, torch.Tensor, Callable[[torch.Tensor], torch.Tensor]]


class Architecture:
    """One SAE architecture. Subclasses override what differs from the standard ReLU SAE."""

    name: ClassVar[str] = ""
    transcoder: ClassVar[bool] = False  # reads at hook_name, writes at hook_name_out
    skip: ClassVar[bool] = False  # forward adds x @ W_skip.T (skip transcoders)
    signed: ClassVar[bool] = False  # features may fire negative (abstopk, signed sparsify)
    subtracts_b_dec: ClassVar[bool] = True  # honours apply_b_dec_to_input
    undoes_normalization: ClassVar[bool] = True  # decode maps back to the model's scale
    positional: ClassVar[bool] = False  # encode reads whole sequences [batch, pos, d_in]
    tied: ClassVar[bool] = False  # W_enc is W_dec.T (not stored)
    needs_k: ClassVar[bool] = False
    has_rescale: ClassVar[bool] = False  # reads rescale_acts_by_decoder_norm
    # Extra cfg.json fields this architecture reads (into SAEConfig.arch_cfg) with SAELens' defaults.
    cfg_fields: ClassVar[dict[str, Any]] = {}
    normalizations: ClassVar[tuple[str, ...]] = (
        "none", "constant_norm_rescale", "layer_norm", "expected_average_only_in", "covariance_whitening")
    # Whitening can be folded into an untied encoder and a same-width decoder only.
    UNWHITENED: ClassVar[tuple[str, ...]] = ("none", "constant_norm_rescale", "layer_norm", "expected_average_only_in")

    def param_shapes(self, cfg: SAEConfig) -> dict[str, tuple[int, ...]]:
        return {"W_enc": (cfg.d_in, cfg.d_sae), "W_dec": (cfg.d_sae, cfg.d_out), "b_dec": (cfg.d_out,),
                "b_enc": (cfg.d_sae,)}

    def check(self, cfg: SAEConfig, bad: BadField) -> None:
        """Architecture-specific cfg checks (raise ``bad(field, expected, value)``)."""

    def encode(self, sae: SAE, x: torch.Tensor) -> torch.Tensor:
        return torch.relu(x @ sae.W_enc + sae.b_enc)

    def decode(self, sae: SAE, f: torch.Tensor) -> torch.Tensor:
        return f @ sae.W_dec + sae.b_dec

    def column_encoder(self, sae: SAE, cols: torch.Tensor) -> ColumnEncoder | None:
        """``(W_enc[:, cols], b_enc[cols], activation)`` when feature ``c`` is ``activation(x @ W_enc[:, c] +
        b_enc[c])``, reading its own column only (so a few features can be encoded without the other d_sae);
        None when features interact (top-k, gating on other columns, positional codes)."""
        return None

    def forward(self, sae: SAE, x: torch.Tensor) -> torch.Tensor | None:
        """A full reconstruction when it is not ``decode(encode(x))`` (+ skip); None otherwise."""
        return None

    @torch.no_grad()
    def fold_decoder_norm(self, sae: SAE) -> torch.Tensor:
        """Make every ``W_dec`` row unit-norm without changing encode∘decode; returns the norms."""
        norms = sae.W_dec.norm(dim=-1).clamp(min=1e-8)  # [d_sae]
        sae.W_dec.div_(norms[:, None])
        sae.W_enc.mul_(norms[None, :])
        if "b_enc" in self.param_shapes(sae.cfg):
            sae.b_enc.mul_(norms)
        return norms

    @torch.no_grad()
    def fold_whitening(self, sae: SAE, mean: torch.Tensor, matrix: torch.Tensor, inverse: torch.Tensor) -> None:
        """Fold ``z = (x - mean) @ matrix`` and ``x = z @ inverse + mean`` into the weights (SAELens'
        ``fold_activation_whitening``): the SAE then reads and writes raw activations."""
        if self.tied or self.positional or self.transcoder:
            raise LoadError(f"architecture={self.name}: covariance_whitening cannot be folded into this "
                            "architecture's weights (SAELens refuses it too)")
        dtype = torch.promote_types(sae.W_enc.dtype, matrix.dtype)
        mean, matrix, inverse = (t.to(sae.W_enc.device, dtype) for t in (mean, matrix, inverse))
        sae.W_enc.copy_(matrix @ sae.W_enc.to(dtype))
        if not sae.cfg.apply_b_dec_to_input:
            self._shift_encoder_biases(sae, mean @ sae.W_enc.to(dtype))
        sae.W_dec.copy_(sae.W_dec.to(dtype) @ inverse)
        sae.b_dec.copy_(sae.b_dec.to(dtype) @ inverse + mean)

    def _shift_encoder_biases(self, sae: SAE, shift: torch.Tensor) -> None:
        sae.b_enc.sub_(shift.to(sae.b_enc.dtype))


REGISTRY: dict[str, Architecture] = {}


def register(cls: type[Architecture]) -> type[Architecture]:
    """Class decorator: add one instance of ``cls`` under ``cls.name``."""
    if not cls.name or cls.name in REGISTRY:
        raise ValueError(f"architecture name {cls.name!r} is empty or already registered")
    REGISTRY[cls.name] = cls()
    return cls


def get(name: str, source: str = "cfg.json") -> Architecture:
    if name not in REGISTRY:
        raise LoadError(f"{source}: architecture {name!r} is not supported (known: {', '.join(sorted(REGISTRY))})")
    return REGISTRY[name]
