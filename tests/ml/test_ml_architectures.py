"""Every registered architecture against a plain reference computed from the saved tensors
(the SAELens parity tier checks the same against SAELens itself where it is installed)."""

from __future__ import annotations

import json

import pytest
import torch
from safetensors.torch import load_file, save_file

from app.ml.architectures import REGISTRY
from app.ml.errors import LoadError
from app.ml.sae import SAE, load_sae, param_shapes, save_sae
from app.ml.sae_config import SAEConfig, summarize

D_IN, D_SAE, D_OUT = 16, 32, 24


def _cfg(architecture: str, **kw) -> SAEConfig:
    values = dict(architecture=architecture, d_in=D_IN, d_sae=D_SAE, hook_name="blocks.1.hook_resid_post")
    if REGISTRY[architecture].transcoder:
        values.update(hook_name="blocks.1.hook_mlp_in", hook_name_out="blocks.1.hook_mlp_out", d_out=D_OUT,
                      apply_b_dec_to_input=False)
    if REGISTRY[architecture].needs_k:
        values["k"] = 4
    values.update(kw)
    return SAEConfig(**values)


def _folder(tmp_path, cfg: SAEConfig, seed: int = 0, name: str = "sae"):
    gen = torch.Generator().manual_seed(seed)
    tensors = {n: (torch.rand(s, generator=gen) * 0.3 if n == "threshold" else torch.randn(s, generator=gen) * 0.3)
               for n, s in param_shapes(cfg).items()}
    return save_sae(tensors, cfg, tmp_path / name)


def _x(n=10, d=D_IN, seed=1):
    return torch.randn(n, d, generator=torch.Generator().manual_seed(seed)) * 2


def _topk_rows(pre, k, by_abs=False, relu=True):
    out = torch.zeros_like(pre)
    for r in range(pre.shape[0]):
        keys = [abs(v) if by_abs else v for v in pre[r].tolist()]
        for i in sorted(range(len(keys)), key=lambda i: -keys[i])[:k]:
            out[r, i] = max(pre[r, i].item(), 0.0) if relu else pre[r, i].item()
    return out


def test_registry_covers_saelens_inference_names():
    saelens_6 = {"standard", "gated", "jumprelu", "topk", "abstopk", "transcoder", "skip_transcoder",
                 "jumprelu_transcoder", "jumprelu_skip_transcoder", "matching_pursuit", "temporal"}
    assert saelens_6 <= set(REGISTRY)


@pytest.mark.parametrize("architecture", ["transcoder", "skip_transcoder", "jumprelu_transcoder",
                                          "jumprelu_skip_transcoder", "topk_transcoder"])
def test_transcoders_read_in_write_out(tmp_path, architecture):
    folder = _folder(tmp_path, _cfg(architecture))
    sae, w, x = load_sae(folder), load_file(str(folder / "sae_weights.safetensors")), _x()
    assert (sae.is_transcoder, sae.hook_name, sae.cfg.hook_name_out, sae.d_out) == (
        True, "blocks.1.hook_mlp_in", "blocks.1.hook_mlp_out", D_OUT)
    pre = x @ w["W_enc"] + w["b_enc"]  # b_dec (width d_out) is never subtracted
    f = torch.relu(pre)
    if "jumprelu" in architecture:
        f = torch.where(pre > w["threshold"], f, torch.zeros_like(f))
    if architecture == "topk_transcoder":
        f = _topk_rows(pre, 4)
    torch.testing.assert_close(sae.encode(x), f)
    decoded = f @ w["W_dec"] + w["b_dec"]
    torch.testing.assert_close(sae.decode(f), decoded)  # decode alone never has the skip term
    skip = x @ w["W_skip"].T if "skip" in architecture else 0
    torch.testing.assert_close(sae(x), decoded + skip)
    assert sae.cfg.to_dict()["metadata"]["hook_name_out"] == "blocks.1.hook_mlp_out"
    assert load_sae(save_sae(sae, sae.cfg, tmp_path / "again")).cfg == sae.cfg


def test_topk_rescale_by_decoder_norm_and_abstopk(tmp_path):
    for architecture in ("topk", "abstopk"):
        folder = _folder(tmp_path, _cfg(architecture, rescale_acts_by_decoder_norm=True), name=architecture)
        sae, w, x = load_sae(folder), load_file(str(folder / "sae_weights.safetensors")), _x()
        norms = w["W_dec"].norm(dim=-1)
        pre = ((x - w["b_dec"]) @ w["W_enc"] + w["b_enc"]) * norms
        f = _topk_rows(pre, 4, by_abs=architecture == "abstopk", relu=architecture == "topk")
        torch.testing.assert_close(sae.encode(x), f, rtol=1e-5, atol=1e-5)
        torch.testing.assert_close(sae(x), (f / norms) @ w["W_dec"] + w["b_dec"], rtol=1e-5, atol=1e-5)
        torch.testing.assert_close(sae.W_dec.norm(dim=-1), torch.ones(D_SAE))  # folded at load
        ignored = (x - w["b_dec"]) @ w["W_enc"] + w["b_enc"]  # the old bug: rescaling ignored
        assert not torch.allclose(sae.encode(x), _topk_rows(ignored, 4, by_abs=architecture == "abstopk",
                                                             relu=architecture == "topk"))
    assert (load_sae(tmp_path / "abstopk").encode(_x()) < 0).any()  # signed features


def test_matching_pursuit_greedy_loop(tmp_path):
    cfg = _cfg("matching_pursuit", arch_cfg={"residual_threshold": 0.0, "max_iterations": 5,
                                             "stop_on_duplicate_support": False})
    folder = _folder(tmp_path, cfg)
    sae, w, x = load_sae(folder), load_file(str(folder / "sae_weights.safetensors")), _x(4)
    expected = torch.zeros(4, D_SAE)
    for r in range(4):
        residual = x[r] - w["b_dec"]
        for _ in range(5):
            scores = (w["W_dec"] @ residual).clamp(min=0)
            i = int(scores.argmax())
            value = max(float(w["W_dec"][i] @ residual), 0.0)
            expected[r, i] += value
            residual = residual - value * w["W_dec"][i]
    torch.testing.assert_close(sae.encode(x), expected, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(sae.W_enc, w["W_dec"].T)  # tied
    torch.testing.assert_close(sae.decode(expected), expected @ w["W_dec"] + w["b_dec"])


def test_temporal_reads_context_and_forward_adds_predictions(tmp_path):
    cfg = _cfg("temporal", d_sae=32, apply_b_dec_to_input=False,
               arch_cfg={"n_heads": 2, "bottleneck_factor": 4, "kval_topk": 5})
    sae = load_sae(_folder(tmp_path, cfg))
    x = torch.randn(2, 6, D_IN, generator=torch.Generator().manual_seed(4)) * 10
    f = sae.encode(x)
    assert f.shape == (2, 6, 32) and ((f > 0).sum(-1) <= 5).all()
    torch.testing.assert_close(sae.encode(x[1]), f[1])  # [pos, d_in] is one sequence
    later = x.clone()
    later[:, 4:] += 5.0
    torch.testing.assert_close(sae.encode(later)[:, :4], f[:, :4])  # causal: the past ignores the future
    first = x.clone()
    first[:, 0] += 5.0
    assert not torch.allclose(sae.encode(first)[:, 3], f[:, 3])  # but the present reads the past
    assert not torch.allclose(sae(x), sae.decode(f))  # forward adds the predicted codes


def test_groupmax_keeps_one_per_group(tmp_path):
    folder = _folder(tmp_path, _cfg("groupmax", k=8))
    sae, w, x = load_sae(folder), load_file(str(folder / "sae_weights.safetensors")), _x()
    pre = torch.relu((x - w["b_dec"]) @ w["W_enc"] + w["b_enc"]).view(10, 8, 4)
    expected = torch.zeros_like(pre).scatter(-1, pre.argmax(-1, keepdim=True), pre.max(-1, keepdim=True).values)
    torch.testing.assert_close(sae.encode(x), expected.view(10, 32))


def test_hook_z_reshape_accepts_heads(tmp_path):
    sae = load_sae(_folder(tmp_path, _cfg("standard", hook_name="blocks.1.attn.hook_z", reshape_activations="hook_z")))
    x = _x()
    torch.testing.assert_close(sae.encode(x.view(10, 4, 4)), sae.encode(x))
    assert sae(x.view(10, 4, 4)).shape == (10, D_IN)  # reconstruction stays flat, as the hook gives it


def test_covariance_whitening_folded_at_load(tmp_path):
    cfg = _cfg("standard", normalize_activations="covariance_whitening", apply_b_dec_to_input=False)
    folder = _folder(tmp_path, cfg)
    gen = torch.Generator().manual_seed(2)
    matrix = torch.randn(D_IN, D_IN, generator=gen) * 0.3 + torch.eye(D_IN)
    mean = torch.randn(D_IN, generator=gen)
    with pytest.raises(LoadError, match="covariance_whitening but activation_whitening.safetensors is missing"):
        load_sae(folder)
    save_file({"mean": mean, "matrix": matrix, "inverse_matrix": torch.linalg.inv(matrix).contiguous()},
              str(folder / "activation_whitening.safetensors"))
    sae, w, x = load_sae(folder), load_file(str(folder / "sae_weights.safetensors")), _x()
    z = (x - mean) @ matrix
    f = torch.relu(z @ w["W_enc"] + w["b_enc"])
    torch.testing.assert_close(sae.encode(x), f, rtol=1e-4, atol=1e-4)
    torch.testing.assert_close(sae(x), (f @ w["W_dec"] + w["b_dec"]) @ torch.linalg.inv(matrix) + mean,
                               rtol=1e-4, atol=1e-4)
    saved = save_sae(sae, sae.cfg, tmp_path / "folded")  # saved folded, like SAELens after training
    assert json.loads((saved / "cfg.json").read_text())["normalize_activations"] == "none"
    torch.testing.assert_close(load_sae(saved).encode(x), sae.encode(x))


@pytest.mark.parametrize("changes, message", [
    ({"architecture": "transcoder", "d_out": 24, "metadata": {"hook_name": "blocks.1.hook_mlp_in",
                                                              "hook_name_out": "blocks.1.hook_mlp_out"}},
     r"apply_b_dec_to_input must be false for architecture=transcoder"),
    ({"d_out": 24}, r"d_out must be absent or equal to 16 for architecture=standard"),
    ({"architecture": "matching_pursuit", "normalize_activations": "covariance_whitening"},
     r"normalize_activations must be one of none, constant_norm_rescale, layer_norm, expected_average_only_in, "
     r"got 'covariance_whitening'"),
    ({"normalize_activations": "constant_scalar_rescale"}, r"normalize_activations must be one of none, "),
    ({"architecture": "temporal", "n_heads": 3}, r"d_sae must be a multiple of bottleneck_factor × n_heads = 192"),
    ({"rescale_acts_by_decoder_norm": True, "architecture": "gated"}, None),  # not a gated field: ignored, as SAELens
])
def test_cfg_errors_name_the_field(tmp_path, changes, message):
    folder = _folder(tmp_path, _cfg("standard"))
    raw = json.loads((folder / "cfg.json").read_text())
    metadata = {**raw["metadata"], **changes.pop("metadata", {})}
    raw.update(changes, metadata=metadata)
    (folder / "cfg.json").write_text(json.dumps(raw))
    if changes.get("normalize_activations") == "covariance_whitening":
        save_file({"mean": torch.zeros(D_IN), "matrix": torch.eye(D_IN), "inverse_matrix": torch.eye(D_IN)},
                  str(folder / "activation_whitening.safetensors"))
    if message is None:
        with pytest.raises(LoadError, match="tensor b_gate is missing"):
            load_sae(folder)
        return
    with pytest.raises(LoadError, match=message):
        load_sae(folder)


def test_v6_metadata_version_and_summary(tmp_path):
    folder = _folder(tmp_path, _cfg("jumprelu"))
    raw = json.loads((folder / "cfg.json").read_text())
    raw["metadata"].update(neuronpedia_id="gpt2-small/1-res-jb", dataset_path="Skylion007/openwebtext",
                           sae_lens_version="6.54.12", model_name="gpt2")
    (folder / "cfg.json").write_text(json.dumps(raw))
    (folder / "runner_cfg.json").write_text(json.dumps({"training_tokens": 123_000_000}))
    sae = load_sae(folder)
    assert sae.cfg.to_dict()["metadata"]["sae_lens_version"] == "6.54.12"  # kept, not rewritten as 6.0.0
    summary = sae.summary()
    json.dumps(summary, allow_nan=False)
    assert {k: summary[k] for k in ("format", "architecture", "d_in", "d_sae", "hook_name", "hook_name_out",
                                    "neuronpedia_id", "dataset_path", "training_tokens", "sae_lens_version")} == {
        "format": "saelens", "architecture": "jumprelu", "d_in": D_IN, "d_sae": D_SAE,
        "hook_name": "blocks.1.hook_resid_post", "hook_name_out": "blocks.1.hook_resid_post",
        "neuronpedia_id": "gpt2-small/1-res-jb", "dataset_path": "Skylion007/openwebtext",
        "training_tokens": 123_000_000, "sae_lens_version": "6.54.12"}
    t = load_file(str(folder / "sae_weights.safetensors"))["threshold"]
    assert summary["threshold"] == pytest.approx({"mean": float(t.mean()), "min": float(t.min()), "max": float(t.max())})
    legacy = summarize(SAEConfig.from_dict({"d_in": 4, "d_sae": 8, "hook_point": "blocks.0.hook_resid_pre",
                                            "neuronpedia_id": "np/legacy", "sae_lens_training_version": "3.13.0",
                                            "training_tokens": 5}))
    assert (legacy["neuronpedia_id"], legacy["sae_lens_version"], legacy["training_tokens"]) == ("np/legacy", "3.13.0", 5)


def test_sae_config_module_is_torch_free():
    import subprocess
    import sys

    code = ("import sys, app.ml.sae_config as c; assert 'torch' not in sys.modules, 'torch imported'; "
            "print(c.summarize.__name__)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=False)
    assert out.returncode == 0, out.stderr


def test_a_new_architecture_is_one_registration(tmp_path):
    from app.ml.architectures.base import Architecture, register

    @register
    class Doubled(Architecture):
        name = "test_doubled_relu"

        def encode(self, sae, x):
            return 2 * torch.relu(x @ sae.W_enc + sae.b_enc)

    try:
        sae = load_sae(_folder(tmp_path, _cfg("test_doubled_relu")))
        x = _x()
        torch.testing.assert_close(sae.encode(x), 2 * torch.relu((x - sae.b_dec) @ sae.W_enc + sae.b_enc))
        assert isinstance(sae, SAE)
    finally:
        del REGISTRY["test_doubled_relu"]
