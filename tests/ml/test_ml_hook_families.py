"""TransformerLens hook placement on every supported family, checked against this test's own
forward hooks on the Hugging Face modules (tiny random models built from configs, no hub)."""

from __future__ import annotations

import pytest
import torch

from app.ml.errors import LoadError
from app.ml.hooks import capture_activations, hooked, resolve_hook

IDS = torch.tensor([[3, 14, 15, 92, 65, 35, 8], [2, 71, 82, 81, 8, 28, 1]])
KINDS = ["hook_resid_pre", "hook_resid_mid", "hook_resid_post", "hook_attn_out", "hook_mlp_out", "hook_mlp_in",
         "ln1.hook_normalized", "ln2.hook_normalized", "attn.hook_z", "mlp.hook_post"]
_LLAMA = {"attn": "self_attn", "attn_out": ("self_attn", "out"), "mlp_out": ("mlp", "out"),
          "mlp_in": ("post_attention_layernorm", "in"), "ln1": ("input_layernorm", "out"),
          "ln2": ("post_attention_layernorm", "out"), "z": ("self_attn.o_proj", "in"), "post": ("mlp.down_proj", "in")}
_GEMMA = {**_LLAMA, "attn_out": ("post_attention_layernorm", "out"), "mlp_out": ("post_feedforward_layernorm", "out"),
          "mlp_in": ("pre_feedforward_layernorm", "in"), "ln2": ("pre_feedforward_layernorm", "out")}
# family → (stack path, where each TransformerLens tensor is in HF terms), written out by hand.
FAMILIES = {
    "gpt2": ("transformer.h", {"attn": "attn", "attn_out": ("attn", "out"), "mlp_out": ("mlp", "out"),
                               "mlp_in": ("ln_2", "in"), "ln1": ("ln_1", "out"), "ln2": ("ln_2", "out"),
                               "z": ("attn.c_proj", "in"), "post": ("mlp.c_proj", "in")}),
    "neox": ("gpt_neox.layers", {"attn": "attention", "attn_out": ("attention", "out"), "mlp_out": ("mlp", "out"),
                                 "mlp_in": ("post_attention_layernorm", "in"), "ln1": ("input_layernorm", "out"),
                                 "ln2": ("post_attention_layernorm", "out"), "z": ("attention.dense", "in"),
                                 "post": ("mlp.dense_4h_to_h", "in")}),
    "llama": ("model.layers", _LLAMA), "qwen2": ("model.layers", _LLAMA), "qwen3": ("model.layers", _LLAMA),
    "mistral": ("model.layers", _LLAMA), "gemma2": ("model.layers", _GEMMA), "gemma3": ("model.layers", _GEMMA),
}
SANDWICH = {"gemma2", "gemma3"}


def _config(kind: str):
    import transformers as tf

    kw = dict(vocab_size=100, hidden_size=32, num_hidden_layers=2, num_attention_heads=4, intermediate_size=48,
              max_position_embeddings=32)
    gqa = dict(num_key_value_heads=2, head_dim=8)
    return {
        "gpt2": lambda: tf.GPT2Config(vocab_size=100, n_positions=32, n_embd=32, n_layer=2, n_head=4),
        "neox": lambda: tf.GPTNeoXConfig(**kw, use_parallel_residual=False),
        "neox_parallel": lambda: tf.GPTNeoXConfig(**kw, use_parallel_residual=True),
        "llama": lambda: tf.LlamaConfig(**kw, **gqa),
        "qwen2": lambda: tf.Qwen2Config(**kw, **gqa),
        "qwen3": lambda: tf.Qwen3Config(**kw, **gqa),
        "mistral": lambda: tf.MistralConfig(**kw, **gqa),
        "gemma2": lambda: tf.Gemma2Config(**kw, **gqa),
        "gemma3": lambda: tf.Gemma3TextConfig(**kw, **gqa),
    }[kind]()


@pytest.fixture(scope="module")
def models():
    from transformers import AutoModelForCausalLM

    out = {}
    for i, kind in enumerate([*FAMILIES, "neox_parallel"]):
        torch.manual_seed(i)
        model = AutoModelForCausalLM.from_config(_config(kind)).eval()
        with torch.no_grad():  # norms start at identity; make every module matter
            for p in model.parameters():
                p.add_(torch.randn_like(p) * 0.2)
        out[kind] = model
    return out


def _reference(model, kind: str, layer: int = 1) -> dict[str, torch.Tensor]:
    """The TransformerLens tensors of block ``layer``, read with plain forward hooks."""
    stack, where = FAMILIES["neox" if kind == "neox_parallel" else kind]
    block = model.get_submodule(f"{stack}.{layer}")
    seen: dict[str, torch.Tensor] = {}

    def grab(name, side):
        def hook(_m, args, *rest):
            value = args[0] if side == "in" else rest[-1]
            seen[name] = (value[0] if isinstance(value, tuple) else value).detach().clone()
        return hook

    handles = [block.register_forward_pre_hook(grab("hook_resid_pre", "in")),
               block.register_forward_hook(grab("hook_resid_post", "out"))]
    names = {"attn_out": "hook_attn_out", "mlp_out": "hook_mlp_out", "mlp_in": "hook_mlp_in",
             "ln1": "ln1.hook_normalized", "ln2": "ln2.hook_normalized", "z": "attn.hook_z", "post": "mlp.hook_post"}
    for key, tl in names.items():
        path, side = where[key]
        module = block.get_submodule(path)
        handles.append(module.register_forward_pre_hook(grab(tl, "in")) if side == "in"
                       else module.register_forward_hook(grab(tl, "out")))
    try:
        with torch.inference_mode():
            model(IDS)
    finally:
        for h in handles:
            h.remove()
    return seen


@pytest.mark.parametrize("kind", [*FAMILIES, "neox_parallel"])
def test_every_hook_matches_plain_forward_hooks(models, kind):
    model = models[kind]
    parallel = kind == "neox_parallel"
    kinds = [k for k in KINDS if not (parallel and k == "hook_resid_mid")]
    acts = capture_activations(model, IDS, hook_names=[f"blocks.1.{k}" for k in kinds])
    ref = _reference(model, kind)
    for k in kinds:
        expected = ref["hook_mlp_in"] if k == "hook_resid_mid" else ref[k]
        torch.testing.assert_close(acts[f"blocks.1.{k}"], expected, rtol=0, atol=0, msg=f"{kind} {k}")
    cfg = model.config
    heads = cfg.num_attention_heads if hasattr(cfg, "num_attention_heads") else cfg.n_head
    head_dim = getattr(cfg, "head_dim", None) or cfg.hidden_size // heads
    assert acts["blocks.1.attn.hook_z"].shape == (2, 7, heads * head_dim)
    a = {k: acts[f"blocks.1.{k}"] for k in kinds}
    # TransformerLens' residual identities (independent of any module names).
    if parallel:
        torch.testing.assert_close(a["hook_mlp_in"], a["hook_resid_pre"])
        torch.testing.assert_close(a["hook_resid_pre"] + a["hook_attn_out"] + a["hook_mlp_out"], a["hook_resid_post"],
                                   rtol=1e-4, atol=1e-5)
    else:
        torch.testing.assert_close(a["hook_resid_pre"] + a["hook_attn_out"], a["hook_resid_mid"], rtol=1e-4, atol=1e-5)
        torch.testing.assert_close(a["hook_resid_mid"] + a["hook_mlp_out"], a["hook_resid_post"], rtol=1e-4, atol=1e-5)
    if kind in SANDWICH:  # the bug this guards against: Gemma's raw MLP / attention outputs are not the hooks
        block = model.model.layers[1]
        with torch.inference_mode():
            raw_mlp = block.mlp.down_proj(a["mlp.hook_post"])
            torch.testing.assert_close(block.post_feedforward_layernorm(raw_mlp), a["hook_mlp_out"])
            assert (raw_mlp - a["hook_mlp_out"]).abs().max() > 0.1 * a["hook_mlp_out"].abs().max()


def test_gpt2_hook_z_is_per_head_attention_output_heads_major(models):
    """attn.hook_z is TransformerLens' z ``[pos, head, d_head]`` flattened head-major."""
    model = models["gpt2"]
    acts = capture_activations(model, IDS, hook_names=["blocks.1.ln1.hook_normalized", "blocks.1.attn.hook_z"])
    attn = model.transformer.h[1].attn
    with torch.inference_mode():
        q, k, v = attn.c_attn(acts["blocks.1.ln1.hook_normalized"]).split(32, dim=-1)
        heads = [slice(h * 8, (h + 1) * 8) for h in range(4)]
        mask = torch.ones(7, 7, dtype=torch.bool).tril()
        z = []
        for h in heads:
            scores = (q[..., h] @ k[..., h].transpose(-1, -2)) / 8 ** 0.5
            z.append(torch.softmax(scores.masked_fill(~mask, float("-inf")), dim=-1) @ v[..., h])
    torch.testing.assert_close(acts["blocks.1.attn.hook_z"], torch.cat(z, dim=-1), rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("kind", ["gpt2", "gemma2", "neox"])
def test_resid_mid_replacement_reaches_mlp_and_residual(models, kind):
    """Replacing resid_mid changes what the MLP reads *and* the residual stream (TransformerLens);
    replacing mlp_in changes only what the MLP reads."""
    model = models[kind]
    delta = torch.linspace(-1, 1, 32)
    names = ["blocks.1.hook_resid_mid", "blocks.1.hook_mlp_out", "blocks.1.hook_resid_post"]
    clean = capture_activations(model, IDS, hook_names=names)
    with hooked(model, "blocks.1.hook_resid_mid", lambda x: x + delta):
        steered = capture_activations(model, IDS, hook_names=names[1:])
    with hooked(model, "blocks.1.hook_mlp_in", lambda x: x + delta):
        mlp_only = capture_activations(model, IDS, hook_names=names[1:])
    torch.testing.assert_close(steered["blocks.1.hook_resid_post"],
                               clean["blocks.1.hook_resid_mid"] + delta + steered["blocks.1.hook_mlp_out"],
                               rtol=1e-4, atol=1e-5)
    torch.testing.assert_close(mlp_only["blocks.1.hook_mlp_out"], steered["blocks.1.hook_mlp_out"])
    torch.testing.assert_close(mlp_only["blocks.1.hook_resid_post"],
                               clean["blocks.1.hook_resid_mid"] + mlp_only["blocks.1.hook_mlp_out"],
                               rtol=1e-4, atol=1e-5)
    assert not torch.allclose(mlp_only["blocks.1.hook_mlp_out"], clean["blocks.1.hook_mlp_out"])


def test_module_paths_with_sides_and_base_model_relative(models):
    model = models["llama"]
    acts = capture_activations(model, IDS, hook_names=[
        "model.layers.1.self_attn.o_proj.input", "blocks.1.attn.hook_z", "layers.1.mlp", "blocks.1.hook_mlp_out",
        "layers.1.mlp.input", "blocks.1.ln2.hook_normalized"])
    torch.testing.assert_close(acts["model.layers.1.self_attn.o_proj.input"], acts["blocks.1.attn.hook_z"])
    torch.testing.assert_close(acts["layers.1.mlp"], acts["blocks.1.hook_mlp_out"])
    torch.testing.assert_close(acts["layers.1.mlp.input"], acts["blocks.1.ln2.hook_normalized"])
    assert resolve_hook(model, "layers.1.mlp.input").module_path == "model.layers.1.mlp"


@pytest.mark.parametrize("kind, name, message", [
    ("neox_parallel", "blocks.1.hook_resid_mid", r"computes attention and MLP in parallel .* no resid_mid"),
    ("gpt2", "blocks.1.attn.hook_q", r"unknown hook; valid names are blocks.N.\{hook_resid_pre,hook_resid_mid,"),
    ("gpt2", "blocks.4.hook_mlp_in", r"model has 2 layers \(0-1\)"),
    ("llama", "model.layers.1.mlp.sideways", r"not a hook name .* nor a module of LlamaForCausalLM"),
])
def test_unresolvable_hooks_are_refused_before_any_work(models, kind, name, message):
    model = models[kind]
    calls = []
    handle = model.get_input_embeddings().register_forward_hook(lambda *_: calls.append(1))
    try:
        with pytest.raises(LoadError, match=message):
            capture_activations(model, IDS, hook_names=["blocks.0.hook_resid_post", name])
    finally:
        handle.remove()
    assert calls == []  # refused before the forward pass started
