"""The other formats labs bring, written here with their projects' own key names and layouts,
loaded by ``load_sae`` and compared with a reference computed from the raw tensors."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from safetensors.torch import save_file

from app.ml.errors import LoadError
from app.ml.sae import load_sae

D_IN, D_SAE, K = 16, 32, 4


def _rand(*shape, seed=0, scale=0.3):
    return torch.randn(*shape, generator=torch.Generator().manual_seed(seed)) * scale


def _x(n=10, seed=9):
    return _rand(n, D_IN, seed=seed, scale=2.0)


# -- EleutherAI sparsify -------------------------------------------------------------------
def _sparsify(tmp_path, hookpoint="layers.1", **cfg):
    run = tmp_path / "run"
    folder = run / hookpoint
    folder.mkdir(parents=True)
    (run / "config.json").write_text(json.dumps({"model": "EleutherAI/pythia-tiny", "dataset": "the/pile", "ctx_len": 16}))
    config = {"activation": "topk", "expansion_factor": 2, "normalize_decoder": True, "num_latents": 0, "k": K,
              "multi_topk": False, "skip_connection": False, "transcode": False, "d_in": D_IN, **cfg}
    (folder / "cfg.json").write_text(json.dumps(config))
    w = {"encoder.weight": _rand(D_SAE, D_IN, seed=1), "encoder.bias": _rand(D_SAE, seed=2),
         "W_dec": _rand(D_SAE, D_IN, seed=3), "b_dec": _rand(D_IN, seed=4)}
    if config["skip_connection"]:
        w["W_skip"] = _rand(D_IN, D_IN, seed=5)
    save_file(w, str(folder / "sae.safetensors"))
    return folder, w, config


def _sparsify_reference(w, cfg, x):
    """sparsify's SparseCoder: encode → (top_acts, top_indices), decode = Σ top_acts · W_dec[i] + b_dec."""
    sae_in = x if cfg["transcode"] else x - w["b_dec"]
    pre = sae_in @ w["encoder.weight"].T + w["encoder.bias"]
    if cfg.get("signed"):
        top_i = pre.abs().topk(K, dim=-1).indices
        top_a = pre.gather(-1, top_i)
    elif cfg["activation"] == "groupmax":
        top_a, within = torch.relu(pre).unflatten(-1, (K, -1)).max(dim=-1)
        top_i = within + torch.arange(0, D_SAE, D_SAE // K)
    else:
        top_a, top_i = torch.relu(pre).topk(K, dim=-1)
    f = torch.zeros(x.shape[0], D_SAE).scatter(-1, top_i, top_a)
    out = torch.stack([(top_a[r, :, None] * w["W_dec"][top_i[r]]).sum(0) for r in range(x.shape[0])]) + w["b_dec"]
    if cfg["skip_connection"]:
        out = out + x @ w["W_skip"].mT
    return f, out


@pytest.mark.parametrize("hookpoint, options, architecture, hooks", [
    ("layers.1", {}, "topk", ("blocks.1.hook_resid_post", "blocks.1.hook_resid_post")),
    ("h.2", {"signed": True}, "abstopk", ("blocks.2.hook_resid_post", "blocks.2.hook_resid_post")),
    ("layers.1", {"activation": "groupmax"}, "groupmax", ("blocks.1.hook_resid_post", "blocks.1.hook_resid_post")),
    ("layers.1.mlp", {"transcode": True, "skip_connection": True}, "topk_skip_transcoder",
     ("layers.1.mlp.input", "layers.1.mlp.output")),
    ("layers.0.mlp", {"transcode": True}, "topk_transcoder", ("layers.0.mlp.input", "layers.0.mlp.output")),
])
def test_sparsify(tmp_path, hookpoint, options, architecture, hooks):
    folder, w, cfg = _sparsify(tmp_path, hookpoint, **options)
    sae = load_sae(folder)
    assert (sae.cfg.format, sae.architecture, sae.hook_name, sae.cfg.hook_name_out) == ("sparsify", architecture, *hooks)
    assert (sae.d_sae, sae.cfg.k, sae.cfg.model_name, sae.cfg.context_size) == (D_SAE, K, "EleutherAI/pythia-tiny", 16)
    x = _x()
    f, out = _sparsify_reference(w, cfg, x)
    torch.testing.assert_close(sae.encode(x), f)
    torch.testing.assert_close(sae(x), out, rtol=1e-5, atol=1e-5)


def test_sparsify_refusals(tmp_path):
    folder, _, _ = _sparsify(tmp_path, skip_connection=True)
    with pytest.raises(LoadError, match="skip_connection without transcode is not supported"):
        load_sae(folder)
    with pytest.raises(LoadError, match=r"a sparsify checkpoint holding one SAE per hook; pass one of its folders: "
                                        r"layers.1"):
        load_sae(folder.parent)


# -- Gemma Scope params.npz -------------------------------------------------------------------
def _npz(folder, d_in=D_IN, d_out=D_IN, upper=False):
    folder.mkdir(parents=True)
    w = {"W_enc": _rand(d_in, D_SAE, seed=1), "W_dec": _rand(D_SAE, d_out, seed=2), "b_enc": _rand(D_SAE, seed=3),
         "b_dec": _rand(d_out, seed=4), "threshold": torch.rand(D_SAE, generator=torch.Generator().manual_seed(5)) * 0.3}
    np.savez(folder / "params.npz", **{(k.lower() if upper else k): v.numpy() for k, v in w.items()})
    return w


def _jumprelu_reference(w, x):
    pre = x @ w["W_enc"] + w["b_enc"]  # Gemma Scope never subtracts b_dec
    f = torch.where(pre > w["threshold"], pre, torch.zeros_like(pre)).clamp(min=0)
    return f, f @ w["W_dec"] + w["b_dec"]


@pytest.mark.parametrize("release, hook, hook_out", [
    ("gemma-scope-2b-pt-res", "blocks.3.hook_resid_post", None),
    ("gemma-scope-2b-pt-mlp-canonical", "blocks.3.hook_mlp_out", None),
    ("gemma-scope-9b-pt-att", "blocks.3.attn.hook_z", None),
    ("gemma-scope-2b-pt-transcoders", "blocks.3.ln2.hook_normalized", "blocks.3.hook_mlp_out"),
])
def test_gemmascope_npz_in_googles_layout(tmp_path, release, hook, hook_out):
    folder = tmp_path / release / "layer_3" / "width_16k" / "average_l0_71"
    w = _npz(folder, d_out=24 if hook_out else D_IN, upper="transcoders" in release)
    sae = load_sae(folder)
    assert (sae.cfg.format, sae.hook_name, sae.cfg.hook_name_out) == ("gemmascope-npz", hook, hook_out or hook)
    assert sae.architecture == ("jumprelu_transcoder" if hook_out else "jumprelu")
    assert not sae.cfg.apply_b_dec_to_input and sae.cfg.hook_layer == 3
    x = _x()
    f, out = _jumprelu_reference(w, x)
    torch.testing.assert_close(sae.encode(x), f)
    torch.testing.assert_close(sae(x), out)
    if "att" in release:
        assert sae.cfg.reshape_activations == "hook_z"
        torch.testing.assert_close(sae.encode(x.view(10, 4, 4)), f)
    if "9b" in release:
        assert sae.cfg.model_name == "gemma-2-9b"


def test_gemmascope_npz_with_cfg_beside_and_without_layout(tmp_path):
    folder = tmp_path / "my-sae"
    w = _npz(folder)
    with pytest.raises(LoadError, match=r"params.npz holds no hook name; put a cfg.json .* beside it"):
        load_sae(folder)
    (folder / "cfg.json").write_text(json.dumps({
        "architecture": "jumprelu", "d_in": D_IN, "d_sae": D_SAE, "apply_b_dec_to_input": False,
        "metadata": {"hook_name": "blocks.0.hook_resid_post", "neuronpedia_id": "gemma-2-2b/0-gemmascope-res-16k"}}))
    sae = load_sae(folder)
    assert sae.summary()["neuronpedia_id"] == "gemma-2-2b/0-gemmascope-res-16k"
    torch.testing.assert_close(sae.encode(_x()), _jumprelu_reference(w, _x())[0])


# -- dictionary_learning ---------------------------------------------------------------------
def _linear_pair(seed=0):
    """nn.Linear weights as dictionary_learning stores them: encoder [dict, act], decoder [act, dict]."""
    return _rand(D_SAE, D_IN, seed=seed + 1), _rand(D_SAE, seed=seed + 2), _rand(D_IN, D_SAE, seed=seed + 3)


def _dl_state(dict_class):
    enc_w, enc_b, dec_w = _linear_pair()
    b = _rand(D_IN, seed=7)
    if dict_class == "AutoEncoder":
        return {"bias": b, "encoder.weight": enc_w, "encoder.bias": enc_b, "decoder.weight": dec_w}
    if dict_class == "AutoEncoderNew":
        return {"encoder.weight": enc_w, "encoder.bias": enc_b, "decoder.weight": dec_w, "decoder.bias": b}
    if dict_class == "GatedAutoEncoder":
        return {"decoder_bias": b, "encoder.weight": enc_w, "r_mag": _rand(D_SAE, seed=8), "gate_bias": enc_b,
                "mag_bias": _rand(D_SAE, seed=9), "decoder.weight": dec_w}
    if dict_class == "JumpReluAutoEncoder":
        return {"W_enc": enc_w.T.contiguous(), "b_enc": enc_b, "W_dec": dec_w.T.contiguous(), "b_dec": b,
                "threshold": torch.full((D_SAE,), 0.1)}
    if dict_class in ("AutoEncoderTopK", "BatchTopKSAE"):
        return {"k": torch.tensor(K, dtype=torch.int), "threshold": torch.tensor(0.15), "decoder.weight": dec_w,
                "encoder.weight": enc_w, "encoder.bias": enc_b, "b_dec": b}
    return {"k": torch.tensor(K, dtype=torch.int), "threshold": torch.tensor(0.15), "group_sizes": torch.tensor([8, 24]),
            "W_enc": enc_w.T.contiguous(), "b_enc": enc_b, "W_dec": dec_w.T.contiguous(), "b_dec": b}


def _dl_reference(dict_class, s, x):
    """Each class's encode/decode as dictionary_learning writes them."""
    relu = torch.relu
    if dict_class == "AutoEncoder":
        f = relu((x - s["bias"]) @ s["encoder.weight"].T + s["encoder.bias"])
        return f, f @ s["decoder.weight"].T + s["bias"]
    if dict_class == "AutoEncoderNew":
        f = relu(x @ s["encoder.weight"].T + s["encoder.bias"])
        return f, f @ s["decoder.weight"].T + s["decoder.bias"]
    if dict_class == "GatedAutoEncoder":
        x_enc = (x - s["decoder_bias"]) @ s["encoder.weight"].T
        f = (x_enc + s["gate_bias"] > 0).float() * relu(s["r_mag"].exp() * x_enc + s["mag_bias"])
        return f, f @ s["decoder.weight"].T + s["decoder_bias"]
    if dict_class == "JumpReluAutoEncoder":
        pre = x @ s["W_enc"] + s["b_enc"]
        f = relu(pre * (pre > s["threshold"]))
        return f, f @ s["W_dec"] + s["b_dec"]
    if dict_class == "AutoEncoderTopK":
        post = relu((x - s["b_dec"]) @ s["encoder.weight"].T + s["encoder.bias"])
        top = post.topk(K, dim=-1)
        f = torch.zeros_like(post).scatter(-1, top.indices, top.values)
        return f, f @ s["decoder.weight"].T + s["b_dec"]
    if dict_class == "BatchTopKSAE":
        post = relu((x - s["b_dec"]) @ s["encoder.weight"].T + s["encoder.bias"])
        f = post * (post > s["threshold"])
        return f, f @ s["decoder.weight"].T + s["b_dec"]
    post = relu((x - s["b_dec"]) @ s["W_enc"] + s["b_enc"])
    f = post * (post > s["threshold"])
    return f, f @ s["W_dec"] + s["b_dec"]


@pytest.mark.parametrize("dict_class, architecture", [
    ("AutoEncoder", "standard"), ("AutoEncoderNew", "standard"), ("GatedAutoEncoder", "gated"),
    ("JumpReluAutoEncoder", "jumprelu"), ("AutoEncoderTopK", "topk"), ("BatchTopKSAE", "jumprelu"),
    ("MatryoshkaBatchTopKSAE", "jumprelu"),
])
def test_dictionary_learning(tmp_path, dict_class, architecture):
    folder = tmp_path / "trainer_0"
    folder.mkdir()
    state = _dl_state(dict_class)
    torch.save(state, folder / "ae.pt")
    (folder / "config.json").write_text(json.dumps({
        "trainer": {"dict_class": dict_class, "activation_dim": D_IN, "dict_size": D_SAE, "k": K, "layer": 2,
                    "lm_name": "EleutherAI/pythia-70m-deduped", "submodule_name": "resid_post_layer_2"},
        "buffer": {"d_submodule": D_IN, "io": "out", "n_ctxs": 3000, "ctx_len": 128}}))
    sae = load_sae(folder)
    assert (sae.cfg.format, sae.architecture, sae.hook_name, sae.cfg.context_size) == (
        "dictionary_learning", architecture, "blocks.2.hook_resid_post", 128)
    x = _x()
    f, out = _dl_reference(dict_class, state, x)
    assert 0 < int((f > 0).sum()) < f.numel()
    torch.testing.assert_close(sae.encode(x), f)
    torch.testing.assert_close(sae(x), out)


def test_dictionary_learning_refusals_and_unknown_folders(tmp_path):
    folder = tmp_path / "backup"
    folder.mkdir()
    torch.save({"step": 3, "ae": _dl_state("AutoEncoder"), "optimizer": {}, "config": {}}, folder / "ae.pt")
    (folder / "config.json").write_text(json.dumps({"trainer": {"dict_class": "AutoEncoder", "layer": 1}}))
    with pytest.raises(LoadError, match="a mid-training backup"):
        load_sae(folder)
    (folder / "config.json").write_text(json.dumps({"trainer": {"dict_class": "CrossCoder", "layer": 1}}))
    with pytest.raises(LoadError, match=r"dict_class 'CrossCoder' is not supported \(known: AutoEncoder, "):
        load_sae(folder)
    empty = tmp_path / "empty"
    empty.mkdir()
    (empty / "weights.bin").write_bytes(b"x")
    with pytest.raises(LoadError, match=r"in no known format \(found: weights.bin\); expected cfg.json"):
        load_sae(empty)
