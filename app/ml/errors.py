"""Errors a user can cause while loading a model or an SAE.

The CLI prints ``str(err)`` without a traceback, so every message names the file (or model),
the field, the value that was expected and the value that was found.
"""

from __future__ import annotations

from app.errors import Invalid


class LoadError(Invalid):
    """A model, SAE or hook point could not be loaded as asked.

    Example message::

        sae_weights.safetensors: W_enc has shape (32, 64) but cfg.json says d_in=16, d_sae=64
        → expected (16, 64)
    """
