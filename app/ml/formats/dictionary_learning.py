"""saprmarks/dictionary_learning: ``ae.pt`` (a ``torch.save``d state dict) + ``config.json``
(``{"trainer": {"dict_class", "activation_dim", "dict_size", "k", "layer", "lm_name",
"submodule_name", ...}, "buffer": {"io", "ctx_len", ...}}``), as ``trainSAE`` writes them.

Per ``trainer.dict_class`` (dictionary_learning/dictionary.py and trainers/), ``nn.Linear``
weights are stored transposed (``[out, in]``)::

    AutoEncoder            encoder.{weight,bias}, decoder.weight, bias (= b_dec, subtracted) → standard
    AutoEncoderNew         encoder.{weight,bias}, decoder.{weight,bias} (nothing subtracted)  → standard
    GatedAutoEncoder       encoder.weight, decoder.weight, decoder_bias, r_mag, gate_bias, mag_bias → gated
    JumpReluAutoEncoder    W_enc, b_enc, W_dec, b_dec, threshold (b_dec not subtracted)       → jumprelu
    AutoEncoderTopK        encoder.{weight,bias}, decoder.weight, b_dec, k, threshold         → topk
    BatchTopKSAE           as AutoEncoderTopK; inference keeps ReLU(pre) > threshold          → jumprelu
    MatryoshkaBatchTopKSAE W_enc, b_enc, W_dec, b_dec, k, threshold, group_sizes              → jumprelu

Weights are read as saved (``from_pretrained``'s optional decoder normalisation is not applied,
as SAELens' loader does not). The hook is ``blocks.{layer}.hook_resid_post`` for ``buffer.io =
"out"`` (the layer's output, dictionary_learning's default) and ``hook_resid_pre`` for "in".
"""

from __future__ import annotations

from pathlib import Path

import torch

from app.ml.errors import LoadError
from app.ml.formats import FolderRead, found_files, read_json
from app.ml.sae_config import SAEConfig

_LINEAR = {"W_enc": "encoder.weight", "W_dec": "decoder.weight"}  # stored [out, in]: transpose
_CLASSES = {
    "AutoEncoder": ("standard", True, {"W_enc": "encoder.weight", "b_enc": "encoder.bias", "W_dec": "decoder.weight",
                                       "b_dec": "bias"}),
    "AutoEncoderNew": ("standard", False, {"W_enc": "encoder.weight", "b_enc": "encoder.bias",
                                           "W_dec": "decoder.weight", "b_dec": "decoder.bias"}),
    "GatedAutoEncoder": ("gated", True, {"W_enc": "encoder.weight", "W_dec": "decoder.weight", "b_dec": "decoder_bias",
                                         "r_mag": "r_mag", "b_gate": "gate_bias", "b_mag": "mag_bias"}),
    "JumpReluAutoEncoder": ("jumprelu", False, {"W_enc": "W_enc", "b_enc": "b_enc", "W_dec": "W_dec", "b_dec": "b_dec",
                                                "threshold": "threshold"}),
    "AutoEncoderTopK": ("topk", True, {"W_enc": "encoder.weight", "b_enc": "encoder.bias", "W_dec": "decoder.weight",
                                       "b_dec": "b_dec"}),
    "BatchTopKSAE": ("jumprelu", True, {"W_enc": "encoder.weight", "b_enc": "encoder.bias", "W_dec": "decoder.weight",
                                        "b_dec": "b_dec", "threshold": "threshold"}),
    "MatryoshkaBatchTopKSAE": ("jumprelu", True, {"W_enc": "W_enc", "b_enc": "b_enc", "W_dec": "W_dec", "b_dec": "b_dec",
                                                  "threshold": "threshold"}),
}
_IGNORED = {"k", "group_sizes"}  # buffers that are config, not weights (threshold is used where listed)


def _load_pt(path: Path) -> dict[str, torch.Tensor]:
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # noqa: BLE001 - torch.load raises many kinds; all mean "not a state dict"
        raise LoadError(f"{path}: not a readable torch state dict ({type(exc).__name__}: {exc})") from None
    if isinstance(state, dict) and "ae" in state and "optimizer" in state:
        raise LoadError(f"{path}: a mid-training backup (keys ae, optimizer, step), not the final SAE; "
                        "load the ae.pt written when training finished")
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise LoadError(f"{path}: expected a dict of tensors (a state dict)")
    return state


def read(folder: Path) -> FolderRead:
    config_path, weights_path = folder / "config.json", folder / "ae.pt"
    if not config_path.is_file():
        raise LoadError(f"dictionary_learning folder {folder} has no config.json (found: {found_files(folder)})")
    config = read_json(config_path)
    trainer = config.get("trainer") if isinstance(config, dict) else None
    if not isinstance(trainer, dict):
        raise LoadError(f"{config_path}: expected a 'trainer' object")
    buffer = config.get("buffer") if isinstance(config.get("buffer"), dict) else {}
    dict_class = trainer.get("dict_class")
    if dict_class not in _CLASSES:
        raise LoadError(f"{config_path}: trainer.dict_class {dict_class!r} is not supported "
                        f"(known: {', '.join(_CLASSES)})")
    architecture, subtracts, names = _CLASSES[dict_class]
    state = _load_pt(weights_path)
    missing = [stored for stored in names.values() if stored not in state]
    if missing:
        raise LoadError(f"{weights_path}: tensor {missing[0]} is missing for {dict_class} "
                        f"(found {', '.join(sorted(state))})")
    tensors = {}
    for name, stored in names.items():
        tensor = state[stored]
        if stored in _LINEAR.values():
            tensor = tensor.T.contiguous()
        tensors[name] = tensor
    if "threshold" in tensors and tensors["threshold"].ndim == 0:
        tensors["threshold"] = tensors["threshold"].expand(tensors["W_enc"].shape[1]).clone()
    unexpected = sorted(set(state) - set(names.values()) - _IGNORED - {"threshold"})
    if unexpected:
        raise LoadError(f"{weights_path}: unexpected tensor(s) {', '.join(unexpected)} for {dict_class}")

    layer, io = trainer.get("layer"), buffer.get("io", "out")
    if layer is None or io not in ("out", "in"):
        raise LoadError(f"{config_path}: need trainer.layer and buffer.io 'out' or 'in' to place the SAE "
                        f"(got layer={layer!r}, io={io!r})")
    k = trainer.get("k")
    if architecture == "topk" and k is None and "k" in state:
        k = int(state["k"])
    d = {
        "architecture": architecture, "d_in": int(tensors["W_enc"].shape[0]), "d_sae": int(tensors["W_enc"].shape[1]),
        "dtype": str(tensors["W_dec"].dtype).removeprefix("torch."), "apply_b_dec_to_input": subtracts,
        **({"k": k} if architecture == "topk" else {}),
        "metadata": {
            "hook_name": f"blocks.{layer}.hook_resid_{'post' if io == 'out' else 'pre'}",
            "model_name": trainer.get("lm_name"), "context_size": buffer.get("ctx_len"), "prepend_bos": True,
            "dictionary_learning_class": dict_class, "dictionary_learning_submodule": trainer.get("submodule_name"),
        },
    }
    cfg = SAEConfig.from_dict(d, source=str(config_path), format="dictionary_learning")
    return FolderRead(cfg=cfg, tensors=tensors, where=str(weights_path), cfg_name=config_path.name)
