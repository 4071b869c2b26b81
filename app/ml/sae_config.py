"""SAE configuration: SAELens ``cfg.json`` in the v6 layout (``metadata: {...}``) and the legacy
flat one, validated against the architecture registry; plus a JSON-safe summary for display.

v6 (SAELens ≥ 6)::

    {"architecture": "jumprelu", "d_in": 768, "d_sae": 24576, "dtype": "float32",
     "apply_b_dec_to_input": true, "normalize_activations": "none", "reshape_activations": "none",
     "metadata": {"model_name": "gpt2", "hook_name": "blocks.8.hook_resid_pre", "context_size": 128,
                  "prepend_bos": true, "hook_head_index": null, "dataset_path": "...",
                  "neuronpedia_id": "gpt2-small/8-res-jb", "sae_lens_version": "6.54.12", ...}}

Transcoders add ``d_out`` and ``metadata.hook_name_out``; topk/abstopk add ``k`` and
``rescale_acts_by_decoder_norm``; matching_pursuit and temporal add their own fields
(``SAEConfig.arch_cfg``). Legacy (SAELens < 6): the same facts flat at the top level, with
``hook_point`` (or ``hook_name``), ``hook_point_layer`` (or ``hook_layer``),
``activation_fn_str`` ("relu" | "topk" with ``activation_fn_kwargs: {k}``), ``architecture``
possibly missing (= standard), ``normalize_activations`` possibly a bool (True =
expected_average_only_in), ``reshape_activations`` defaulting to hook_z on hook_z hooks.

``normalize_activations = "expected_average_only_in"`` means the SAE was trained on
activations multiplied by one dataset-wide constant. SAELens keeps that constant outside
cfg.json (in its release table) and folds it into the weights; here it is read from
``norm_scaling_factor`` in cfg.json when present, otherwise activations are used as they are
(as SAELens' ``load_from_disk`` does).

This module does not import torch (:func:`summarize` serves torch-free callers); validating an
architecture imports the registry (:mod:`app.ml.architectures`) on first use.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from app.ml.errors import LoadError

NORMALIZATIONS = ("none", "constant_norm_rescale", "layer_norm", "expected_average_only_in",
                  "covariance_whitening", "constant_scalar_rescale")
RESHAPES = ("none", "hook_z")
DTYPE_NAMES = ("float32", "float16", "bfloat16")
FORMATS = ("saelens", "sparsify", "gemmascope-npz", "dictionary_learning")
# Keys this module interprets; everything else in cfg.json is kept in SAEConfig.extra.
_KNOWN_TOP = {
    "architecture", "d_in", "d_sae", "d_out", "dtype", "device", "apply_b_dec_to_input",
    "normalize_activations", "reshape_activations", "k", "rescale_acts_by_decoder_norm", "metadata", "meta",
    "hook_name", "hook_point", "hook_layer", "hook_point_layer", "hook_head_index", "hook_point_head_index",
    "hook_name_out", "model_name", "context_size", "prepend_bos", "activation_fn_str", "activation_fn",
    "activation_fn_kwargs", "norm_scaling_factor",
}
_KNOWN_META = {"model_name", "hook_name", "hook_layer", "hook_head_index", "context_size", "prepend_bos",
               "hook_name_out"}
DEFAULT_SAELENS_VERSION = "6.0.0"  # written when the source file had no v6 version of its own


def layer_of_hook_name(hook_name: str) -> int | None:
    """``blocks.5.hook_resid_post`` → 5; ``model.layers.3.mlp`` → 3; no number → None."""
    match = re.search(r"(?:^|\.)(?:blocks|h|layers)\.(\d+)(?:\.|$)", hook_name)
    return int(match.group(1)) if match else None


def _version_tuple(version: Any) -> tuple[int, ...] | None:
    match = re.match(r"^(\d+)\.(\d+)\.(\d+)", str(version or ""))
    return tuple(int(g) for g in match.groups()) if match else None


def _architecture(name: str, source: str):
    from app.ml.architectures import get  # the registry imports torch; configs may be read without it

    return get(name, source)


@dataclass(frozen=True)
class SAEConfig:
    """What an SAE is, where it reads (``hook_name``) and writes (``hook_name_out``); validated at
    construction (LoadError). ``hook_name_out`` and ``d_out`` default to ``hook_name`` / ``d_in``."""

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
    k: int | None = None  # topk / abstopk: features kept per token
    dtype: str = "float32"
    norm_scaling_factor: float | None = None  # expected_average_only_in only
    hook_head_index: int | None = None
    hook_name_out: str | None = None
    d_out: int | None = None
    rescale_acts_by_decoder_norm: bool = False  # topk / abstopk
    reshape_activations: str = "none"
    arch_cfg: dict[str, Any] = field(default_factory=dict, hash=False)  # matching_pursuit, temporal fields
    extra: dict[str, Any] = field(default_factory=dict, compare=False)
    format: str = field(default="saelens", compare=False)
    source: str = field(default="cfg.json", compare=False, repr=False)

    def __post_init__(self) -> None:
        bad = self.bad
        arch = _architecture(self.architecture, self.source)
        for name in ("d_in", "d_sae"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
                raise bad(name, "a positive integer", value)
        if not isinstance(self.hook_name, str) or not self.hook_name:
            raise bad("hook_name", "a non-empty string", self.hook_name)
        if arch.transcoder:
            if self.hook_name_out is None or self.d_out is None:
                missing = "metadata.hook_name_out" if self.hook_name_out is None else "d_out"
                raise LoadError(f"{self.source}: required field {missing} is missing for "
                                f"architecture={self.architecture} (a transcoder writes to another hook)")
        else:
            for name, same in (("hook_name_out", self.hook_name), ("d_out", self.d_in)):
                value = getattr(self, name)
                if value not in (None, same):
                    raise bad(name, f"absent or equal to {same!r} for architecture={self.architecture}", value)
            object.__setattr__(self, "hook_name_out", self.hook_name)
            object.__setattr__(self, "d_out", self.d_in)
        if not isinstance(self.hook_name_out, str) or not self.hook_name_out:
            raise bad("hook_name_out", "a non-empty string", self.hook_name_out)
        if isinstance(self.d_out, bool) or not isinstance(self.d_out, int) or self.d_out <= 0:
            raise bad("d_out", "a positive integer", self.d_out)
        if self.normalize_activations not in arch.normalizations:
            raise bad("normalize_activations", f"one of {', '.join(arch.normalizations)}", self.normalize_activations)
        if self.reshape_activations not in RESHAPES:
            raise bad("reshape_activations", f"one of {', '.join(RESHAPES)}", self.reshape_activations)
        if self.dtype not in DTYPE_NAMES:
            raise bad("dtype", f"one of {', '.join(DTYPE_NAMES)}", self.dtype)
        if arch.needs_k:
            if isinstance(self.k, bool) or not isinstance(self.k, int) or not 1 <= self.k <= self.d_sae:
                raise bad("k", f"an integer in 1..d_sae={self.d_sae} for architecture={self.architecture}", self.k)
        elif self.k is not None:
            raise bad("k", f"absent for architecture={self.architecture}", self.k)
        if self.rescale_acts_by_decoder_norm and not arch.has_rescale:
            raise bad("rescale_acts_by_decoder_norm", f"false for architecture={self.architecture}", True)
        if self.norm_scaling_factor is not None and not (
            isinstance(self.norm_scaling_factor, (int, float)) and self.norm_scaling_factor > 0
        ):
            raise bad("norm_scaling_factor", "a positive number", self.norm_scaling_factor)
        if self.hook_layer is not None and (isinstance(self.hook_layer, bool) or not isinstance(self.hook_layer, int)):
            raise bad("hook_layer", "an integer or null", self.hook_layer)
        object.__setattr__(self, "arch_cfg", {**arch.cfg_fields, **self.arch_cfg})
        unknown = sorted(set(self.arch_cfg) - set(arch.cfg_fields))
        if unknown:
            raise bad(unknown[0], f"absent for architecture={self.architecture}", self.arch_cfg[unknown[0]])
        arch.check(self, bad)

    def bad(self, field_name: str, expected: str, value: Any) -> LoadError:
        return LoadError(f"{self.source}: {field_name} must be {expected}, got {value!r}")

    @property
    def is_transcoder(self) -> bool:
        return _architecture(self.architecture, self.source).transcoder

    def meta(self, key: str) -> Any:
        """A metadata fact kept verbatim (v6 ``metadata.key`` first, then a legacy flat ``key``)."""
        value = self.extra.get(f"metadata.{key}")
        return value if value is not None else self.extra.get(key)

    @property
    def sae_lens_version(self) -> str | None:
        """The SAELens version the source file names (``sae_lens_version``, else the training one)."""
        version = self.meta("sae_lens_version") or self.meta("sae_lens_training_version")
        return None if version is None else str(version)

    # -- reading -------------------------------------------------------------------------
    @classmethod
    def from_dict(cls, d: dict[str, Any], source: str = "cfg.json", format: str = "saelens") -> SAEConfig:
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
        if architecture in ("topk", "abstopk") and k is None:
            k = (d.get("activation_fn_kwargs") or {}).get("k")
        if architecture == "standard" and activation_fn != "relu":
            raise LoadError(f"{source}: activation_fn_str must be relu or topk, got {activation_fn!r}")
        arch = _architecture(architecture, source)

        default_reshape = "none" if is_v6 else ("hook_z" if "hook_z" in str(hook_name) else "none")
        reshape = d.get("reshape_activations") or default_reshape
        normalize = d.get("normalize_activations", "none")
        if isinstance(normalize, bool) or normalize is None:
            normalize = "expected_average_only_in" if normalize else "none"
        hook_layer = pick("hook_layer", "hook_point_layer")
        dtype = str(d.get("dtype") or "float32").removeprefix("torch.")
        known = _KNOWN_TOP | set(arch.cfg_fields)
        extra = {key: value for key, value in d.items() if key not in known}
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
            k=k if arch.needs_k else d.get("k"),
            dtype=dtype,
            norm_scaling_factor=d.get("norm_scaling_factor"),
            hook_head_index=pick("hook_head_index", "hook_point_head_index"),
            hook_name_out=pick("hook_name_out"),
            d_out=d.get("d_out"),
            rescale_acts_by_decoder_norm=bool(d.get("rescale_acts_by_decoder_norm", False)) and arch.has_rescale,
            reshape_activations=reshape,
            arch_cfg={name: d[name] for name in arch.cfg_fields if name in d},
            extra=extra,
            format=format,
            source=source,
        )

    # -- writing -------------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        """The v6 cfg.json layout (what :func:`app.ml.sae.save_sae` writes)."""
        arch = _architecture(self.architecture, self.source)
        out: dict[str, Any] = {
            "architecture": self.architecture,
            "d_in": self.d_in,
            "d_sae": self.d_sae,
            "dtype": self.dtype,
            "device": "cpu",
            "apply_b_dec_to_input": self.apply_b_dec_to_input,
            "normalize_activations": self.normalize_activations,
            "reshape_activations": self.reshape_activations,
        }
        if self.k is not None:
            out["k"] = self.k
        if arch.has_rescale:
            out["rescale_acts_by_decoder_norm"] = self.rescale_acts_by_decoder_norm
        if arch.transcoder:
            out["d_out"] = self.d_out
        out.update(self.arch_cfg)
        if self.norm_scaling_factor is not None:
            out["norm_scaling_factor"] = self.norm_scaling_factor
        version = self.meta("sae_lens_version")
        metadata = {
            "model_name": self.model_name,
            "hook_name": self.hook_name,
            "hook_layer": self.hook_layer,
            "hook_head_index": self.hook_head_index,
            "prepend_bos": self.prepend_bos,
            "context_size": self.context_size,
            # SAELens reads cfg.json files without a ≥ 6 version as pre-6 and renames keys.
            "sae_lens_version": version if (_version_tuple(version) or (0,)) >= (6, 0, 0)
            else DEFAULT_SAELENS_VERSION,
        }
        if arch.transcoder:
            metadata["hook_name_out"] = self.hook_name_out
        for key, value in self.extra.items():
            if key.startswith("metadata."):
                metadata.setdefault(key.removeprefix("metadata."), value)
            else:
                out.setdefault(key, value)
        out["metadata"] = metadata
        return out


def _json_safe(value: Any) -> Any:
    if value is None or isinstance(value, (bool, int, str)):
        return value
    if isinstance(value, float):
        return value if value == value and abs(value) != float("inf") else None
    if isinstance(value, (list, tuple)):
        return [_json_safe(v) for v in value]
    if isinstance(value, dict):
        return {str(k): _json_safe(v) for k, v in value.items()}
    return str(value)


def summarize(cfg: SAEConfig, stats: dict[str, Any] | None = None) -> dict[str, Any]:
    """A JSON-safe description of ``cfg`` for the source page (Neuronpedia's SAE card).

    ``stats`` adds what only the tensors know (e.g. ``{"threshold": {"mean", "min", "max"}}``,
    computed by :meth:`app.ml.sae.SAE.summary`). Keys are always present; unknown facts are None.
    """
    training_tokens = cfg.meta("training_tokens") or cfg.meta("total_training_tokens")
    out = {
        "format": cfg.format,
        "architecture": cfg.architecture,
        "d_in": cfg.d_in,
        "d_sae": cfg.d_sae,
        "d_out": cfg.d_out,
        "hook_name": cfg.hook_name,  # reads at
        "hook_name_out": cfg.hook_name_out,  # writes to
        "is_transcoder": cfg.is_transcoder,
        "hook_layer": cfg.hook_layer,
        "hook_head_index": cfg.hook_head_index,
        "k": cfg.k,
        "rescale_acts_by_decoder_norm": cfg.rescale_acts_by_decoder_norm,
        "threshold": None,
        "normalize_activations": cfg.normalize_activations,
        "norm_scaling_factor": cfg.norm_scaling_factor,
        "apply_b_dec_to_input": cfg.apply_b_dec_to_input,
        "reshape_activations": cfg.reshape_activations,
        "context_size": cfg.context_size,
        "prepend_bos": cfg.prepend_bos,
        "dtype": cfg.dtype,
        "model_name": cfg.model_name,
        "dataset_path": cfg.meta("dataset_path"),
        "training_tokens": training_tokens,
        "neuronpedia_id": cfg.meta("neuronpedia_id"),
        "sae_lens_version": cfg.sae_lens_version,
        "architecture_params": dict(cfg.arch_cfg),
    }
    out.update(stats or {})
    return _json_safe(out)
