"""End to end: ``PrecomputeRunner`` on a tiny Gemma 2 with an SAELens-format ``hook_mlp_out`` SAE
and on a tiny GPT-2 with an ``hook_mlp_in → hook_mlp_out`` transcoder; every stored example's
per-token activations equal a recomputation with this test's own forward hooks and raw tensors."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from safetensors.torch import load_file

from app.ml.sae import param_shapes, save_sae
from app.ml.sae_config import SAEConfig
from app.precompute.runner import PrecomputeConfig, PrecomputeRunner
from tests.fixtures import write_corpus
from tests.ml.factories import D_MODEL, build_tiny_model
from tests.precompute.conftest import dump_database

CASES = {
    # Gemma 2: hook_mlp_out is the post-feedforward norm's output (TransformerLens), not the raw MLP's.
    "gemma2": dict(architecture="jumprelu", hook_name="blocks.1.hook_mlp_out", apply_b_dec_to_input=False,
                   hook=("model.layers.1.post_feedforward_layernorm", "out")),
    # GPT-2: hook_mlp_in is ln_2's input (resid_mid); the transcoder writes at the MLP's output.
    "gpt2": dict(architecture="transcoder", hook_name="blocks.1.hook_mlp_in", hook_name_out="blocks.1.hook_mlp_out",
                 d_out=D_MODEL, apply_b_dec_to_input=False, hook=("transformer.h.1.ln_2", "in")),
}


def _sae_folder(root, kind, spec) -> str:
    cfg = SAEConfig(d_in=D_MODEL, d_sae=48, model_name=f"tiny-{kind}", context_size=16,
                    **{k: v for k, v in spec.items() if k != "hook"},
                    extra={"metadata.neuronpedia_id": f"tiny-{kind}/1-test"})
    gen = torch.Generator().manual_seed(3)
    tensors = {n: torch.rand(s, generator=gen) * 0.2 if n == "threshold" else torch.randn(s, generator=gen) * 0.3
               for n, s in param_shapes(cfg).items()}
    return str(save_sae(tensors, cfg, root / f"sae-{kind}"))


def _plain_hook_acts(lm, ids: np.ndarray, module_path: str, side: str) -> torch.Tensor:
    seen = {}
    module = lm.model.get_submodule(module_path)
    if side == "in":
        handle = module.register_forward_pre_hook(lambda _m, args: seen.setdefault("x", args[0]))
    else:
        handle = module.register_forward_hook(lambda _m, _a, out: seen.setdefault("x", out))
    try:
        with torch.inference_mode():
            lm.model(torch.from_numpy(ids.astype(np.int64))[None])
    finally:
        handle.remove()
    return seen["x"][0]


def _reference_features(w, architecture, x):
    pre = x @ w["W_enc"] + w["b_enc"]
    f = torch.relu(pre)
    return torch.where(pre > w["threshold"], f, torch.zeros_like(f)) if architecture == "jumprelu" else f


@pytest.mark.parametrize("kind", list(CASES))
def test_stored_examples_equal_forward_hook_recomputation(tmp_path, kind):
    from app.ml import load_language_model

    spec = CASES[kind]
    model = build_tiny_model(tmp_path, kind)
    sae_path = _sae_folder(tmp_path, kind, spec)
    config = PrecomputeConfig(model=str(model), saes=(sae_path,), corpus=str(write_corpus(tmp_path / "corpus", 12)),
                              n_tokens=480, batch_size=8, top_k=4, n_intervals=2, examples_per_interval=2,
                              hist_bins=10, database_url=f"sqlite:///{tmp_path / 'fb.db'}",
                              checkpoint_dir=str(tmp_path / "ckpt"), device="cpu", health_contexts=3,
                              progress=False, checkpoint_every_s=0.0)
    PrecomputeRunner(config).run()
    db = dump_database(config.database_url)
    (source,) = db["source"]
    summary = source["cfg"]["summary"]
    assert (summary["hook_name"], summary["hook_name_out"], summary["architecture"]) == (
        spec["hook_name"], spec.get("hook_name_out", spec["hook_name"]), spec["architecture"])
    assert source["cfg"]["neuronpedia_id"] == f"tiny-{kind}/1-test"
    assert np.isfinite(source["health"]["explained_variance"]) and "ce_recovered" in source["health"]

    lm = load_language_model(str(model), device="cpu")
    w = load_file(f"{sae_path}/sae_weights.safetensors")
    contexts = {row["id"]: row for row in db["context"]}
    examples = db["example"]
    assert len(examples) > 10
    wrong_hook_differs = False
    for e in examples:
        ids = np.frombuffer(contexts[e["context_id"]]["token_ids"], "<i4")
        x = _plain_hook_acts(lm, ids, *spec["hook"])
        f = _reference_features(w, spec["architecture"], x)[:, e["feature_index"]]
        stored = np.frombuffer(e["acts"], dtype="<f2").astype(np.float32)
        valid = ~np.isin(ids, lm.tokenizer.all_special_ids)  # special tokens are stored as 0
        assert (stored[~valid] == 0).all()
        np.testing.assert_allclose(stored[valid], f.numpy()[valid], rtol=2e-3, atol=2e-3)
        assert e["max_value"] == pytest.approx(float(f[e["max_pos"]]), rel=1e-4, abs=1e-5)
        if kind == "gemma2":  # the raw MLP output (the old, wrong tensor) gives other numbers
            raw = _plain_hook_acts(lm, ids, "model.layers.1.mlp", "out")
            wrong = _reference_features(w, "jumprelu", raw)[:, e["feature_index"]].numpy()
            wrong_hook_differs |= not np.allclose(wrong[valid], f.numpy()[valid], atol=1e-2)
    assert wrong_hook_differs or kind != "gemma2"


def test_transcoder_health_is_measured_at_the_output_hook(tmp_path):
    from app.ml import load_language_model, load_sae
    from app.precompute.health import sample_health

    model = build_tiny_model(tmp_path, "gpt2")
    sae = load_sae(_sae_folder(tmp_path, "gpt2", CASES["gpt2"]))
    lm = load_language_model(str(model), device="cpu")
    ids = torch.randint(3, 200, (3, 10), generator=torch.Generator().manual_seed(0))
    valid = torch.ones_like(ids, dtype=torch.bool)
    valid[:, 0] = False
    health = sample_health(lm, sae, ids, valid)
    x_in = torch.stack([_plain_hook_acts(lm, row.numpy().astype("<i4"), "transformer.h.1.ln_2", "in") for row in ids])
    target = torch.stack([_plain_hook_acts(lm, row.numpy().astype("<i4"), "transformer.h.1.mlp", "out") for row in ids])
    w = load_file(f"{sae.path}/sae_weights.safetensors")
    recon = (torch.relu(x_in @ w["W_enc"] + w["b_enc"]) @ w["W_dec"] + w["b_dec"])[valid]
    t = target[valid]
    explained = 1 - ((t - recon) ** 2).sum() / ((t - t.mean(0)) ** 2).sum()
    assert health["explained_variance"] == pytest.approx(float(explained), rel=1e-4, abs=1e-5)
    assert json.dumps(sae.summary())
