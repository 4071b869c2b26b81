"""Sparse autoencoders in the SAELens on-disk format: load, encode/decode, save, fit check.

A folder holds ``cfg.json`` (see :mod:`app.ml.sae_config`), ``sae_weights.safetensors`` and
optionally ``sparsity.safetensors`` whose ``sparsity: [d_sae]`` is log10 feature density.

Encoding follows SAELens: normalise ``x`` (per ``normalize_activations``), subtract ``b_dec``
when ``apply_b_dec_to_input``, then per ``architecture``::

    standard  f = ReLU(x @ W_enc + b_enc)
    jumprelu  pre = x @ W_enc + b_enc;  f = ReLU(pre) * (pre > threshold)
    topk      pre = x @ W_enc + b_enc;  keep the k largest of pre per token, ReLU'd, zero the rest
    gated     f = (x @ W_enc + b_gate > 0) * ReLU(x @ (W_enc * exp(r_mag)) + b_mag)

and ``decode(f) = f @ W_dec + b_dec`` followed by undoing the normalisation.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch
from torch import nn

from app.ml.device import parse_dtype, resolve_device
from app.ml.errors import LoadError
from app.ml.sae_config import SAEConfig

CFG_FILENAME = "cfg.json"
WEIGHTS_FILENAME = "sae_weights.safetensors"
SPARSITY_FILENAME = "sparsity.safetensors"
LAYER_NORM_EPS = 1e-5

# (scale, shift) such that original = normalised * scale + shift; None = nothing to undo.
NormUndo = tuple[torch.Tensor | float, torch.Tensor | float] | None


def param_shapes(cfg: SAEConfig) -> dict[str, tuple[int, ...]]:
    """Tensor name → shape for ``cfg.architecture`` (one table for building and validating)."""
    d_in, d_sae = cfg.d_in, cfg.d_sae
    shapes = {"W_enc": (d_in, d_sae), "W_dec": (d_sae, d_in), "b_dec": (d_in,)}
    if cfg.architecture == "gated":
        shapes.update(b_gate=(d_sae,), b_mag=(d_sae,), r_mag=(d_sae,))
    else:
        shapes["b_enc"] = (d_sae,)
    if cfg.architecture == "jumprelu":
        shapes["threshold"] = (d_sae,)
    return shapes


def _shape_formula(cfg: SAEConfig, name: str) -> str:
    return {
        "W_enc": f"d_in={cfg.d_in}, d_sae={cfg.d_sae}",
        "W_dec": f"d_sae={cfg.d_sae}, d_in={cfg.d_in}",
        "b_dec": f"d_in={cfg.d_in}",
    }.get(name, f"d_sae={cfg.d_sae}")


class SAE(nn.Module):
    """An inference SAE. Parameters: ``W_enc [d_in, d_sae]``, ``W_dec [d_sae, d_in]``,
    ``b_dec [d_in]``, and ``b_enc [d_sae]`` (+ ``threshold [d_sae]`` for jumprelu) or
    ``b_gate, b_mag, r_mag [d_sae]`` for gated. Legacy files may add
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
        self.path = path
        self.feature_density = feature_density  # [d_sae] fraction of tokens firing, or None
        dtype = dtype or parse_dtype(cfg.dtype)
        for name, shape in param_shapes(cfg).items():
            self.register_parameter(name, nn.Parameter(torch.zeros(shape, dtype=dtype), requires_grad=False))
        self.finetuning_scaling_factor = (
            nn.Parameter(torch.ones(cfg.d_sae, dtype=dtype), requires_grad=False)
            if finetuning_scaling else None
        )

    d_in = property(lambda self: self.cfg.d_in)
    d_sae = property(lambda self: self.cfg.d_sae)
    hook_name = property(lambda self: self.cfg.hook_name)
    architecture = property(lambda self: self.cfg.architecture)

    @property
    def dtype(self) -> torch.dtype:
        return self.W_enc.dtype

    @property
    def device(self) -> torch.device:
        return self.W_enc.device

    def __repr__(self) -> str:
        return (f"SAE(architecture={self.architecture}, d_in={self.d_in}, d_sae={self.d_sae}, "
                f"hook_name={self.hook_name!r}, path={str(self.path) if self.path else None!r})")

    # -- normalisation ---------------------------------------------------------------------
    def normalize(self, x: torch.Tensor) -> tuple[torch.Tensor, NormUndo]:
        """``x: [..., d_in]`` → (normalised x, what :meth:`decode` needs to undo it)."""
        x = x.to(self.dtype)
        mode = self.cfg.normalize_activations
        if mode == "constant_norm_rescale":
            norm = x.norm(dim=-1, keepdim=True)
            return x * (math.sqrt(self.d_in) / norm), (norm / math.sqrt(self.d_in), 0.0)
        if mode == "layer_norm":
            mu = x.mean(dim=-1, keepdim=True)
            centred = x - mu
            std = centred.std(dim=-1, keepdim=True)
            return centred / (std + LAYER_NORM_EPS), (std, mu)
        if mode == "expected_average_only_in" and self.cfg.norm_scaling_factor is not None:
            factor = float(self.cfg.norm_scaling_factor)
            return x * factor, (1.0 / factor, 0.0)
        return x, None

    # -- encode / decode -------------------------------------------------------------------
    def encode_normalized(self, x: torch.Tensor) -> torch.Tensor:
        """Already-normalised ``x: [..., d_in]`` → feature activations ``[..., d_sae]``."""
        if self.cfg.apply_b_dec_to_input:
            x = x - self.b_dec
        if self.architecture == "gated":
            gate = (x @ self.W_enc + self.b_gate) > 0
            magnitude = torch.relu(x @ (self.W_enc * torch.exp(self.r_mag)) + self.b_mag)
            return gate.to(magnitude.dtype) * magnitude
        pre = x @ self.W_enc + self.b_enc
        if self.architecture == "standard":
            return torch.relu(pre)
        if self.architecture == "jumprelu":
            return torch.relu(pre) * (pre > self.threshold).to(pre.dtype)
        values, indices = pre.topk(self.cfg.k, dim=-1)
        return torch.zeros_like(pre).scatter(-1, indices, torch.relu(values))

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        """``x: [..., d_in]`` (model activations) → ``f: [..., d_sae]``."""
        return self.encode_normalized(self.normalize(x)[0])

    def decode(self, f: torch.Tensor, undo: NormUndo = None) -> torch.Tensor:
        """``f: [..., d_sae]`` → reconstruction ``[..., d_in]``.

        Pass the ``undo`` from :meth:`normalize` to map back to the model's scale for
        per-token normalisations (constant_norm_rescale, layer_norm); without it the output
        stays in the normalised space, except for expected_average_only_in, whose constant
        factor is always undone.
        """
        f = f.to(self.dtype)
        if self.finetuning_scaling_factor is not None:
            f = f * self.finetuning_scaling_factor
        out = f @ self.W_dec + self.b_dec
        factor = self.cfg.norm_scaling_factor
        if undo is None and self.cfg.normalize_activations == "expected_average_only_in" and factor:
            undo = (1.0 / float(factor), 0.0)
        if undo is not None:
            scale, shift = undo
            out = out * scale + shift
        return out

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Reconstruction of ``x: [..., d_in]`` → ``[..., d_in]`` (normalisation undone)."""
        x_normalized, undo = self.normalize(x)
        return self.decode(self.encode_normalized(x_normalized), undo)


# -- loading -----------------------------------------------------------------------------------
def _read_cfg(folder: Path) -> SAEConfig:
    cfg_path = folder / CFG_FILENAME
    if not cfg_path.is_file():
        found = ", ".join(sorted(p.name for p in folder.iterdir())[:10]) or "nothing"
        raise LoadError(f"SAE folder {folder} has no {CFG_FILENAME} (found: {found})")
    try:
        raw = json.loads(cfg_path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise LoadError(f"{cfg_path}: not valid JSON ({exc})") from None
    return SAEConfig.from_dict(raw, source=str(cfg_path))


def _read_tensors(path: Path) -> dict[str, torch.Tensor]:
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    try:
        return load_file(str(path), device="cpu")
    except (SafetensorError, OSError, ValueError) as exc:
        raise LoadError(f"{path}: not a readable safetensors file ({exc})") from None


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
    """Load an SAELens folder; every problem is a :class:`LoadError`, nothing half-loaded.

    ``dtype`` overrides the cfg's dtype (e.g. to match the model).
    """
    folder = Path(path).expanduser()
    if not folder.is_dir():
        raise LoadError(f"SAE folder {folder} does not exist")
    cfg = _read_cfg(folder)
    weights_path = folder / WEIGHTS_FILENAME
    if not weights_path.is_file():
        raise LoadError(f"SAE folder {folder} has no {WEIGHTS_FILENAME}")
    state = validate_tensors(_read_tensors(weights_path), cfg, str(weights_path))

    density = None
    sparsity_path = folder / SPARSITY_FILENAME
    if sparsity_path.is_file():
        sparsity = _read_tensors(sparsity_path)
        if "sparsity" not in sparsity:
            raise LoadError(f"{sparsity_path}: tensor sparsity is missing (found {', '.join(sparsity)})")
        log_density = sparsity["sparsity"].float()
        if tuple(log_density.shape) != (cfg.d_sae,):
            raise LoadError(
                f"{sparsity_path}: sparsity has shape {tuple(log_density.shape)} but "
                f"{CFG_FILENAME} says d_sae={cfg.d_sae} → expected ({cfg.d_sae},)"
            )
        density = torch.pow(10.0, log_density)  # -inf (never fired) → 0

    target_dtype = parse_dtype(dtype) if dtype is not None else parse_dtype(cfg.dtype)
    sae = SAE(cfg, path=folder, feature_density=density, dtype=target_dtype,
              finetuning_scaling="finetuning_scaling_factor" in state)
    sae.load_state_dict(state)
    return sae.to(device=resolve_device(device))


def save_sae(
    sae_or_tensors: SAE | Mapping[str, torch.Tensor],
    cfg: SAEConfig,
    path: str | Path,
    sparsity: torch.Tensor | None = None,
) -> Path:
    """Write ``cfg.json`` (v6 layout), ``sae_weights.safetensors`` and, when ``sparsity``
    (log10 density ``[d_sae]``) is given or the SAE knows its density, ``sparsity.safetensors``."""
    from safetensors.torch import save_file

    folder = Path(path)
    if isinstance(sae_or_tensors, SAE):
        tensors = dict(sae_or_tensors.state_dict())
        if sparsity is None and sae_or_tensors.feature_density is not None:
            sparsity = torch.log10(sae_or_tensors.feature_density)
    else:
        tensors = dict(sae_or_tensors)
    tensors = validate_tensors(tensors, cfg, f"save_sae({folder})")
    folder.mkdir(parents=True, exist_ok=True)
    save_file({k: v.detach().to("cpu").contiguous() for k, v in tensors.items()}, str(folder / WEIGHTS_FILENAME))
    if sparsity is not None:
        save_file({"sparsity": sparsity.detach().float().cpu().contiguous()}, str(folder / SPARSITY_FILENAME))
    (folder / CFG_FILENAME).write_text(json.dumps(cfg.to_dict(), indent=2) + "\n", encoding="utf-8")
    return folder


def check_sae_fits_model(sae: SAE, lm: Any) -> int:
    """Check ``sae.d_in`` equals the model's width at ``sae.hook_name``; returns that width.

    resid/mlp/attn hooks have width ``d_model``; a plain module path is probed with a
    one-token forward pass.
    """
    from app.ml.hooks import TL_HOOK_KINDS, capture_activations, resolve_hook

    point = resolve_hook(lm, sae.hook_name)
    if point.name.rsplit(".", 1)[-1] in TL_HOOK_KINDS and point.name.startswith("blocks."):
        width = lm.d_model
    else:
        token = lm.bos_token_id if lm.bos_token_id is not None else 0
        ids = torch.tensor([[token]], device=lm.device)
        width = int(capture_activations(lm, ids, hook_names=[sae.hook_name])[sae.hook_name].shape[-1])
    if width != sae.d_in:
        raise LoadError(
            f"SAE {sae.path or '(in memory)'} d_in={sae.d_in} but {sae.hook_name} on {lm.name} "
            f"has width {width}"
        )
    return width
