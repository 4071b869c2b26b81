"""Device and dtype selection, with no silent fallbacks."""

from __future__ import annotations

import torch

from app.ml.errors import LoadError

DEVICE_NAMES = ("auto", "cpu", "cuda", "mps")
DTYPES: dict[str, torch.dtype] = {
    "float32": torch.float32,
    "float16": torch.float16,
    "bfloat16": torch.bfloat16,
}
# Spellings found in SAELens cfg.json files ("torch.float32") and HF configs ("fp16").
_DTYPE_ALIASES = {
    "torch.float32": "float32",
    "torch.float16": "float16",
    "torch.bfloat16": "bfloat16",
    "fp32": "float32",
    "fp16": "float16",
    "bf16": "bfloat16",
    "float": "float32",
    "half": "float16",
}


def _mps_available() -> bool:
    backend = getattr(torch.backends, "mps", None)
    return bool(backend is not None and backend.is_available())


def resolve_device(name: str | torch.device) -> torch.device:
    """Turn "auto" | "cpu" | "cuda" | "cuda:N" | "mps" into a ``torch.device``.

    "auto" picks cuda, then mps, then cpu. Asking for cuda or mps where it is absent raises
    :class:`LoadError` instead of quietly running on the CPU.
    """
    if isinstance(name, torch.device):
        name = str(name)
    text = name.strip().lower()
    if text == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        if _mps_available():
            return torch.device("mps")
        return torch.device("cpu")
    kind = text.split(":", 1)[0]
    if kind == "cpu":
        return torch.device("cpu")
    if kind == "cuda":
        if not torch.cuda.is_available():
            raise LoadError(
                f"device={name!r}: CUDA was asked for but torch.cuda.is_available() is False "
                f"(torch {torch.__version__}); use device='cpu' or 'auto'"
            )
        device = torch.device(text)
        if device.index is not None and device.index >= torch.cuda.device_count():
            raise LoadError(
                f"device={name!r}: only {torch.cuda.device_count()} CUDA device(s) are visible "
                f"(cuda:0-cuda:{torch.cuda.device_count() - 1})"
            )
        return device
    if kind == "mps":
        if not _mps_available():
            raise LoadError(
                f"device={name!r}: MPS was asked for but torch.backends.mps.is_available() is "
                "False; use device='cpu' or 'auto'"
            )
        return torch.device("mps")
    raise LoadError(f"device={name!r} is not one of {', '.join(DEVICE_NAMES)} (or cuda:N)")


def parse_dtype(name: str | torch.dtype) -> torch.dtype:
    """"float32" | "float16" | "bfloat16" (or "torch.float32", "fp16", ...) → ``torch.dtype``."""
    if isinstance(name, torch.dtype):
        return name
    text = _DTYPE_ALIASES.get(name.strip().lower(), name.strip().lower())
    if text not in DTYPES:
        raise LoadError(f"dtype={name!r} is not one of auto, {', '.join(DTYPES)}")
    return DTYPES[text]


def resolve_dtype(name: str | torch.dtype, device: torch.device | str) -> torch.dtype:
    """"auto" → bfloat16 on cuda, float32 elsewhere; otherwise the named dtype."""
    if isinstance(name, str) and name.strip().lower() == "auto":
        return torch.bfloat16 if torch.device(device).type == "cuda" else torch.float32
    return parse_dtype(name)
