"""SAELens folders: ``cfg.json`` (v6 or legacy, see :mod:`app.ml.sae_config`),
``sae_weights.safetensors``, optionally ``sparsity.safetensors`` (``sparsity: [d_sae]`` log10
density), ``runner_cfg.json`` (training run: ``training_tokens``, ``dataset_path``) and, for a
checkpoint trained with ``normalize_activations: covariance_whitening`` that was not folded yet,
``activation_whitening.safetensors`` (``mean [d_in]``, ``matrix``, ``inverse_matrix [d_in, d_in]``),
which the loader folds into the weights as SAELens does at the end of training.
"""

from __future__ import annotations

from pathlib import Path

from app.ml.errors import LoadError
from app.ml.formats import FolderRead, found_files, read_json, read_safetensors
from app.ml.sae_config import SAEConfig

CFG_FILENAME = "cfg.json"
WEIGHTS_FILENAME = "sae_weights.safetensors"
SPARSITY_FILENAME = "sparsity.safetensors"
RUNNER_CFG_FILENAME = "runner_cfg.json"
WHITENING_FILENAME = "activation_whitening.safetensors"


def _with_runner_facts(raw: dict, folder: Path) -> dict:
    path = folder / RUNNER_CFG_FILENAME
    if not path.is_file():
        return raw
    runner = read_json(path)
    facts = {k: runner[k] for k in ("training_tokens", "dataset_path") if isinstance(runner, dict) and k in runner}
    if isinstance(raw.get("metadata"), dict):
        return {**raw, "metadata": {**facts, **raw["metadata"]}}
    return {**facts, **raw}


def _whitening(folder: Path, cfg: SAEConfig):
    path = folder / WHITENING_FILENAME
    if not path.is_file():
        raise LoadError(
            f"{cfg.source}: normalize_activations=covariance_whitening but {path.name} is missing; SAELens "
            "folds the whitening into the weights when training ends (and then writes 'none'), so this is an "
            f"unfolded checkpoint: put its {path.name} beside it"
        )
    stats = read_safetensors(path)
    want = {"mean": (cfg.d_in,), "matrix": (cfg.d_in, cfg.d_in), "inverse_matrix": (cfg.d_in, cfg.d_in)}
    for name, shape in want.items():
        if name not in stats or tuple(stats[name].shape) != shape:
            got = tuple(stats[name].shape) if name in stats else "missing"
            raise LoadError(f"{path}: {name} must have shape {shape} (d_in={cfg.d_in}), got {got}")
    return stats["mean"], stats["matrix"], stats["inverse_matrix"]


def read(folder: Path) -> FolderRead:
    cfg_path = folder / CFG_FILENAME
    if not cfg_path.is_file():
        raise LoadError(f"SAE folder {folder} has no {CFG_FILENAME} (found: {found_files(folder)})")
    raw = read_json(cfg_path)
    if isinstance(raw, dict):
        raw = _with_runner_facts(raw, folder)
    cfg = SAEConfig.from_dict(raw, source=str(cfg_path), format="saelens")
    weights_path = folder / WEIGHTS_FILENAME
    if not weights_path.is_file():
        raise LoadError(f"SAE folder {folder} has no {WEIGHTS_FILENAME}")
    out = FolderRead(cfg=cfg, tensors=read_safetensors(weights_path), where=str(weights_path), cfg_name=CFG_FILENAME)
    sparsity_path = folder / SPARSITY_FILENAME
    if sparsity_path.is_file():
        sparsity = read_safetensors(sparsity_path)
        if "sparsity" not in sparsity:
            raise LoadError(f"{sparsity_path}: tensor sparsity is missing (found {', '.join(sparsity)})")
        out.log_density, out.density_where = sparsity["sparsity"], str(sparsity_path)
    if cfg.normalize_activations == "covariance_whitening":
        out.whitening = _whitening(folder, cfg)
    return out
