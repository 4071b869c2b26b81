"""EleutherAI sparsify checkpoints: ``<run>/<hookpoint>/{cfg.json, sae.safetensors}``, with the
run's ``config.json`` (``model``, ``dataset``, ``ctx_len``) one level up when present.

As ``SparseCoder`` saves them (sparsify/sparse_coder.py)::

    cfg.json          {"activation": "topk"|"groupmax", "k", "num_latents" (0 = d_in × expansion_factor),
                       "expansion_factor", "normalize_decoder", "skip_connection", "transcode",
                       "multi_topk", "d_in"}  (+ "signed" in the older `sae` package)
    sae.safetensors   encoder.weight [d_sae, d_in], encoder.bias [d_sae], W_dec [d_sae, d_in],
                      b_dec [d_in], W_skip [d_in, d_in] (skip_connection)

Encode subtracts ``b_dec`` unless ``transcode``, applies ``ReLU(encoder(x))`` and keeps the top
k (or the max of each of k groups); ``signed`` skips the ReLU and ranks by magnitude (= abstopk).
The folder name is the hookpoint: a module path under the model's base model (``layers.3``,
``h.3.mlp``). An SAE reads that module's output; a transcoder reads its input and writes its
output. ``layers.N`` / ``h.N`` outputs are ``blocks.N.hook_resid_post``.
"""

from __future__ import annotations

import re
from pathlib import Path

from app.ml.errors import LoadError
from app.ml.formats import FolderRead, found_files, read_json, read_safetensors
from app.ml.sae_config import SAEConfig

WEIGHTS_FILENAME = "sae.safetensors"
_BLOCK = re.compile(r"^(?:layers|h|blocks)[._](\d+)$")


def _hooks(hookpoint: str, transcode: bool) -> tuple[str, str]:
    block = _BLOCK.match(hookpoint)
    if block:
        n = block.group(1)
        return (f"blocks.{n}.hook_resid_pre" if transcode else f"blocks.{n}.hook_resid_post"), \
            f"blocks.{n}.hook_resid_post"
    return (f"{hookpoint}.input" if transcode else hookpoint), f"{hookpoint}.output" if transcode else hookpoint


def _architecture(raw: dict, where: str) -> str:
    activation, signed = raw.get("activation", "topk"), bool(raw.get("signed", False))
    transcode, skip = bool(raw.get("transcode", False)), bool(raw.get("skip_connection", False))
    if activation not in ("topk", "groupmax"):
        raise LoadError(f"{where}: activation must be topk or groupmax, got {activation!r}")
    if transcode:
        if activation != "topk" or signed:
            raise LoadError(f"{where}: a transcoder with activation={activation!r}, signed={signed} is not "
                            "supported (sparsify transcoders: activation topk, unsigned)")
        return "topk_skip_transcoder" if skip else "topk_transcoder"
    if skip:
        raise LoadError(f"{where}: skip_connection without transcode is not supported (a skip term is only "
                        "read for transcoders)")
    if signed:
        if activation != "topk":
            raise LoadError(f"{where}: signed with activation={activation!r} is not supported")
        return "abstopk"
    return "topk" if activation == "topk" else "groupmax"


def read(folder: Path) -> FolderRead:
    cfg_path = folder / "cfg.json"
    if not cfg_path.is_file():
        raise LoadError(f"sparsify folder {folder} has no cfg.json (found: {found_files(folder)})")
    raw = read_json(cfg_path)
    if not isinstance(raw, dict):
        raise LoadError(f"{cfg_path}: expected a JSON object, got {type(raw).__name__}")
    for required in ("d_in", "k"):
        if required not in raw:
            raise LoadError(f"{cfg_path}: required field {required!r} is missing")
    d_in = raw["d_in"]
    d_sae = raw.get("num_latents") or (d_in * raw["expansion_factor"] if "expansion_factor" in raw else None)
    if d_sae is None:
        raise LoadError(f"{cfg_path}: neither num_latents nor expansion_factor is given")
    run = read_json(folder.parent / "config.json") if (folder.parent / "config.json").is_file() else {}
    run = run if isinstance(run, dict) else {}
    architecture = _architecture(raw, str(cfg_path))
    transcode = architecture.endswith("transcoder")
    hook_name, hook_name_out = _hooks(folder.name, transcode)

    weights_path = folder / WEIGHTS_FILENAME
    stored = read_safetensors(weights_path)
    for required in ("encoder.weight", "W_dec", "b_dec"):
        if required not in stored:
            raise LoadError(f"{weights_path}: tensor {required} is missing (found {', '.join(sorted(stored))})")
    tensors = {"W_enc": stored["encoder.weight"].T.contiguous(), "W_dec": stored["W_dec"], "b_dec": stored["b_dec"]}
    if "encoder.bias" in stored:
        tensors["b_enc"] = stored["encoder.bias"]
    if "W_skip" in stored:
        tensors["W_skip"] = stored["W_skip"]
    dtype = str(stored["W_dec"].dtype).removeprefix("torch.")
    d = {
        "architecture": architecture, "d_in": d_in, "d_sae": d_sae, "k": raw["k"], "dtype": dtype,
        "apply_b_dec_to_input": not transcode,
        "metadata": {
            "hook_name": hook_name, "model_name": run.get("model"), "dataset_path": run.get("dataset"),
            "context_size": run.get("ctx_len"), "prepend_bos": True, "sparsify_hookpoint": folder.name,
            **({"hook_name_out": hook_name_out} if transcode else {}),
        },
    }
    if transcode:
        d["d_out"] = int(stored["W_dec"].shape[-1])
    cfg = SAEConfig.from_dict(d, source=str(cfg_path), format="sparsify")
    return FolderRead(cfg=cfg, tensors=tensors, where=str(weights_path), cfg_name="cfg.json")
