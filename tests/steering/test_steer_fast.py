"""The per-token fast paths of steering agree with the plain definitions, and controls match the method."""

from __future__ import annotations

import warnings

import pytest
import torch

from app.ml.sae import load_sae, save_sae
from app.ml.steering import (
    Intervention,
    RowSpec,
    SamplingConfig,
    _plans,
    feature_activations,
    generate_rows,
    prompt_token_ids,
    steering_vector,
)
from tests.ml.factories import build_sae_cfg, random_sae_tensors


def _sae(tmp_path, **overrides):
    cfg = build_sae_cfg(**overrides)
    return load_sae(save_sae(random_sae_tensors(cfg, seed=4), cfg, tmp_path / "sae"))


@pytest.mark.parametrize("overrides", [
    {"architecture": "standard"},
    {"architecture": "standard", "apply_b_dec_to_input": False},
    {"architecture": "jumprelu"},
    {"architecture": "topk"},  # features interact: the full encode, then the columns
    {"architecture": "gated"},
    {"architecture": "standard", "normalize_activations": "expected_average_only_in", "norm_scaling_factor": 2.5},
    {"architecture": "standard", "normalize_activations": "layer_norm"},
])
def test_feature_encoder_equals_encode_then_columns(tmp_path, overrides):
    sae = _sae(tmp_path, **overrides)
    x = torch.randn(3, 5, sae.d_in, generator=torch.Generator().manual_seed(0))
    features = [7, 2, 40]
    assert torch.allclose(sae.feature_encoder(features)(x), sae.encode(x)[..., features], atol=1e-5)


@pytest.fixture(scope="module")
def ids(tiny_lm):
    return prompt_token_ids(tiny_lm, "The quick brown fox")


@pytest.mark.parametrize("method", ["additive", "clamp"])
def test_hook_activation_while_generating_matches_a_steered_rerun(tiny_lm, tied_sae, ids, method):
    """Measured step by step on the KV-cached generation = one steered forward over prompt + text."""
    feature = int(feature_activations(tiny_lm, ids, tied_sae).max(dim=0).values.argmax())
    row = RowSpec("steered", (Intervention(tied_sae, feature, 4.0),), method)
    out = generate_rows(tiny_lm, ids, [RowSpec("default"), row], SamplingConfig(n_tokens=6))["steered"]
    rerun = feature_activations(tiny_lm, ids + out.ids, tied_sae, steer=row)[:, feature]
    # positions that read a generated token, i.e. every generated token but the last
    expected = rerun[len(ids): len(ids) + len(out.ids) - 1].mean()
    assert out.hook_activation[0] == pytest.approx(float(expected), abs=1e-4)


def _deltas(sae, rows, acts):
    plan = _plans(rows, seed=3)[0][sae.cfg.hook_name]
    return plan(acts) - acts  # [rows, pos, d_in]


def test_additive_control_is_a_constant_random_vector_of_the_steering_norm(tied_sae):
    ivs = (Intervention(tied_sae, 3, 2.0), Intervention(tied_sae, 9, -1.0))
    acts = torch.randn(2, 4, tied_sae.d_in)
    delta = _deltas(tied_sae, [RowSpec("steered", ivs, "additive"), RowSpec("control", ivs, "additive", True)], acts)
    norm = float(steering_vector(tied_sae, [3, 9], [2.0, -1.0]).norm())
    assert torch.allclose(delta[1].norm(dim=-1), torch.full((4,), norm), rtol=1e-5)
    assert torch.allclose(delta[1], delta[1, :1].expand(4, -1))  # the same vector at every position
    cos = torch.nn.functional.cosine_similarity(delta[0, 0], delta[1, 0], dim=0)
    assert abs(float(cos)) < 0.9


def test_clamp_control_has_the_clamps_per_token_norm_in_one_random_direction(tied_sae):
    ivs = (Intervention(tied_sae, 3, 5.0),)
    acts = (torch.randn(1, 6, tied_sae.d_in, generator=torch.Generator().manual_seed(1)) * 3).expand(2, -1, -1)
    delta = _deltas(tied_sae, [RowSpec("steered", ivs, "clamp"), RowSpec("control", ivs, "clamp", True)], acts)
    # clamp moves each token by |5 − f_3(x)| · W_dec[3]: a different amount per token
    assert float(delta[0].norm(dim=-1).std()) > 1e-3
    assert torch.allclose(delta[1].norm(dim=-1), delta[0].norm(dim=-1), rtol=1e-5)
    direction = delta[1] / delta[1].norm(dim=-1, keepdim=True)
    assert torch.allclose(direction, direction[:1].expand_as(direction), atol=1e-5)
    cos = torch.nn.functional.cosine_similarity(direction[0], tied_sae.W_dec[3], dim=0)
    assert abs(float(cos)) < 0.9


def test_generation_uses_the_current_cache_api(tiny_lm, tied_sae, ids):
    """No deprecation warning from transformers (past_key_values goes away in 5.40)."""
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        out = generate_rows(tiny_lm, ids, [RowSpec("s", (Intervention(tied_sae, 1, 1.0),), "clamp")],
                            SamplingConfig(n_tokens=3))
    assert len(out["s"].ids) == 3
