"""Model-side code: loading HF models and SAEs of every supported format, hook points,
encode/decode.

torch is imported here (and under app.precompute) only. The names below load on first use, so
``import app.ml.sae_config`` (torch-free) does not pull torch in; transformers is imported
lazily when a model is loaded.
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {
    "resolve_device": "app.ml.device", "resolve_dtype": "app.ml.device",
    "LoadError": "app.ml.errors",
    "HookPoint": "app.ml.hooks", "capture_activations": "app.ml.hooks", "hooked": "app.ml.hooks",
    "resolve_hook": "app.ml.hooks",
    "LanguageModel": "app.ml.lm", "load_language_model": "app.ml.lm", "unembed": "app.ml.lm",
    "SAE": "app.ml.sae", "check_sae_fits_model": "app.ml.sae", "load_sae": "app.ml.sae", "save_sae": "app.ml.sae",
    "SAEConfig": "app.ml.sae_config", "summarize": "app.ml.sae_config",
}
__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name not in _EXPORTS:
        raise AttributeError(f"module 'app.ml' has no attribute {name!r}")
    return getattr(importlib.import_module(_EXPORTS[name]), name)
