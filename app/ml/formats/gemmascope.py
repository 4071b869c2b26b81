"""Gemma Scope's ``params.npz``: ``W_enc [d_in, d_sae]``, ``W_dec [d_sae, d_out]``, ``b_enc``,
``b_dec``, ``threshold`` (JumpReLU, ``b_dec`` not subtracted from the input), as Google ships them
in ``<repo>/layer_N/width_W/average_l0_L/params.npz``.

The file holds no hook. A ``cfg.json`` beside it (SAELens layout) says where it reads; without
one the hook is read from the Gemma Scope path, as SAELens' loader reads it from the release:
``gemma-scope-2b-pt-res`` → ``blocks.N.hook_resid_post``, ``-mlp`` → ``blocks.N.hook_mlp_out``,
``-att`` → ``blocks.N.attn.hook_z``, ``-transcoders`` → ``blocks.N.ln2.hook_normalized`` to
``blocks.N.hook_mlp_out`` (jumprelu_transcoder).
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import torch

from app.ml.errors import LoadError
from app.ml.formats import FolderRead, read_json
from app.ml.sae_config import SAEConfig

PARAMS_FILENAME = "params.npz"
_KEYS = {"w_enc": "W_enc", "w_dec": "W_dec", "b_enc": "b_enc", "b_dec": "b_dec", "threshold": "threshold"}
_MODELS = (("27b-it", "gemma-2-27b-it"), ("9b-it", "gemma-2-9b-it"), ("2b-it", "gemma-2-2b-it"),
           ("27b", "gemma-2-27b"), ("9b", "gemma-2-9b"), ("2b", "gemma-2-2b"))


def _read_npz(path: Path) -> dict[str, torch.Tensor]:
    try:
        with np.load(path) as data:
            arrays = {key: data[key] for key in data.files}
    except (OSError, ValueError) as exc:
        raise LoadError(f"{path}: not a readable .npz file ({exc})") from None
    out = {}
    for key, array in arrays.items():
        name = _KEYS.get(key.lower())
        if name is None:
            raise LoadError(f"{path}: unexpected array {key!r} (Gemma Scope files hold {', '.join(_KEYS.values())})")
        out[name] = torch.from_numpy(np.ascontiguousarray(array)).float()
    return out


def _inferred_cfg(folder: Path, tensors: dict[str, torch.Tensor], where: Path) -> dict:
    text = folder.as_posix()
    layer = re.search(r"(?:^|/)layer_(\d+)(?:/|$)", text)
    repo = next((part for part in reversed(folder.parts) if part.startswith("gemma-scope")), None)
    if layer is None or repo is None:
        raise LoadError(
            f"{where}: a Gemma Scope params.npz holds no hook name; put a cfg.json (SAELens layout, with "
            "metadata.hook_name) beside it, or keep Google's layout <gemma-scope-…-res|mlp|att|transcoders>/"
            f"layer_N/width_W/average_l0_L (this path is {folder})"
        )
    n = int(layer.group(1))
    d_in, d_sae = tensors["W_enc"].shape if "W_enc" in tensors else (None, None)
    cfg: dict = {"architecture": "jumprelu", "d_in": d_in, "d_sae": d_sae, "apply_b_dec_to_input": False,
                 "dtype": "float32", "normalize_activations": "none"}
    meta = {"model_name": next((m for key, m in _MODELS if key in repo), None), "prepend_bos": True,
            "context_size": 1024, "dataset_path": "monology/pile-uncopyrighted", "gemmascope_release": repo}
    if "transcoder" in repo:
        cfg.update(architecture="jumprelu_transcoder", d_out=int(tensors["W_dec"].shape[-1]))
        meta.update(hook_name=f"blocks.{n}.ln2.hook_normalized", hook_name_out=f"blocks.{n}.hook_mlp_out")
    elif "-res" in repo:
        meta["hook_name"] = f"blocks.{n}.hook_resid_post"
    elif "-mlp" in repo:
        meta["hook_name"] = f"blocks.{n}.hook_mlp_out"
    elif "-att" in repo:
        meta["hook_name"] = f"blocks.{n}.attn.hook_z"
        cfg["reshape_activations"] = "hook_z"
    else:
        raise LoadError(f"{where}: cannot tell the hook from release folder {repo!r} (expected one ending in "
                        "-res, -mlp, -att or -transcoders); put a cfg.json beside params.npz")
    return {**cfg, "metadata": meta}


def read(folder: Path) -> FolderRead:
    path = folder / PARAMS_FILENAME
    tensors = _read_npz(path)
    cfg_path = folder / "cfg.json"
    if cfg_path.is_file():
        raw, source = read_json(cfg_path), str(cfg_path)
    else:
        raw, source = _inferred_cfg(folder, tensors, path), f"{path} (hook inferred from its path)"
    cfg = SAEConfig.from_dict(raw, source=source, format="gemmascope-npz")
    return FolderRead(cfg=cfg, tensors=tensors, where=str(path), cfg_name="cfg.json" if cfg_path.is_file() else path.name)
