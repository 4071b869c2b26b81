"""SAE health figures against a recomputation with plain PyTorch forward hooks on the fixture world's model."""

from __future__ import annotations

import math

import pytest
import torch


def _plain_ce(model, ids, valid, block=None, replace=None) -> float:
    """Mean next-token loss over valid targets; ``replace(output) -> output`` on ``model.transformer.h[block]``."""
    handle = None
    if replace is not None:
        def hook(_module, _inputs, output):
            hidden = output[0] if isinstance(output, tuple) else output
            new = replace(hidden)
            return (new, *output[1:]) if isinstance(output, tuple) else new
        handle = model.transformer.h[block].register_forward_hook(hook)
    try:
        with torch.no_grad():
            logits = model(input_ids=ids, use_cache=False).logits
    finally:
        if handle is not None:
            handle.remove()
    losses = torch.nn.functional.cross_entropy(logits[:, :-1].transpose(1, 2), ids[:, 1:], reduction="none")
    mask = valid[:, 1:].float()
    return float((losses * mask).sum() / mask.sum())


@pytest.mark.parametrize("given_clean", [False, True])
def test_health_equals_plain_hook_recomputation(world, given_clean):
    from app.ml import load_language_model, load_sae
    from app.precompute.health import sample_health

    lm = load_language_model(world.model, device="cpu")
    sae = load_sae(world.saes["world-l1"], device="cpu")  # blocks.1.hook_resid_post = output of block 1
    gen = torch.Generator().manual_seed(0)
    ids = torch.randint(0, lm.model.config.vocab_size, (3, 12), generator=gen)
    valid = torch.ones_like(ids, dtype=torch.bool)
    valid[:, 0] = False  # BOS keeps its activation and is not scored
    valid[2, 9:] = False  # padding at the end of one context

    captured = {}

    def keep(hidden):
        captured["x"] = hidden.clone()
        return hidden

    ce_clean = _plain_ce(lm.model, ids, valid, 1, keep)
    x = captured["x"]
    recon = sae.decode(sae.encode(x))
    mask = valid.unsqueeze(-1)
    ce_sae = _plain_ce(lm.model, ids, valid, 1, lambda h: torch.where(mask, recon, h))
    ce_zero = _plain_ce(lm.model, ids, valid, 1, lambda h: torch.where(mask, torch.zeros_like(h), h))
    xv, rv = x[valid], recon[valid]
    explained = 1 - float(((xv - rv) ** 2).sum() / ((xv - xv.mean(0)) ** 2).sum())

    got = sample_health(lm, sae, ids, valid, ce_clean=ce_clean if given_clean else None)
    assert got["ce_loss_clean"] == pytest.approx(ce_clean, rel=1e-5)
    assert got["ce_loss_sae"] == pytest.approx(ce_sae, rel=1e-5)
    assert got["ce_loss_zero_ablation"] == pytest.approx(ce_zero, rel=1e-5)
    assert got["explained_variance"] == pytest.approx(explained, rel=1e-4, abs=1e-5)
    assert got["mse"] == pytest.approx(float(((xv - rv) ** 2).mean()), rel=1e-4)
    assert got["health_tokens"] == int(valid.sum()) and got["health_contexts"] == 3
    assert math.isclose(got["ce_recovered"], (ce_zero - ce_sae) / (ce_zero - ce_clean), rel_tol=1e-4)
