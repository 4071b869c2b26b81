"""SAELens ``cfg.json``: both the v6 layout (``metadata: {...}``) and the legacy flat one.

v6 (SAELens ≥ 6)::

    {"architecture": "jumprelu", "d_in": 768, "d_sae": 24576, "dtype": "float32",
     "apply_b_dec_to_input": true, "normalize_activations": "none", "reshape_activations": "none",
     "metadata": {"model_name": "gpt2", "hook_name": "blocks.8.hook_resid_pre", "context_size": 128,
                  "prepend_bos": true, "hook_head_index": null, "dataset_path": "...", ...}}

Legacy (SAELens < 6): the same facts flat at the top level, with ``hook_point`` (or
``hook_name``), ``hook_point_layer`` (or ``hook_layer``), ``activation_fn_str`` ("relu" |
"topk" with ``activation_fn_kwargs: {k}``), ``architecture`` possibly missing (= standard),
``normalize_activations`` possibly a bool (True = expected_average_only_in).

``normalize_activations = "expected_average_only_in"`` means the SAE was trained on
activations multiplied by one dataset-wide constant. SAELens keeps that constant outside
cfg.json (in its release table) and folds it into the weights; here it is read from
``norm_scaling_factor`` in cfg.json when present, otherwise activations are used as they are.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from app.ml.errors import LoadError

ARCHITECTURES = ("standard", "jumprelu", "topk", "gated")
NORMALIZATIONS = ("none", "constant_norm_rescale", "layer_norm", "expected_average_only_in")
DTYPE_NAMES = ("float32", "float16", "bfloat16")
# Keys this module interprets; everything else in cfg.json is kept in SAEConfig.extra.
_KNOWN_TOP = {
    "architecture", "d_in", "d_sae", "dtype", "device", "apply_b_dec_to_input",
    "normalize_activations", "reshape_activations", "k", "metadata", "meta", "hook_name",
    "hook_point", "hook_layer", "hook_point_layer", "hook_head_index", "hook_point_head_index",
    "model_name", "context_size", "prepend_bos", "activation_fn_str", "activation_fn",
    "activation_fn_kwargs", "norm_scaling_factor",
}
_KNOWN_META = {"model_name", "hook_name", "hook_layer", "hook_head_index", "context_size", "prepend_bos"}


def layer_of_hook_name(hook_name: str) -> int | None:
    """``blocks.5.hook_resid_post`` → 5; ``model.layers.3.mlp`` → 3; no number → None."""
    match = re.search(r"(?:^|\.)(?:blocks|h|layers)\.(\d+)(?:\.|$)", hook_name)
    return int(match.group(1)) if match else None


@dataclass(frozen=True)
class SAEConfig:
    """What an SAE is and where it reads from; validated at construction (LoadError)."""

    architecture: str
    d_in: int
    d_sae: int
    hook_name: str
    hook_layer: int | None = None
    model_name: str | None = None
    context_size: int | None = None
    prepend_bos: bool = True
    apply_b_dec_to_input: bool = True
    normalize_activations: str = "none"
    k: int | None = None  # topk only: features kept per token
    dtype: str = "float32"
    norm_scaling_factor: float | None = None  # expected_average_only_in only
    hook_head_index: int | None = None
    extra: dict[str, Any] = field(default_factory=dict, compare=False)
    source: str = field(default="cfg.json", compare=False, repr=False)

    def __post_init__(self) -> None:
        def bad(field_name: str, expected: str, value: Any) -> LoadError:
            return LoadError(f"{self.source}: {field_name} must be {expected}, got {value!r}")

        if self.architecture not in ARCHITECTURES:
            raise bad("architecture", f"one of {', '.join(ARCHITECTURES)}", self.architecture)
        for name in ("d_in", "d_sae"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
                raise bad(name, "a positive integer", value)
        if not isinstance(self.hook_name, str) or not self.hook_name:
            raise bad("hook_name", "a non-empty string", self.hook_name)
        if self.normalize_activations not in NORMALIZATIONS:
            raise bad("normalize_activations", f"one of {', '.join(NORMALIZATIONS)}",
                      self.normalize_activations)
        if self.dtype not in DTYPE_NAMES:
            raise bad("dtype", f"one of {', '.join(DTYPE_NAMES)}", self.dtype)
        if self.architecture == "topk":
            if isinstance(self.k, bool) or not isinstance(self.k, int) or not 1 <= self.k <= self.d_sae:
                raise bad("k", f"an integer in 1..d_sae={self.d_sae} for architecture=topk", self.k)
        elif self.k is not None:
            raise bad("k", f"absent for architecture={self.architecture}", self.k)
        if self.norm_scaling_factor is not None and not (
            isinstance(self.norm_scaling_factor, (int, float)) and self.norm_scaling_factor > 0
        ):
            raise bad("norm_scaling_factor", "a positive number", self.norm_scaling_factor)
        if self.hook_layer is not None and (isinstance(self.hook_layer, bool) or not isinstance(self.hook_layer, int)):
            raise bad("hook_layer", "an integer or null", self.hook_layer)

    # -- reading -------------------------------------------------------------------------
    @classmethod
    def from_dict(cls, d: dict[str, Any], source: str = "cfg.json") -> SAEConfig:
        """Parse a v6 or legacy SAELens cfg.json dict (see the module docstring)."""
        if not isinstance(d, dict):
            raise LoadError(f"{source}: expected a JSON object, got {type(d).__name__}")
        meta = d.get("metadata", d.get("meta"))
        is_v6 = isinstance(meta, dict)
        meta = meta if is_v6 else {}

        def pick(*names: str, default: Any = None) -> Any:
            for name in names:
                if meta.get(name) is not None:
                    return meta[name]
                if d.get(name) is not None:
                    return d[name]
            return default

        for required in ("d_in", "d_sae"):
            if required not in d:
                raise LoadError(f"{source}: required field {required!r} is missing")
        hook_name = pick("hook_name", "hook_point")
        if hook_name is None:
            where = "metadata.hook_name" if is_v6 else "hook_name (or hook_point)"
            raise LoadError(f"{source}: required field {where} is missing")

        architecture = d.get("architecture") or "standard"
        activation_fn = d.get("activation_fn_str") or d.get("activation_fn") or "relu"
        k = d.get("k")
        if architecture == "standard" and activation_fn == "topk":
            architecture = "topk"  # legacy: topk was an activation of the standard SAE
        if architecture == "topk" and k is None:
            k = (d.get("activation_fn_kwargs") or {}).get("k")
        if architecture == "standard" and activation_fn != "relu":
            raise LoadError(
                f"{source}: activation_fn_str must be relu or topk, got {activation_fn!r}"
            )
        if architecture not in ARCHITECTURES:
            raise LoadError(
                f"{source}: architecture {architecture!r} is not supported "
                f"(known: {', '.join(ARCHITECTURES)})"
            )
        if (reshape := d.get("reshape_activations", "none")) not in (None, "none"):
            raise LoadError(f"{source}: reshape_activations must be 'none', got {reshape!r}")

        normalize = d.get("normalize_activations", "none")
        if isinstance(normalize, bool) or normalize is None:
            normalize = "expected_average_only_in" if normalize else "none"
        hook_layer = pick("hook_layer", "hook_point_layer")
        dtype = str(d.get("dtype") or "float32").removeprefix("torch.")
        extra = {key: value for key, value in d.items() if key not in _KNOWN_TOP}
        extra.update({f"metadata.{key}": v for key, v in meta.items() if key not in _KNOWN_META})
        return cls(
            architecture=architecture,
            d_in=d["d_in"],
            d_sae=d["d_sae"],
            hook_name=hook_name,
            hook_layer=hook_layer if hook_layer is not None else layer_of_hook_name(hook_name),
            model_name=pick("model_name"),
            context_size=pick("context_size"),
            prepend_bos=bool(pick("prepend_bos", default=True)),
            apply_b_dec_to_input=bool(d.get("apply_b_dec_to_input", True)),
            normalize_activations=normalize,
            k=k,
            dtype=dtype,
            norm_scaling_factor=d.get("norm_scaling_factor"),
            hook_head_index=pick("hook_head_index", "hook_point_head_index"),
            extra=extra,
            source=source,
        )

    # -- writing -------------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        """The v6 cfg.json layout (what :func:`app.ml.sae.save_sae` writes)."""
        out: dict[str, Any] = {
            "architecture": self.architecture,
            "d_in": self.d_in,
            "d_sae": self.d_sae,
            "dtype": self.dtype,
            "device": "cpu",
            "apply_b_dec_to_input": self.apply_b_dec_to_input,
            "normalize_activations": self.normalize_activations,
            "reshape_activations": "none",
        }
        if self.k is not None:
            out["k"] = self.k
        if self.norm_scaling_factor is not None:
            out["norm_scaling_factor"] = self.norm_scaling_factor
        metadata = {
            "model_name": self.model_name,
            "hook_name": self.hook_name,
            "hook_layer": self.hook_layer,
            "hook_head_index": self.hook_head_index,
            "prepend_bos": self.prepend_bos,
            "context_size": self.context_size,
            # SAELens reads cfg.json files without this version as pre-6 and renames keys.
            "sae_lens_version": "6.0.0",
        }
        for key, value in self.extra.items():
            if key.startswith("metadata."):
                metadata.setdefault(key.removeprefix("metadata."), value)
            else:
                out.setdefault(key, value)
        out["metadata"] = metadata
        return out
