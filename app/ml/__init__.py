"""Model-side code: loading HF models and SAELens SAEs, hook points, encode/decode.

torch is imported here (and under app.precompute) only; transformers is imported lazily when
a model is loaded.
"""

from app.ml.device import resolve_device, resolve_dtype
from app.ml.errors import LoadError
from app.ml.hooks import HookPoint, capture_activations, hooked, resolve_hook
from app.ml.lm import LanguageModel, load_language_model, unembed
from app.ml.sae import SAE, check_sae_fits_model, load_sae, save_sae
from app.ml.sae_config import ARCHITECTURES, SAEConfig

__all__ = [
    "ARCHITECTURES",
    "HookPoint",
    "LanguageModel",
    "LoadError",
    "SAE",
    "SAEConfig",
    "capture_activations",
    "check_sae_fits_model",
    "hooked",
    "load_language_model",
    "load_sae",
    "resolve_device",
    "resolve_dtype",
    "resolve_hook",
    "save_sae",
    "unembed",
]
