"""Sparse autoencoders and transcoders: one SAE object whatever the architecture or file format.

``load_sae(folder)`` detects the format (SAELens, sparsify, Gemma Scope ``params.npz``,
dictionary_learning; see :mod:`app.ml.formats`); ``save_sae`` writes the SAELens layout.

Encoding follows SAELens: cast to the SAE's dtype, flatten hook_z heads
(``[..., n_heads, d_head] → [..., d_in]``), normalise (per ``normalize_activations``), subtract
``b_dec`` when ``apply_b_dec_to_input``, then the architecture's encode
(:mod:`app.ml.architectures`). ``decode(f)`` is the architecture's decode followed by undoing
the normalisation; it reconstructs the activation at ``cfg.hook_name_out`` (``[..., d_out]``;
hook_z outputs stay flattened). ``forward(x)`` is the full reconstruction, including a skip
transcoder's ``x @ W_skip.T`` and a temporal SAE's predicted codes, which ``decode`` alone lacks.
"""

from __future__ import annotations

import dataclasses
import json
import math
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import torch
from torch import nn

from app.ml import architectures
from app.ml.device import parse_dtype, resolve_device
from app.ml.errors import LoadError
from app.ml.formats.saelens import CFG_FILENAME, SPARSITY_FILENAME, WEIGHTS_FILENAME  # noqa: E402
from app.ml.sae_config import SAEConfig, summarize

LAYER_NORM_EPS = 1e-5

# (scale, shift) such that original = normalised * scale + shift; None = nothing to undo.
NormUndo = tuple[torch.Tensor | float, torch.Tensor | float] | None


def param_shapes(cfg: SAEConfig) -> dict[str, tuple[int, ...]]:
    """Tensor name → shape for ``cfg.architecture`` (one table for building and validating)."""
    return architectures.get(cfg.architecture, cfg.source).param_shapes(cfg)


def _shape_formula(cfg: SAEConfig, name: str) -> str:
    out = f"d_out={cfg.d_out}" if cfg.is_transcoder else f"d_in={cfg.d_in}"
    formulas = {"W_enc": f"d_in={cfg.d_in}, d_sae={cfg.d_sae}", "W_dec": f"d_sae={cfg.d_sae}, {out}", "b_dec": out,
                "W_skip": f"d_out={cfg.d_out}, d_in={cfg.d_in}"}
    if name in formulas:
        return formulas[name]
    return f"d_sae={cfg.d_sae}" if "." not in name else f"architecture={cfg.architecture} with {cfg.arch_cfg}"


def _add_parameter(module: nn.Module, name: str, tensor: torch.Tensor) -> None:
    """Register ``name`` (dots make nested containers, e.g. ``attn_layers.0.k_ctx.weight``)."""
    *parents, leaf = name.split(".")
    for part in parents:
        if not hasattr(module, part):
            module.add_module(part, nn.Module())
        module = getattr(module, part)
    module.register_parameter(leaf, nn.Parameter(tensor, requires_grad=False))


class SAE(nn.Module):
    """An inference SAE or transcoder. Parameters are the architecture's
    (:func:`param_shapes`): typically ``W_enc [d_in, d_sae]``, ``b_enc [d_sae]``,
    ``W_dec [d_sae, d_out]``, ``b_dec [d_out]``, plus ``threshold``, ``b_gate/b_mag/r_mag``,
    ``W_skip [d_out, d_in]`` or attention weights. Legacy files may add
    ``finetuning_scaling_factor [d_sae]``, which multiplies ``f`` before decoding."""

    def __init__(
        self,
        cfg: SAEConfig,
        *,
        path: Path | None = None,
        feature_density: torch.Tensor | None = None,
        finetuning_scaling: bool = False,
        dtype: torch.dtype | None = None,
    ) -> None:
        super().__init__()
        self.cfg = cfg
        self.arch = architectures.get(cfg.architecture, cfg.source)
        self.path = path
        self.feature_density = feature_density  # [d_sae] fraction of tokens firing, or None
        # Folding at load clears these (see app.ml.architectures.topk and fold_whitening).
        self.rescale_acts = bool(cfg.rescale_acts_by_decoder_norm)
        self.whitening_folded = False
        dtype = dtype or parse_dtype(cfg.dtype)
        for name, shape in param_shapes(cfg).items():
            _add_parameter(self, name, torch.zeros(shape, dtype=dtype))
        self.finetuning_scaling_factor = (
            nn.Parameter(torch.ones(cfg.d_sae, dtype=dtype), requires_grad=False)
            if finetuning_scaling else None
        )

    def __getattr__(self, name: str) -> Any:
        if name == "W_enc" and self.__dict__.get("arch") is not None and self.__dict__["arch"].tied:
            return super().__getattr__("W_dec").T  # tied SAEs (matching pursuit) store only W_dec
        return super().__getattr__(name)

    d_in = property(lambda self: self.cfg.d_in)
    d_sae = property(lambda self: self.cfg.d_sae)
    d_out = property(lambda self: self.cfg.d_out)
    hook_name = property(lambda self: self.cfg.hook_name)
    hook_name_out = property(lambda self: self.cfg.hook_name_out)
    architecture = property(lambda self: self.cfg.architecture)
    is_transcoder = property(lambda self: self.cfg.is_transcoder)
    signed = property(lambda self: self.arch.signed)  # features can be negative

    @property
    def dtype(self) -> torch.dtype:
        return self.W_dec.dtype

    @property
    def device(self) -> torch.device:
        return self.W_dec.device

    def __repr__(self) -> str:
        out = f", hook_name_out={self.hook_name_out!r}" if self.is_transcoder else ""
        return (f"SAE(architecture={self.architecture}, d_in={self.d_in}, d_sae={self.d_sae}, "
                f"hook_name={self.hook_name!r}{out}, path={str(self.path) if self.path else None!r})")

    # -- normalisation ---------------------------------------------------------------------
    def prepare(self, x: torch.Tensor) -> torch.Tensor:
        """Cast to the SAE's dtype; hook_z SAEs accept ``[..., n_heads, d_head]`` and flatten it."""
        if (self.cfg.reshape_activations == "hook_z" and x.ndim >= 2 and x.shape[-1] != self.d_in
                and x.shape[-2] * x.shape[-1] == self.d_in):
            x = x.flatten(-2)
        return x.to(self.dtype)

    def _constant_scale(self) -> float | None:
        mode = self.cfg.normalize_activations
        if mode == "expected_average_only_in" and self.cfg.norm_scaling_factor:
            return float(self.cfg.norm_scaling_factor)
        if mode == "constant_scalar_rescale":
            return float(self.cfg.arch_cfg["activation_normalization_factor"])
        return None

    def normalize(self, x: torch.Tensor) -> tuple[torch.Tensor, NormUndo]:
        """``x: [..., d_in]`` → (normalised x, what :meth:`decode` needs to undo it)."""
        x = self.prepare(x)
        mode = self.cfg.normalize_activations
        if mode == "constant_norm_rescale":
            norm = x.norm(dim=-1, keepdim=True)
            return x * (math.sqrt(self.d_in) / norm), (norm / math.sqrt(self.d_in), 0.0)
        if mode == "layer_norm":
            mu = x.mean(dim=-1, keepdim=True)
            centred = x - mu
            std = centred.std(dim=-1, keepdim=True)
            return centred / (std + LAYER_NORM_EPS), (std, mu)
        if mode == "covariance_whitening" and not self.whitening_folded:
            raise ValueError(f"{self!r}: covariance_whitening statistics were never folded in (load it with load_sae)")
        factor = self._constant_scale()
        if factor is not None:
            return x * factor, (1.0 / factor, 0.0)
        return x, None

    def undo_normalization(self, out: torch.Tensor, undo: NormUndo = None) -> torch.Tensor:
        """Map ``out`` back to the model's scale (constant factors are always undone)."""
        if undo is None and (factor := self._constant_scale()) is not None:
            undo = (1.0 / factor, 0.0)
        if undo is None:
            return out
        scale, shift = undo
        return out * scale + shift

    # -- encode / decode -------------------------------------------------------------------
    def encode_normalized(self, x: torch.Tensor) -> torch.Tensor:
        """Already-normalised ``x: [..., d_in]`` → feature activations ``[..., d_sae]``."""
        if self.cfg.apply_b_dec_to_input and self.arch.subtracts_b_dec:
            x = x - self.b_dec
        return self.arch.encode(self, x)

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        """``x: [..., d_in]`` (activations at ``hook_name``) → ``f: [..., d_sae]``."""
        return self.encode_normalized(self.normalize(x)[0])

    def feature_encoder(self, features: list[int]) -> Callable[[torch.Tensor], torch.Tensor]:
        """A function ``x: [..., d_in] → [..., k]`` equal to ``encode(x)[..., features]``.

        Where the architecture encodes each feature from its own column and the normalisation is a constant
        (or none), ``b_dec`` and the constant are folded into k columns of the encoder: one small matmul, which
        is what steering pays per generated token. Otherwise it is the full encode, then the columns.
        """
        cols = torch.tensor(features, dtype=torch.long, device=self.device)
        per_token = self.cfg.normalize_activations in ("constant_norm_rescale", "layer_norm")
        if self.cfg.normalize_activations == "covariance_whitening" and not self.whitening_folded:
            per_token = True  # encode() raises the clear error
        parts = None if per_token or self.cfg.reshape_activations != "none" else self.arch.column_encoder(self, cols)
        if parts is None:
            return lambda x: self.encode(x)[..., cols]
        W, b, activation = parts
        factor = self._constant_scale()
        with torch.no_grad():
            if self.cfg.apply_b_dec_to_input and self.arch.subtracts_b_dec:
                b = b - self.b_dec @ W  # (c·x − b_dec) @ W + b = x @ (c·W) + (b − b_dec @ W)
            W = (W * factor if factor is not None else W).contiguous()
        dtype = self.dtype
        return lambda x: activation(torch.matmul(x.to(dtype), W) + b)

    def decode(self, f: torch.Tensor, undo: NormUndo = None) -> torch.Tensor:
        """``f: [..., d_sae]`` → reconstruction ``[..., d_out]`` of the activation at ``hook_name_out``.

        Pass the ``undo`` from :meth:`normalize` to map back to the model's scale for
        per-token normalisations (constant_norm_rescale, layer_norm); without it the output
        stays in the normalised space, except for constant factors, which are always undone.
        Transcoders never undo (SAELens does not: input and output live at different hooks).
        Never includes a skip transcoder's skip term (it needs ``x``; see :meth:`forward`).
        """
        f = f.to(self.dtype)
        if self.finetuning_scaling_factor is not None:
            f = f * self.finetuning_scaling_factor
        out = self.arch.decode(self, f)
        return self.undo_normalization(out, undo) if self.arch.undoes_normalization else out

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Full reconstruction of ``x: [..., d_in]`` at ``hook_name_out`` → ``[..., d_out]``."""
        x = self.prepare(x)
        full = self.arch.forward(self, x)
        if full is not None:
            return full
        x_normalized, undo = self.normalize(x)
        out = self.decode(self.encode_normalized(x_normalized), undo)
        if self.arch.skip:
            out = out + x @ self.W_skip.T
        return out

    # -- display ---------------------------------------------------------------------------
    @torch.no_grad()
    def summary(self) -> dict[str, Any]:
        """:func:`app.ml.sae_config.summarize` plus what the tensors tell (threshold stats)."""
        stats: dict[str, Any] = {"signed_activations": self.signed}
        if "threshold" in param_shapes(self.cfg):
            t = self.threshold.float()
            stats["threshold"] = {"mean": float(t.mean()), "min": float(t.min()), "max": float(t.max())}
        return summarize(self.cfg, stats)


# -- tensors on disk ---------------------------------------------------------------------------
def validate_tensors(
    tensors: Mapping[str, torch.Tensor], cfg: SAEConfig, where: str, cfg_name: str = CFG_FILENAME
) -> dict[str, torch.Tensor]:
    """Check names, shapes and finiteness against ``cfg``; returns the SAE's state dict.

    A legacy ``scaling_factor`` of all ones is dropped; otherwise it becomes
    ``finetuning_scaling_factor``.
    """
    tensors = dict(tensors)
    if "scaling_factor" in tensors:
        scaling = tensors.pop("scaling_factor")
        if not torch.all(scaling == 1):
            tensors["finetuning_scaling_factor"] = scaling
    expected = param_shapes(cfg)
    missing = [name for name in expected if name not in tensors]
    if missing:
        raise LoadError(
            f"{where}: tensor {missing[0]} is missing (architecture={cfg.architecture} needs "
            f"{', '.join(expected)}; found {', '.join(sorted(tensors)) or 'none'})"
        )
    allowed = {**expected, "finetuning_scaling_factor": (cfg.d_sae,)}
    unexpected = sorted(set(tensors) - set(allowed))
    if unexpected:
        raise LoadError(
            f"{where}: unexpected tensor(s) {', '.join(unexpected)} for architecture="
            f"{cfg.architecture} (expected {', '.join(expected)})"
        )
    for name, tensor in tensors.items():
        want = allowed[name]
        if tuple(tensor.shape) != want:
            raise LoadError(
                f"{where}: {name} has shape {tuple(tensor.shape)} but {cfg_name} says "
                f"{_shape_formula(cfg, name)} → expected {want}"
            )
        if not tensor.is_floating_point():
            raise LoadError(f"{where}: {name} has dtype {tensor.dtype}, expected a float dtype")
        bad = int((~torch.isfinite(tensor)).sum())
        if bad:
            raise LoadError(f"{where}: {name} has {bad} non-finite value(s) (NaN or inf)")
    return tensors


def load_sae(path: str | Path, device: str | torch.device = "cpu", dtype: str | torch.dtype | None = None) -> SAE:
    """Load an SAE folder of any supported format; every problem is a :class:`LoadError`,
    nothing half-loaded. ``dtype`` overrides the cfg's dtype (e.g. to match the model)."""
    from app.ml.formats import read_folder

    folder = Path(path).expanduser()
    if not folder.is_dir():
        raise LoadError(f"SAE folder {folder} does not exist")
    read = read_folder(folder)
    cfg = read.cfg
    state = validate_tensors(read.tensors, cfg, read.where, read.cfg_name)
    density = None
    if read.log_density is not None:
        if tuple(read.log_density.shape) != (cfg.d_sae,):
            raise LoadError(
                f"{read.density_where}: sparsity has shape {tuple(read.log_density.shape)} but "
                f"{read.cfg_name} says d_sae={cfg.d_sae} → expected ({cfg.d_sae},)"
            )
        density = torch.pow(10.0, read.log_density.float())  # -inf (never fired) → 0

    sae = SAE(cfg, path=folder, feature_density=density, finetuning_scaling="finetuning_scaling_factor" in state)
    sae.load_state_dict(state)
    if read.whitening is not None:
        sae.arch.fold_whitening(sae, *read.whitening)
        sae.whitening_folded = True
    if sae.rescale_acts:
        sae.arch.fold_decoder_norm(sae)
        sae.rescale_acts = False
    target_dtype = parse_dtype(dtype) if dtype is not None else parse_dtype(cfg.dtype)
    return sae.to(device=resolve_device(device), dtype=target_dtype)


def save_sae(
    sae_or_tensors: SAE | Mapping[str, torch.Tensor],
    cfg: SAEConfig,
    path: str | Path,
    sparsity: torch.Tensor | None = None,
) -> Path:
    """Write ``cfg.json`` (v6 layout), ``sae_weights.safetensors`` and, when ``sparsity``
    (log10 density ``[d_sae]``) is given or the SAE knows its density, ``sparsity.safetensors``.

    Whitening folded in at load is saved folded (``normalize_activations: none``), as SAELens
    saves it after training.
    """
    from safetensors.torch import save_file

    folder = Path(path)
    if isinstance(sae_or_tensors, SAE):
        tensors = dict(sae_or_tensors.state_dict())
        if sparsity is None and sae_or_tensors.feature_density is not None:
            sparsity = torch.log10(sae_or_tensors.feature_density)
        if sae_or_tensors.whitening_folded:
            cfg = dataclasses.replace(cfg, normalize_activations="none")
    else:
        tensors = dict(sae_or_tensors)
    tensors = validate_tensors(tensors, cfg, f"save_sae({folder})")
    folder.mkdir(parents=True, exist_ok=True)
    save_file({k: v.detach().to("cpu").contiguous() for k, v in tensors.items()}, str(folder / WEIGHTS_FILENAME))
    if sparsity is not None:
        save_file({"sparsity": sparsity.detach().float().cpu().contiguous()}, str(folder / SPARSITY_FILENAME))
    (folder / CFG_FILENAME).write_text(json.dumps(cfg.to_dict(), indent=2) + "\n", encoding="utf-8")
    return folder


@torch.no_grad()
def residual_directions(sae: SAE, lm: Any) -> torch.Tensor:
    """Decoder rows as residual-stream directions ``[d_sae, d_model]`` (for logit effects).

    ``W_dec`` itself where the SAE writes at residual width; for a hook read by a linear layer
    into the residual stream (``attn.hook_z`` → W_O, ``mlp.hook_post`` → W_out) its image through
    that layer's weight (bias and any norm after it left out, as for the final norm).
    """
    if sae.d_out == lm.d_model:
        return sae.W_dec
    from app.ml.hooks import resolve_hook

    point = resolve_hook(lm, sae.hook_name_out)
    weight = getattr(point.module, "weight", None)
    if point.io == "input" and isinstance(weight, torch.Tensor) and weight.ndim == 2:
        # nn.Linear stores [out, in]; GPT-2's Conv1D stores [in, out].
        w = weight.T if isinstance(point.module, nn.Linear) else weight
        if w.shape == (sae.d_out, lm.d_model):
            return sae.W_dec @ w.to(sae.W_dec.dtype)
    raise LoadError(f"{sae.hook_name_out}: width {sae.d_out} is not the residual stream's ({lm.d_model}) and no "
                    "linear layer maps it there; its features have no direct logit effect to show")


def check_sae_fits_model(sae: SAE, lm: Any) -> int:
    """Check the model's width at ``sae.hook_name`` is ``d_in`` and at ``sae.hook_name_out`` is
    ``d_out``; returns the input width. Residual-stream hooks have width ``d_model``; others
    (hook_z, mlp.hook_post, module paths) are probed with a one-token forward pass."""
    from app.ml.hooks import RESIDUAL_WIDTH_KINDS, capture_activations, resolve_hook

    names = list(dict.fromkeys([sae.hook_name, sae.hook_name_out]))
    widths: dict[str, int] = {}
    for name in names:
        resolve_hook(lm, name)  # a name that cannot be placed fails here, before any forward pass
        kind = name.split(".", 2)[-1] if name.startswith("blocks.") else None
        if kind in RESIDUAL_WIDTH_KINDS:
            widths[name] = lm.d_model
    probe = [n for n in names if n not in widths]
    if probe:
        token = lm.bos_token_id if lm.bos_token_id is not None else 0
        ids = torch.tensor([[token]], device=lm.device)
        acts = capture_activations(lm, ids, hook_names=probe)
        widths.update({n: int(acts[n].shape[-1]) for n in probe})
    for name, want, what in ((sae.hook_name, sae.d_in, "d_in"), (sae.hook_name_out, sae.d_out, "d_out")):
        if widths[name] != want:
            raise LoadError(
                f"SAE {sae.path or '(in memory)'} {what}={want} but {name} on {lm.name} has width {widths[name]}"
            )
    return widths[sae.hook_name]
