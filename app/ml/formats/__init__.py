"""SAE file formats: each adapter reads one project's on-disk layout into a :class:`FolderRead`
(an :class:`~app.ml.sae_config.SAEConfig` plus tensors under the SAELens names), which
:func:`app.ml.sae.load_sae` validates and turns into the one SAE object.

=====================  ================================================  ==========================
format                 files in the folder                               adapter
=====================  ================================================  ==========================
saelens                cfg.json + sae_weights.safetensors                :mod:`.saelens`
sparsify               cfg.json + sae.safetensors (one folder per hook)  :mod:`.sparsify`
gemmascope-npz         params.npz (+ optional cfg.json)                  :mod:`.gemmascope`
dictionary_learning    ae.pt + config.json                               :mod:`.dictionary_learning`
=====================  ================================================  ==========================
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from app.ml.errors import LoadError
from app.ml.sae_config import SAEConfig


@dataclass
class FolderRead:
    """What an adapter found: tensors use SAELens names and layouts (``W_enc [d_in, d_sae]``)."""

    cfg: SAEConfig
    tensors: dict[str, torch.Tensor]
    where: str  # the weights file, for error messages
    cfg_name: str = "cfg.json"
    log_density: torch.Tensor | None = None  # [d_sae] log10 firing density
    density_where: str = ""
    whitening: tuple[torch.Tensor, torch.Tensor, torch.Tensor] | None = None  # mean, matrix, inverse


def found_files(folder: Path) -> str:
    return ", ".join(sorted(p.name for p in folder.iterdir())[:10]) or "nothing"


def read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise LoadError(f"{path}: not valid JSON ({exc})") from None


def read_safetensors(path: Path) -> dict[str, torch.Tensor]:
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    try:
        return load_file(str(path), device="cpu")
    except (SafetensorError, OSError, ValueError) as exc:
        raise LoadError(f"{path}: not a readable safetensors file ({exc})") from None


def format_of(folder: Path) -> str:
    """The format name of ``folder`` by its files; LoadError saying what each format needs."""
    if (folder / "params.npz").is_file():
        return "gemmascope-npz"
    if (folder / "ae.pt").is_file():
        return "dictionary_learning"
    if (folder / "sae.safetensors").is_file():
        return "sparsify"
    if (folder / "cfg.json").is_file() or (folder / "sae_weights.safetensors").is_file():
        return "saelens"
    hooks = sorted(p.name for p in folder.iterdir() if p.is_dir() and (p / "sae.safetensors").is_file())
    if hooks:
        raise LoadError(f"SAE folder {folder} is a sparsify checkpoint holding one SAE per hook; pass one "
                        f"of its folders: {', '.join(hooks[:10])}")
    raise LoadError(
        f"SAE folder {folder} is in no known format (found: {found_files(folder)}); expected cfg.json + "
        "sae_weights.safetensors (SAELens), cfg.json + sae.safetensors (sparsify), params.npz (Gemma Scope) "
        "or ae.pt + config.json (dictionary_learning)"
    )


def read_folder(folder: Path) -> FolderRead:
    from app.ml.formats import dictionary_learning, gemmascope, saelens, sparsify

    readers = {"saelens": saelens.read, "sparsify": sparsify.read, "gemmascope-npz": gemmascope.read,
               "dictionary_learning": dictionary_learning.read}
    return readers[format_of(folder)](folder)
