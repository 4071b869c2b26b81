"""The model bundle a server holds: one language model and the SAEs of its sources.

Loaded once at start (app/runtime.py); only live inference and steering use it, serialised by
`lock` so one model call runs at a time per device.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field

from app.ml.lm import LanguageModel, load_language_model
from app.ml.sae import SAE, check_sae_fits_model, load_sae


@dataclass
class ModelBundle:
    lm: LanguageModel
    saes: dict[str, SAE]  # source name -> SAE
    lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def device_name(self) -> str:
        return str(self.lm.device)

    def describe(self) -> dict:
        return {
            "name": self.lm.name,
            "architecture": self.lm.architecture,
            "device": self.device_name,
            "dtype": str(self.lm.dtype).removeprefix("torch."),
            "n_layers": self.lm.n_layers,
            "d_model": self.lm.d_model,
            "saes": {name: {"hook_name": sae.cfg.hook_name, "hook_name_out": sae.cfg.hook_name_out,
                            "d_sae": sae.cfg.d_sae, "architecture": sae.cfg.architecture}
                     for name, sae in self.saes.items()},
        }


def load_bundle(model_name: str, sae_paths: dict[str, str], device: str = "auto", dtype: str = "float32") -> ModelBundle:
    """Load the model, then every SAE, checking each fits the model; raises LoadError on the first problem."""
    lm = load_language_model(model_name, device=device, dtype=dtype)
    saes = {}
    for name, path in sae_paths.items():
        sae = load_sae(path, device=lm.device, dtype=lm.dtype)
        check_sae_fits_model(sae, lm)
        saes[name] = sae
    return ModelBundle(lm=lm, saes=saes)
