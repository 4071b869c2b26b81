import pytest
import torch

from app.ml.errors import LoadError
from app.ml.hooks import capture_activations, hooked, resolve_hook
from app.ml.lm import unembed

IDS = torch.tensor([[3, 14, 15, 92, 65, 35], [8, 9, 79, 32, 38, 46]])


def _hidden_states(lm, ids=IDS):
    with torch.inference_mode():
        return lm.model(ids, output_hidden_states=True).hidden_states


@pytest.mark.parametrize("kind", ["gpt2", "neox", "llama"])
def test_capture_matches_hidden_states(tiny_lms, kind):
    lm = tiny_lms[kind]
    hidden = _hidden_states(lm)
    names = [f"blocks.{n}.hook_resid_pre" for n in range(lm.n_layers)]
    names += [f"blocks.{n}.hook_resid_post" for n in range(lm.n_layers)]
    acts = capture_activations(lm, IDS, hook_names=names)
    for n in range(lm.n_layers):
        torch.testing.assert_close(acts[f"blocks.{n}.hook_resid_pre"], hidden[n])
    for n in range(lm.n_layers - 1):
        torch.testing.assert_close(acts[f"blocks.{n}.hook_resid_post"], hidden[n + 1])
    # HF applies the final norm to the last hidden state; resid_post of the last block is before it.
    last = acts[f"blocks.{lm.n_layers - 1}.hook_resid_post"]
    assert not torch.allclose(last, hidden[-1])
    norm, _ = unembed(lm)
    with torch.inference_mode():
        torch.testing.assert_close(norm(last), hidden[-1])


@pytest.mark.parametrize("kind", ["gpt2", "neox", "llama"])
def test_resid_post_is_resid_pre_plus_attn_and_mlp(tiny_lms, kind):
    lm = tiny_lms[kind]
    names = ["blocks.1.hook_resid_pre", "blocks.1.hook_attn_out", "blocks.1.hook_mlp_out",
             "blocks.1.hook_resid_post"]
    acts = capture_activations(lm, IDS, hook_names=names)
    assert all(acts[name].shape == (2, 6, lm.d_model) for name in names)
    torch.testing.assert_close(
        acts["blocks.1.hook_resid_pre"] + acts["blocks.1.hook_attn_out"] + acts["blocks.1.hook_mlp_out"],
        acts["blocks.1.hook_resid_post"], rtol=1e-4, atol=1e-5,
    )


@pytest.mark.parametrize("kind, stack, attn", [("gpt2", "transformer.h", "attn"),
                                               ("neox", "gpt_neox.layers", "attention"),
                                               ("llama", "model.layers", "self_attn")])
def test_resolve_hook_names(tiny_lms, kind, stack, attn):
    model = tiny_lms[kind].model
    pre = resolve_hook(model, "blocks.2.hook_resid_pre")
    assert (pre.io, pre.layer, pre.module_path) == ("input", 2, f"{stack}.2")
    assert pre.module is model.get_submodule(f"{stack}.2")
    post = resolve_hook(model, "blocks.0.hook_resid_post")
    assert (post.io, post.layer, post.module_path) == ("output", 0, f"{stack}.0")
    assert resolve_hook(model, "blocks.1.hook_attn_out").module_path == f"{stack}.1.{attn}"
    assert resolve_hook(model, "blocks.1.hook_mlp_out").module is model.get_submodule(f"{stack}.1.mlp")
    plain = resolve_hook(model, f"{stack}.1.mlp")
    assert (plain.io, plain.layer, plain.name) == ("output", 1, f"{stack}.1.mlp")


def test_plain_module_path_capture(gpt2):
    acts = capture_activations(gpt2, IDS, hook_names=["transformer.h.1.mlp", "blocks.1.hook_mlp_out",
                                                      "transformer.h.1.mlp.c_fc"])
    torch.testing.assert_close(acts["transformer.h.1.mlp"], acts["blocks.1.hook_mlp_out"])
    assert acts["transformer.h.1.mlp.c_fc"].shape == (2, 6, 4 * gpt2.d_model)


@pytest.mark.parametrize("bad, message", [
    ("blocks.9.hook_resid_post", r"blocks.9.hook_resid_post: model has 3 layers \(0-2\)"),
    ("blocks.0.hook_resid_middle", r"unknown hook; valid names are blocks.N.\{hook_resid_pre,"),
    ("transformer.h.7.mlp", r"not a hook name .* nor a module of GPT2LMHeadModel"),
])
def test_bad_hook_names(gpt2, bad, message):
    with pytest.raises(LoadError, match=message):
        resolve_hook(gpt2, bad)


@pytest.mark.parametrize("kind", ["gpt2", "neox"])
def test_capture_stops_after_hook_layer(tiny_lms, kind):
    lm = tiny_lms[kind]
    last_block = resolve_hook(lm, f"blocks.{lm.n_layers - 1}.hook_resid_post").module
    calls = []
    handles = [last_block.register_forward_hook(lambda *_: calls.append("last_block")),
               lm.model.get_output_embeddings().register_forward_hook(lambda *_: calls.append("unembed"))]
    try:
        capture_activations(lm, IDS, hook_names=["blocks.0.hook_resid_post", "blocks.1.hook_resid_pre"])
        assert calls == []
        with torch.inference_mode():
            lm.model(IDS)
        assert calls == ["last_block", "unembed"]  # the counters do see a full pass
    finally:
        for handle in handles:
            handle.remove()
    # Hooks are gone: a later full forward pass is not stopped.
    with torch.inference_mode():
        assert lm.model(IDS).logits.shape == (2, 6, lm.vocab_size)


def test_capture_with_padding_mask(gpt2, token_ids):
    ids, mask = token_ids
    acts = capture_activations(gpt2, ids, mask, hook_names=["blocks.1.hook_resid_post"])
    assert acts["blocks.1.hook_resid_post"].shape == (*ids.shape, gpt2.d_model)


def _logits(lm):
    with torch.inference_mode():
        return lm.model(IDS).logits


@pytest.mark.parametrize("kind", ["gpt2", "neox", "llama"])
@pytest.mark.parametrize("hook", ["blocks.1.hook_resid_pre", "blocks.1.hook_resid_post",
                                  "blocks.1.hook_attn_out", "blocks.1.hook_mlp_out"])
def test_hooked_replaces_activation(tiny_lms, kind, hook):
    lm = tiny_lms[kind]
    clean = _logits(lm)
    seen = []
    with hooked(lm, hook, lambda acts: seen.append(acts.shape) or acts):
        torch.testing.assert_close(_logits(lm), clean, rtol=0, atol=0)
    assert seen == [(2, 6, lm.d_model)]
    # Not a constant shift: LayerNorm would remove that.
    direction = torch.linspace(-3.0, 3.0, lm.d_model)
    with hooked(lm, hook, lambda acts: acts + direction):
        steered = _logits(lm)
    assert not torch.allclose(steered, clean, atol=1e-3)
    torch.testing.assert_close(_logits(lm), clean, rtol=0, atol=0)  # hook removed on exit


def test_hooked_rejects_wrong_shape(gpt2):
    with hooked(gpt2, "blocks.0.hook_resid_post", lambda acts: acts[..., :3]):
        with pytest.raises(ValueError, match=r"replacement must have shape \(2, 6, 32\), got \(2, 6, 3\)"):
            _logits(gpt2)
    _logits(gpt2)  # removed even though the body raised
