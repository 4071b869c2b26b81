import json
import math

import pytest
import torch
from safetensors.torch import load_file, save_file

from app.ml.errors import LoadError
from app.ml.hooks import capture_activations, hooked
from app.ml.sae import SAE, check_sae_fits_model, load_sae, save_sae
from app.ml.sae_config import SAEConfig
from tests.ml.factories import build_sae_cfg, build_sae_folder, random_sae_tensors

ARCHS = ["standard", "jumprelu", "topk", "gated"]


def reference_encode(w, cfg, x):
    """Per-token, written out plainly; ``w`` is the raw tensor dict from the file."""
    if cfg["normalize_activations"] == "constant_norm_rescale":
        x = x * math.sqrt(x.shape[-1]) / x.norm(dim=-1, keepdim=True)
    elif cfg["normalize_activations"] == "layer_norm":
        x = (x - x.mean(-1, keepdim=True)) / (x.std(-1, keepdim=True) + 1e-5)
    elif cfg["normalize_activations"] == "expected_average_only_in" and cfg.get("factor"):
        x = x * cfg["factor"]
    if cfg["apply_b_dec_to_input"]:
        x = x - w["b_dec"]
    arch = cfg["architecture"]
    if arch == "gated":
        gate = (x @ w["W_enc"] + w["b_gate"]) > 0
        mag = torch.clamp(x @ (w["W_enc"] * torch.exp(w["r_mag"])) + w["b_mag"], min=0)
        return torch.where(gate, mag, torch.zeros_like(mag))
    pre = x @ w["W_enc"] + w["b_enc"]
    if arch == "standard":
        return torch.clamp(pre, min=0)
    if arch == "jumprelu":
        return torch.where(pre > w["threshold"], torch.clamp(pre, min=0), torch.zeros_like(pre))
    out = torch.zeros_like(pre)
    for row in range(pre.shape[0]):
        order = sorted(range(pre.shape[1]), key=lambda i: -pre[row, i].item())[: cfg["k"]]
        for i in order:
            out[row, i] = max(pre[row, i].item(), 0.0)
    return out


def reference_decode(w, f):
    return f @ w["W_dec"] + w["b_dec"]


def _x(n=12, d=32, seed=0):
    return torch.randn(n, d, generator=torch.Generator().manual_seed(seed))


@pytest.mark.parametrize("generation", ["v6", "legacy"])
@pytest.mark.parametrize("architecture", ARCHS)
def test_load_matches_reference(tmp_path, architecture, generation):
    folder = build_sae_folder(tmp_path, architecture=architecture, generation=generation)
    sae = load_sae(folder)
    w = load_file(str(folder / "sae_weights.safetensors"))
    assert (sae.architecture, sae.d_in, sae.d_sae, sae.hook_name) == (
        architecture, 32, 64, "blocks.1.hook_resid_post")
    assert (sae.cfg.hook_layer, sae.cfg.model_name, sae.cfg.context_size) == (1, "tiny-gpt2", 16)
    assert sae.cfg.k == (4 if architecture == "topk" else None)
    x = _x()
    ref = reference_encode(w, {"architecture": architecture, "apply_b_dec_to_input": True,
                               "normalize_activations": "none", "k": 4}, x)
    f = sae.encode(x)
    assert 0 < (ref > 0).sum() < ref.numel()  # some features fire, not all
    torch.testing.assert_close(f, ref)
    torch.testing.assert_close(sae.decode(f), reference_decode(w, ref))
    torch.testing.assert_close(sae(x), reference_decode(w, ref))
    if architecture == "topk":
        assert ((f > 0).sum(-1) <= 4).all()
    if architecture == "jumprelu":  # the threshold matters: plain ReLU would differ
        assert not torch.allclose(f, torch.relu((x - w["b_dec"]) @ w["W_enc"] + w["b_enc"]))


@pytest.mark.parametrize("normalize", ["none", "constant_norm_rescale", "layer_norm",
                                       "expected_average_only_in"])
@pytest.mark.parametrize("apply_b_dec", [True, False])
def test_normalize_and_b_dec(tmp_path, normalize, apply_b_dec):
    factor = 0.5 if normalize == "expected_average_only_in" else None
    folder = build_sae_folder(tmp_path, normalize_activations=normalize,
                              apply_b_dec_to_input=apply_b_dec, norm_scaling_factor=factor)
    sae = load_sae(folder)
    w = load_file(str(folder / "sae_weights.safetensors"))
    x = _x() * 7 + 2
    ref_f = reference_encode(w, {"architecture": "standard", "apply_b_dec_to_input": apply_b_dec,
                                 "normalize_activations": normalize, "factor": factor}, x)
    torch.testing.assert_close(sae.encode(x), ref_f)
    out = reference_decode(w, ref_f)
    if normalize == "constant_norm_rescale":
        out = out * x.norm(dim=-1, keepdim=True) / math.sqrt(32)
    elif normalize == "layer_norm":
        out = out * x.std(-1, keepdim=True) + x.mean(-1, keepdim=True)
    elif normalize == "expected_average_only_in":
        out = out / factor
    torch.testing.assert_close(sae(x), out, rtol=1e-4, atol=1e-4)


def test_apply_b_dec_to_input_changes_encoding(tmp_path):
    x = _x()
    on = load_sae(build_sae_folder(tmp_path, name="on")).encode(x)
    off = load_sae(build_sae_folder(tmp_path, name="off", apply_b_dec_to_input=False)).encode(x)
    assert not torch.allclose(on, off)


def test_legacy_bool_normalize_and_cfg_fields(tmp_path):
    folder = build_sae_folder(tmp_path, generation="legacy", normalize_activations="expected_average_only_in")
    raw = json.loads((folder / "cfg.json").read_text())
    assert raw["normalize_activations"] is True and "architecture" not in raw
    cfg = load_sae(folder).cfg
    assert cfg.normalize_activations == "expected_average_only_in" and cfg.norm_scaling_factor is None
    assert cfg.extra["sae_lens_training_version"] == "3.13.0"


def test_density_dtype_and_round_trip(tmp_path):
    folder = build_sae_folder(tmp_path, architecture="jumprelu")
    sae = load_sae(folder)
    log_density = load_file(str(folder / "sparsity.safetensors"))["sparsity"]
    torch.testing.assert_close(sae.feature_density, 10 ** log_density)
    assert load_sae(build_sae_folder(tmp_path, sparsity=False)).feature_density is None
    assert load_sae(folder, dtype="bfloat16").W_enc.dtype == torch.bfloat16
    copy = save_sae(sae, sae.cfg, tmp_path / "copy")
    again = load_sae(copy)
    assert again.cfg == sae.cfg
    for name, tensor in sae.state_dict().items():
        torch.testing.assert_close(again.state_dict()[name], tensor, rtol=0, atol=0)
    torch.testing.assert_close(again.feature_density, sae.feature_density)
    cfg_json = json.loads((copy / "cfg.json").read_text())
    assert cfg_json["metadata"]["hook_name"] == "blocks.1.hook_resid_post"


def test_legacy_scaling_factor(tmp_path):
    folder = build_sae_folder(tmp_path, generation="legacy")
    path = folder / "sae_weights.safetensors"
    w = load_file(str(path))
    save_file({**w, "scaling_factor": torch.ones(64)}, str(path))
    assert load_sae(folder).finetuning_scaling_factor is None
    scaling = torch.linspace(0.5, 2.0, 64)
    save_file({**w, "scaling_factor": scaling}, str(path))
    sae, f = load_sae(folder), torch.rand(3, 64)
    torch.testing.assert_close(sae.decode(f), (f * scaling) @ w["W_dec"] + w["b_dec"])


def _rewrite_cfg(folder, **changes):
    raw = json.loads((folder / "cfg.json").read_text())
    for key, value in changes.items():
        if value is None:
            raw.pop(key, None)
        else:
            raw[key] = value
    (folder / "cfg.json").write_text(json.dumps(raw))


def _rewrite_weights(folder, **changes):
    path = folder / "sae_weights.safetensors"
    w = load_file(str(path))
    for key, value in changes.items():
        if value is None:
            w.pop(key)
        else:
            w[key] = value
    save_file(w, str(path))


def _nan_w_dec():
    t = torch.zeros(64, 32)
    t[3, 4] = float("nan")
    return t


@pytest.mark.parametrize("breakage, message", [
    (lambda f: (f / "cfg.json").unlink(), r"has no cfg.json \(found: sae_weights.safetensors, sparsity"),
    (lambda f: (f / "cfg.json").write_text("{not json"), r"cfg.json: not valid JSON"),
    (lambda f: _rewrite_cfg(f, d_in=None), r"cfg.json: required field 'd_in' is missing"),
    (lambda f: _rewrite_cfg(f, metadata={"model_name": "x"}), r"required field metadata.hook_name is missing"),
    (lambda f: _rewrite_cfg(f, architecture="crosscoder"),
     r"architecture 'crosscoder' is not supported \(known: abstopk, gated, groupmax, jumprelu, jumprelu_skip_transcoder, "),
    (lambda f: _rewrite_cfg(f, architecture="transcoder"),
     r"required field metadata.hook_name_out is missing for architecture=transcoder"),
    (lambda f: _rewrite_cfg(f, d_sae=-3), r"cfg.json: d_sae must be a positive integer, got -3"),
    (lambda f: _rewrite_cfg(f, normalize_activations="zscore"), r"normalize_activations must be one of"),
    (lambda f: (f / "sae_weights.safetensors").unlink(), r"has no sae_weights.safetensors"),
    (lambda f: (f / "sae_weights.safetensors").write_bytes(b"garbage"), r"not a readable safetensors file"),
    (lambda f: _rewrite_weights(f, threshold=None),
     r"tensor threshold is missing \(architecture=jumprelu needs W_enc, W_dec, b_dec, b_enc, threshold"),
    (lambda f: _rewrite_weights(f, W_enc=torch.zeros(16, 64)),
     r"sae_weights.safetensors: W_enc has shape \(16, 64\) but cfg.json says d_in=32, d_sae=64 "
     r"→ expected \(32, 64\)"),
    (lambda f: _rewrite_weights(f, b_dec=torch.zeros(31)), r"b_dec has shape \(31,\) .* expected \(32,\)"),
    (lambda f: _rewrite_weights(f, W_skip=torch.zeros(32, 32)), r"unexpected tensor\(s\) W_skip"),
    (lambda f: _rewrite_weights(f, W_dec=_nan_w_dec()), r"W_dec has 1 non-finite value"),
    (lambda f: save_file({"sparsity": torch.zeros(63)}, str(f / "sparsity.safetensors")),
     r"sparsity.safetensors: sparsity has shape \(63,\) but cfg.json says d_sae=64"),
])
def test_load_errors(tmp_path, breakage, message):
    folder = build_sae_folder(tmp_path, architecture="jumprelu")
    breakage(folder)
    with pytest.raises(LoadError, match=message):
        load_sae(folder)


def test_missing_folder_and_topk_without_k(tmp_path):
    with pytest.raises(LoadError, match=f"SAE folder {tmp_path / 'absent'} does not exist"):
        load_sae(tmp_path / "absent")
    folder = build_sae_folder(tmp_path, architecture="topk", generation="legacy")
    _rewrite_cfg(folder, activation_fn_kwargs={})
    with pytest.raises(LoadError, match=r"k must be an integer in 1..d_sae=64 for architecture=topk, got None"):
        load_sae(folder)
    with pytest.raises(LoadError, match=r"k must be absent for architecture=standard"):
        build_sae_cfg(k=3)


def test_check_sae_fits_model(tmp_path, gpt2):
    sae = load_sae(build_sae_folder(tmp_path))
    assert check_sae_fits_model(sae, gpt2) == 32
    narrow = SAE(build_sae_cfg(d_in=16), path=tmp_path / "narrow")
    with pytest.raises(LoadError, match=rf"SAE {tmp_path / 'narrow'} d_in=16 but blocks.1.hook_resid_post "
                                        rf"on .*tiny-gpt2 has width 32"):
        check_sae_fits_model(narrow, gpt2)
    mlp_in = SAE(build_sae_cfg(d_in=128, hook_name="transformer.h.0.mlp.c_fc"))
    assert check_sae_fits_model(mlp_in, gpt2) == 128  # probed with a 1-token forward pass
    with pytest.raises(LoadError, match="has width 128"):
        check_sae_fits_model(SAE(build_sae_cfg(hook_name="transformer.h.0.mlp.c_fc")), gpt2)


def test_sae_spliced_into_model(tmp_path, gpt2):
    sae = load_sae(build_sae_folder(tmp_path, architecture="topk"))
    ids = torch.tensor([[5, 6, 7, 8]])
    acts = capture_activations(gpt2, ids, hook_names=[sae.hook_name])[sae.hook_name]
    with torch.inference_mode():
        clean = gpt2.model(ids).logits
        with hooked(gpt2, sae.hook_name, sae):
            spliced = gpt2.model(ids).logits
        with hooked(gpt2, sae.hook_name, lambda x: x):
            same = gpt2.model(ids).logits
    assert sae(acts).shape == acts.shape
    assert not torch.allclose(spliced, clean, atol=1e-3)
    torch.testing.assert_close(same, clean, rtol=0, atol=0)


def test_sae_config_from_dict_v6_meta_key_and_tensors_save(tmp_path):
    cfg = SAEConfig.from_dict({"architecture": "standard", "d_in": 32, "d_sae": 64,
                               "meta": {"hook_name": "blocks.0.hook_mlp_out", "model_name": "m"}})
    assert (cfg.hook_name, cfg.hook_layer, cfg.model_name) == ("blocks.0.hook_mlp_out", 0, "m")
    folder = save_sae(random_sae_tensors(cfg), cfg, tmp_path / "from-tensors")
    assert load_sae(folder).cfg == cfg
    with pytest.raises(LoadError, match=r"W_enc has shape \(2, 2\)"):
        save_sae({**random_sae_tensors(cfg), "W_enc": torch.zeros(2, 2)}, cfg, tmp_path / "bad")
    assert not (tmp_path / "bad").exists()


def test_topk_relus_negative_top_values(tmp_path):
    # With a very negative b_enc most of a token's top-k pre-activations are negative:
    # SAELens keeps the top k and then applies ReLU, so fewer than k features fire.
    folder = build_sae_folder(tmp_path, architecture="topk")
    w = load_file(str(folder / "sae_weights.safetensors"))
    _rewrite_weights(folder, b_enc=w["b_enc"] - 1.5)
    f = load_sae(folder).encode(_x())
    assert (f >= 0).all()
    assert ((f > 0).sum(-1) < 4).any()
