"""Output evidence against direct recomputation on a seeded tiny model (hand-written hooks, no steering code)."""

from __future__ import annotations

import pytest
import torch

from app.ml.hooks import hooked
from app.ml.output_evidence import ablation_effects, promoted_tokens
from app.ml.steering import prompt_token_ids

HOOK = "blocks.1.hook_resid_post"


def _logits(lm, ids, fn=None):
    with torch.inference_mode():
        if fn is None:
            return lm.model(input_ids=ids, use_cache=False).logits.float()
        with hooked(lm, HOOK, fn):
            return lm.model(input_ids=ids, use_cache=False).logits.float()


@pytest.fixture(scope="module")
def contexts(tiny_lm):
    texts = ["The quick brown fox jumps over the lazy dog.", "A feature fires on some tokens and stays silent."]
    ids = [prompt_token_ids(tiny_lm, t)[:10] for t in texts]
    return torch.tensor(ids)


def test_ablation_matches_subtracting_the_features_decoder_image(tiny_lm, tied_sae, contexts):
    acts = {}
    _logits(tiny_lm, contexts, lambda x: acts.setdefault("x", x))
    f_all = tied_sae.encode(acts["x"])  # [n, pos, d_sae]
    feature = int((f_all[:, :-1] > 0).sum(dim=(0, 1)).argmax())  # fires most often
    result = ablation_effects(tiny_lm, tied_sae, feature, contexts)

    # by hand: x − f_i(x) · W_dec[i] (tied SAE, no normalisation: the clamp to 0 with the error term kept)
    def ablate(x):
        return x - tied_sae.encode(x)[..., feature:feature + 1] * tied_sae.W_dec[feature]

    clean, ablated = _logits(tiny_lm, contexts), _logits(tiny_lm, contexts, ablate)
    fires = f_all[:, :-1, feature] > 0
    lp_c, lp_a = torch.log_softmax(clean[:, :-1], -1), torch.log_softmax(ablated[:, :-1], -1)
    tgt = contexts[:, 1:, None]
    delta = (lp_c.gather(-1, tgt) - lp_a.gather(-1, tgt))[..., 0][fires].mean()
    kl = torch.nn.functional.kl_div(lp_a, lp_c, log_target=True, reduction="none").sum(-1)[fires].mean()
    assert result["n_positions"] == int(fires.sum()) > 0
    assert result["delta_loss"] == pytest.approx(float(delta), abs=1e-5)
    assert result["kl"] == pytest.approx(float(kl), abs=1e-5)
    assert result["kl"] > 0


def test_a_feature_that_never_fires_has_no_effect(tiny_lm, tied_sae, contexts):
    contexts = contexts[:1, :2]  # one counted position
    acts = {}
    _logits(tiny_lm, contexts, lambda x: acts.setdefault("x", x))
    silent = [i for i in range(tied_sae.d_sae) if not bool((tied_sae.encode(acts["x"])[:, :-1, i] > 0).any())]
    assert silent, "fixture: some feature must stay silent on one position"
    assert ablation_effects(tiny_lm, tied_sae, silent[0], contexts) == {"delta_loss": 0.0, "kl": 0.0, "n_positions": 0}


def test_promoted_tokens_match_adding_the_decoder_row(tiny_lm, tied_sae):
    prompts = ["The", "A fox"]
    out = promoted_tokens(tiny_lm, tied_sae, [3, 8], [6.0, -4.0], prompts, k=5)
    for row, (feature, strength) in zip(out, [(3, 6.0), (8, -4.0)]):
        p_clean = p_steered = 0
        for prompt in prompts:
            ids = torch.tensor([prompt_token_ids(tiny_lm, prompt)])
            p_clean = p_clean + torch.softmax(_logits(tiny_lm, ids)[0, -1], -1) / 2
            steer = lambda x, f=feature, s=strength: x + s * tied_sae.W_dec[f]  # noqa: E731
            p_steered = p_steered + torch.softmax(_logits(tiny_lm, ids, steer)[0, -1], -1) / 2
        expected = (p_steered - p_clean).topk(5)
        assert [t["token_id"] for t in row] == expected.indices.tolist()
        assert [t["delta_prob"] for t in row] == pytest.approx(expected.values.tolist(), abs=1e-6)
