"""Loading a Hugging Face causal language model and its tokenizer.

transformers is imported inside :func:`load_language_model` so that importing ``app.ml`` stays
cheap (the web process imports it before it knows whether it will load a model).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

from app.ml.device import resolve_device, resolve_dtype
from app.ml.errors import LoadError

# Final norm before the unembedding: GPT-2, GPT-NeoX/Pythia, Llama/Gemma/Qwen/Mistral.
_FINAL_NORM_PATHS = ("transformer.ln_f", "gpt_neox.final_layer_norm", "model.norm")
# Unembedding modules (NeoX calls it embed_out before transformers 5, lm_head after).
_UNEMBED_PATHS = ("lm_head", "embed_out")


@dataclass
class LanguageModel:
    """A causal LM in eval mode together with its tokenizer.

    ``name`` is the hub id or folder it was loaded from (what the SAE's ``model_name`` is
    compared against).
    """

    model: Any  # transformers.PreTrainedModel (AutoModelForCausalLM), eval mode
    tokenizer: Any  # transformers.PreTrainedTokenizerBase
    name: str
    device: torch.device
    dtype: torch.dtype

    @property
    def config(self) -> Any:
        cfg = self.model.config
        return cfg.get_text_config() if hasattr(cfg, "get_text_config") else cfg

    @property
    def d_model(self) -> int:
        """Width of the residual stream."""
        return int(self.config.hidden_size)

    @property
    def n_layers(self) -> int:
        return int(self.config.num_hidden_layers)

    @property
    def max_positions(self) -> int | None:
        """The longest sequence the model accepts (learned or rotary position limit), or None when
        its config does not say."""
        for name in ("max_position_embeddings", "n_positions", "n_ctx"):
            value = getattr(self.config, name, None)
            if isinstance(value, int) and not isinstance(value, bool) and value > 0:
                return value
        return None

    @property
    def vocab_size(self) -> int:
        """Rows of the unembedding (can exceed ``len(tokenizer)`` because of padding)."""
        return int(self.model.get_output_embeddings().weight.shape[0])

    @property
    def bos_token_id(self) -> int | None:
        """BOS id, or EOS where the tokenizer has no BOS (GPT-2 and Pythia use one token)."""
        tok = self.tokenizer
        return tok.bos_token_id if tok.bos_token_id is not None else tok.eos_token_id

    @property
    def architecture(self) -> str:
        """``config.model_type``: "gpt2", "gpt_neox", "llama", "gemma2", ..."""
        return str(self.model.config.model_type)


def _is_hub_offline() -> bool:
    return os.environ.get("HF_HUB_OFFLINE", "").strip().lower() in {"1", "true", "yes", "on"}


def _model_source(name_or_path: str, local_files_only: bool | None) -> tuple[str, bool, bool]:
    """(what to pass to from_pretrained, local_files_only, whether it is a folder)."""
    path = Path(name_or_path).expanduser()
    # Hub ids are "name" or "owner/name"; more slashes or a leading ./~ mean a folder.
    looks_like_path = (
        path.exists() or name_or_path.startswith((".", "/", "~")) or name_or_path.count("/") > 1
    )
    if looks_like_path:
        if not path.is_dir():
            raise LoadError(f"model folder {path} does not exist")
        if not (path / "config.json").is_file():
            found = sorted(p.name for p in path.iterdir())[:10]
            raise LoadError(
                f"model folder {path} has no config.json (found: {', '.join(found) or 'nothing'})"
            )
        return str(path), True, True
    return name_or_path, _is_hub_offline() if local_files_only is None else local_files_only, False


def _load_error(name_or_path: str, looks_like_path: bool, local_files_only: bool, exc: Exception) -> LoadError:
    where = "folder" if looks_like_path else "hub id (offline)" if local_files_only else "hub id"
    return LoadError(f"model {name_or_path!r} ({where}) could not be loaded: {exc}")


def load_tokenizer(name_or_path: str, local_files_only: bool | None = None) -> Any:
    """The model's ``AutoTokenizer`` alone (``pad_token = eos`` when it has none). Importing the
    model's code takes seconds; a caller with text to tokenize can start on it meanwhile and pass
    the tokenizer to :func:`load_language_model`."""
    source, local_files_only, looks_like_path = _model_source(name_or_path, local_files_only)
    from transformers import AutoTokenizer

    try:
        tokenizer = AutoTokenizer.from_pretrained(source, local_files_only=local_files_only)
    except (OSError, ValueError) as exc:
        raise _load_error(name_or_path, looks_like_path, local_files_only, exc) from exc
    if tokenizer.pad_token_id is None and tokenizer.eos_token_id is not None:
        tokenizer.pad_token = tokenizer.eos_token
    return tokenizer


def load_language_model(
    name_or_path: str,
    device: str | torch.device = "auto",
    dtype: str | torch.dtype = "float32",
    local_files_only: bool | None = None,
    tokenizer: Any = None,
) -> LanguageModel:
    """Load ``AutoModelForCausalLM`` + ``AutoTokenizer`` from a folder or a hub id.

    A string that looks like a path (exists, starts with ``.``/``/``/``~``) must be a folder
    holding ``config.json``; anything else is treated as a hub id. ``local_files_only``
    defaults to True when ``HF_HUB_OFFLINE`` is set. The tokenizer gets ``pad_token = eos``
    when it has none, so batches can be padded; pass ``tokenizer`` (from :func:`load_tokenizer`)
    when it is already loaded.
    """
    torch_device = resolve_device(device)
    torch_dtype = resolve_dtype(dtype, torch_device)
    if tokenizer is None:
        tokenizer = load_tokenizer(name_or_path, local_files_only)
    source, local_files_only, looks_like_path = _model_source(name_or_path, local_files_only)

    from transformers import AutoModelForCausalLM

    try:
        model = AutoModelForCausalLM.from_pretrained(
            source, dtype=torch_dtype, local_files_only=local_files_only
        )
    except (OSError, ValueError) as exc:
        raise _load_error(name_or_path, looks_like_path, local_files_only, exc) from exc
    model.to(torch_device)
    model.eval()
    return LanguageModel(
        model=model, tokenizer=tokenizer, name=name_or_path, device=torch_device, dtype=torch_dtype
    )


def _get(model: nn.Module, path: str) -> nn.Module | None:
    try:
        return model.get_submodule(path)
    except AttributeError:
        return None


def _first_module(model: nn.Module, paths: tuple[str, ...]) -> nn.Module | None:
    return next((m for m in (_get(model, p) for p in paths) if m is not None), None)


def unembed(lm: LanguageModel | nn.Module) -> tuple[nn.Module | None, torch.Tensor]:
    """The final norm (or None) and ``W_U: [d_model, d_vocab]`` used for logit effects.

    ``logits ≈ final_norm(resid) @ W_U``; for a decoder direction ``W_dec[i]: [d_model]`` the
    direct logit effect is ``W_dec[i] @ W_U``; callers decide whether and how to apply the norm.
    """
    model = lm.model if isinstance(lm, LanguageModel) else lm
    norm = _first_module(model, _FINAL_NORM_PATHS)
    head = model.get_output_embeddings() if hasattr(model, "get_output_embeddings") else None
    head = head if head is not None else _first_module(model, _UNEMBED_PATHS)
    if head is None:
        raise LoadError(
            f"{type(model).__name__}: no unembedding found (looked for get_output_embeddings(), "
            + ", ".join(_UNEMBED_PATHS) + ")"
        )
    # The weight is stored [d_vocab, d_model] in every family.
    return norm, head.weight.detach().T


def new_kv_cache(lm: LanguageModel) -> dict[str, Any]:
    """The keyword argument that hands the model a fresh, empty KV cache (a ``transformers.DynamicCache``)
    for incremental decoding: ``model(input_ids=..., use_cache=True, **new_kv_cache(lm))``; the cache object
    grows in place with every call.

    transformers 5.24 renamed the forward argument ``past_key_values`` to ``cache`` (the old name warns and
    goes away in 5.40); the name is read from the model's ``forward`` signature, so either spelling works.
    """
    import inspect

    from transformers import DynamicCache

    cache = DynamicCache(config=lm.model.config)
    params = inspect.signature(type(lm.model).forward).parameters
    return {"cache": cache} if "cache" in params else {"past_key_values": cache}
