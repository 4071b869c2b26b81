"""Correctness of app/ml/steering.py on a seeded tiny model with a tied SAE."""

from __future__ import annotations

import math

import pytest
import torch

from app.ml.steering import (
    Intervention,
    RowSpec,
    SamplingConfig,
    feature_activations,
    generate_rows,
    prompt_token_ids,
    random_direction,
    run_steering,
    steering_vector,
)

PROMPT = "The quick brown fox"  # as in conftest.py

N = 8


@pytest.fixture(scope="module")
def ids(tiny_lm):
    return prompt_token_ids(tiny_lm, PROMPT)


@pytest.fixture(scope="module")
def active_feature(tiny_lm, tied_sae, ids) -> int:
    """The feature with the largest activation on the prompt."""
    acts = feature_activations(tiny_lm, ids, tied_sae)
    return int(acts.max(dim=0).values.argmax())


def _rows(tiny_lm, ids, rows, **cfg):
    return generate_rows(tiny_lm, ids, rows, SamplingConfig(n_tokens=N, **cfg))


@pytest.mark.parametrize("temperature", [0.0, 1.0])
def test_strength_zero_gives_exactly_the_default_text(tiny_lm, tied_sae, ids, temperature):
    zero = (Intervention(tied_sae, 3, 0.0),)
    out = _rows(tiny_lm, ids, [RowSpec("default"), RowSpec("zero", zero, "additive")], temperature=temperature, seed=5)
    assert out["zero"].ids == out["default"].ids
    alone = _rows(tiny_lm, ids, [RowSpec("zero", zero, "additive")], temperature=temperature, seed=5)
    assert alone["zero"].ids == out["default"].ids


def test_same_seed_gives_the_same_text_twice(tiny_lm, tied_sae, ids):
    steer = (Intervention(tied_sae, 3, 2.0),)
    rows = [RowSpec("default"), RowSpec("steered", steer, "additive")]
    first = _rows(tiny_lm, ids, rows, temperature=1.0, top_p=0.9, seed=11)
    second = _rows(tiny_lm, ids, rows, temperature=1.0, top_p=0.9, seed=11)
    assert [first[k].ids for k in first] == [second[k].ids for k in second]
    assert len(first["default"].ids) >= 1


def test_large_strength_changes_text_and_raises_the_feature(tiny_lm, tied_sae, ids, active_feature):
    f = active_feature
    out = _rows(tiny_lm, ids, [RowSpec("default"), RowSpec("steered", (Intervention(tied_sae, f, 50.0),), "additive")])
    assert out["steered"].ids != out["default"].ids
    default_acts = feature_activations(tiny_lm, ids + out["default"].ids, tied_sae)[len(ids):, f]
    assert out["steered"].hook_activation[0] > float(default_acts.mean()) + 10


def test_clamp_zero_removes_a_feature_active_on_the_prompt(tiny_lm, tied_sae, ids, active_feature):
    f = active_feature
    before = feature_activations(tiny_lm, ids, tied_sae)[:, f]
    assert float(before.max()) > 0, "fixture: the chosen feature must fire on the prompt"
    ablate = RowSpec("ablate", (Intervention(tied_sae, f, 0.0),), "clamp")
    after = feature_activations(tiny_lm, ids, tied_sae, steer=ablate)[:, f]
    assert torch.all(after.abs() < 1e-5), after


def test_clamp_to_a_value_sets_the_feature(tiny_lm, tied_sae, ids, active_feature):
    f = active_feature
    before = feature_activations(tiny_lm, ids, tied_sae)[:, f]
    clamp = RowSpec("clamp", (Intervention(tied_sae, f, 3.0),), "clamp")
    after = feature_activations(tiny_lm, ids, tied_sae, steer=clamp)[:, f]
    # Where the feature fired, re-reading gives the value exactly (tied SAE); where its pre-activation was
    # negative the ReLU had hidden how far below zero it was, so the read-back lands a little under the value.
    assert torch.allclose(after[before > 0], torch.full_like(after[before > 0], 3.0), atol=1e-4)
    assert torch.all((after > 2.5) & (after <= 3.0 + 1e-4))


def test_greedy_matches_model_generate_when_nothing_is_steered(tiny_lm, tied_sae, ids):
    model = tiny_lm.model
    expected = model.generate(torch.tensor([ids]), max_new_tokens=N, do_sample=False,
                              pad_token_id=tiny_lm.tokenizer.eos_token_id)[0, len(ids):].tolist()
    plain = _rows(tiny_lm, ids, [RowSpec("default")])
    beside_steering = _rows(tiny_lm, ids, [RowSpec("default"), RowSpec("s", (Intervention(tied_sae, 1, 9.0),), "additive")])
    assert plain["default"].ids == expected
    assert beside_steering["default"].ids == expected


def test_top5_alternatives_are_the_models_probabilities(tiny_lm, ids):
    out = _rows(tiny_lm, ids, [RowSpec("default")])
    for token in out["default"].tokens:
        assert len(token.top) == 5
        probs = [a["prob"] for a in token.top]
        assert probs == sorted(probs, reverse=True) and sum(probs) <= 1 + 1e-6
        assert token.top[0]["id"] == token.id  # greedy picks the most likely token
        assert math.isclose(token.prob, probs[0], rel_tol=1e-6)


def test_control_direction_has_the_steering_norm(tiny_lm, tied_sae, ids):
    vector = steering_vector(tied_sae, [3, 4], [6.0, -2.0])
    control = random_direction(tied_sae.d_in, float(vector.norm()), seed=1, device="cpu", dtype=torch.float32)
    assert math.isclose(float(control.norm()), float(vector.norm()), rel_tol=1e-5)
    assert abs(float(torch.nn.functional.cosine_similarity(control, vector, dim=0))) < 0.9


def test_run_with_control_and_sweep_is_scored(tiny_lm, tied_sae, ids, active_feature):
    out = run_steering(tiny_lm, ids, [Intervention(tied_sae, active_feature, 20.0)], "additive",
                       SamplingConfig(n_tokens=4), control=True, sweep_multipliers=(0.5, 2.0))
    assert set(out["rows"]) == {"default", "steered", "control", "sweep:0.5", "sweep:2"}
    for row in out["rows"].values():
        assert math.isfinite(row["perplexity"]) and row["perplexity"] > 1
        assert len(row["activation_mean"]) == 1
    assert out["rows"]["steered"]["hook_activation"][0] > out["rows"]["sweep:0.5"]["hook_activation"][0]


def test_stop_ends_every_row(tiny_lm, tied_sae, ids):
    calls = []
    out = generate_rows(tiny_lm, ids, [RowSpec("default")], SamplingConfig(n_tokens=N),
                        should_stop=lambda: calls.append(1) or len(calls) > 2)
    assert out["default"].finish == "stopped" and len(out["default"].ids) == 2
