import pytest
import torch

from app.ml.device import resolve_device, resolve_dtype
from app.ml.errors import LoadError
from app.ml.lm import load_language_model, unembed


def test_resolve_device_auto_prefers_cuda_then_cpu(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.setattr("app.ml.device._mps_available", lambda: False)
    assert resolve_device("auto") == torch.device("cpu")
    monkeypatch.setattr("app.ml.device._mps_available", lambda: True)
    assert resolve_device("auto") == torch.device("mps")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    assert resolve_device("auto") == torch.device("cuda")


@pytest.mark.parametrize("name", ["cuda", "cuda:0", "mps"])
def test_resolve_device_refuses_absent_accelerator(monkeypatch, name):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.setattr("app.ml.device._mps_available", lambda: False)
    with pytest.raises(LoadError, match="was asked for but"):
        resolve_device(name)


def test_resolve_device_rejects_unknown_name():
    with pytest.raises(LoadError, match="'tpu' is not one of auto, cpu, cuda, mps"):
        resolve_device("tpu")


def test_resolve_dtype():
    assert resolve_dtype("auto", torch.device("cuda")) == torch.bfloat16
    assert resolve_dtype("auto", "cpu") == torch.float32
    assert resolve_dtype("float16", "cpu") == torch.float16
    assert resolve_dtype("bfloat16", "cpu") == torch.bfloat16
    with pytest.raises(LoadError, match="dtype='float8'"):
        resolve_dtype("float8", "cpu")


@pytest.mark.parametrize(
    "kind, architecture, bos_is_eos",
    [("gpt2", "gpt2", True), ("neox", "gpt_neox", True), ("llama", "llama", False)],
)
def test_language_model_properties(tiny_lms, kind, architecture, bos_is_eos):
    lm = tiny_lms[kind]
    assert (lm.d_model, lm.n_layers, lm.architecture) == (32, 3, architecture)
    assert lm.vocab_size == len(lm.tokenizer) == 300
    assert not lm.model.training
    assert lm.bos_token_id is not None
    assert (lm.bos_token_id == lm.tokenizer.eos_token_id) is bos_is_eos
    if kind == "neox":
        assert lm.tokenizer.bos_token_id is None  # the fallback is what supplied the id


@pytest.mark.parametrize("kind, norm_path", [("gpt2", "transformer.ln_f"),
                                             ("neox", "gpt_neox.final_layer_norm"),
                                             ("llama", "model.norm")])
def test_unembed_reproduces_logits(tiny_lms, kind, norm_path):
    lm = tiny_lms[kind]
    norm, W_U = unembed(lm)
    assert norm is lm.model.get_submodule(norm_path)
    assert W_U.shape == (lm.d_model, lm.vocab_size)
    ids = torch.tensor([[5, 17, 42, 99]])
    with torch.inference_mode():
        out = lm.model(ids, output_hidden_states=True)
    # hidden_states[-1] already has the final norm applied by HF.
    torch.testing.assert_close(out.hidden_states[-1] @ W_U, out.logits, rtol=1e-4, atol=1e-5)


def test_load_dtype_is_applied(tiny_model_dirs):
    lm = load_language_model(str(tiny_model_dirs["gpt2"]), device="cpu", dtype="bfloat16")
    assert lm.dtype == torch.bfloat16 and next(lm.model.parameters()).dtype == torch.bfloat16


def test_missing_model_folder(tmp_path):
    with pytest.raises(LoadError, match=f"model folder {tmp_path / 'nope'} does not exist"):
        load_language_model(str(tmp_path / "nope"), device="cpu")


def test_model_folder_without_config(tmp_path):
    (tmp_path / "weights.bin").write_bytes(b"")
    with pytest.raises(LoadError, match=r"has no config.json \(found: weights.bin\)"):
        load_language_model(str(tmp_path), device="cpu")


def test_offline_hub_id_is_a_load_error(monkeypatch, tmp_path):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_HOME", str(tmp_path))
    with pytest.raises(LoadError, match=r"'featureboard-test/absent' \(hub id \(offline\)\)"):
        load_language_model("featureboard-test/absent", device="cpu")
