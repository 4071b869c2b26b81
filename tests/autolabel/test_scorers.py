"""Scorers: the metrics, the embedding scorer (real model), and detection / fuzzing against the fake LLM."""

from __future__ import annotations

import asyncio

import pytest

from app.services.autolabel.data import EMBED_WINDOW, LLM_WINDOW, held_out_windows, load_feature
from app.services.autolabel.llm import ChatClient, LLMConfig
from app.services.autolabel.scorers import balanced_accuracy, detection_score, embedding_score, fuzzing_score, roc_auc
from app.store import sources as qs
from tests.autolabel.conftest import needs_embed


def test_roc_auc_and_balanced_accuracy():
    assert roc_auc([0.9, 0.8, 0.1, 0.2], [1, 1, 0, 0]) == 1.0
    assert roc_auc([0.1, 0.2, 0.9, 0.8], [1, 1, 0, 0]) == 0.0
    assert roc_auc([0.5, 0.5], [1, 0]) == 0.5
    assert balanced_accuracy([1, 1, 1, 0], [1, 1, 0, 0]) == 0.75
    with pytest.raises(ValueError):
        roc_auc([0.1], [1])


def test_bootstrap_interval_holds_the_score_and_narrows_with_more_windows():
    import numpy as np

    from app.services.autolabel.scorers import _auc_matrix, bootstrap_interval

    rng = np.random.default_rng(3)
    pos, neg = rng.normal(1, 1, (4, 30)), rng.normal(0, 1, (4, 20))
    assert np.allclose(_auc_matrix(pos, neg),
                       [roc_auc(np.r_[p, n], [1] * 30 + [0] * 20) for p, n in zip(pos, neg)])  # ties included below
    assert _auc_matrix(np.array([[0.5, 1.0]]), np.array([[0.5, 0.0]]))[0] == roc_auc([0.5, 1.0, 0.5, 0.0], [1, 1, 0, 0])

    def interval(n):
        values = np.r_[rng.normal(1, 1, n), rng.normal(0, 1, n)]
        truth = [1] * n + [0] * n
        lo, hi = bootstrap_interval("auc", values, truth)
        assert lo <= roc_auc(values, truth) <= hi
        assert bootstrap_interval("auc", values, truth) == (lo, hi)  # seeded: the same interval every time
        return hi - lo

    assert interval(200) < interval(10)
    lo, hi = bootstrap_interval("balanced_accuracy", [1] * 45 + [0] * 5 + [0] * 40 + [1] * 10, [1] * 50 + [0] * 50)
    assert lo < balanced_accuracy([1] * 45 + [0] * 5 + [0] * 40 + [1] * 10, [1] * 50 + [0] * 50) < hi
    assert 0.75 < lo < 0.85 < hi < 0.95


def _held(sessions, index=0, width=LLM_WINDOW):
    with sessions() as session:
        feature = load_feature(session, qs.source_by_ref(session, "words-sae"), index)
        return held_out_windows(session, feature, n_activating=6, n_non_activating=6, width=width)


@needs_embed
def test_embedding_scorer_prefers_the_right_word(sessions):
    from app.ml.embed import get_embedder

    held = _held(sessions, 3, EMBED_WINDOW)  # the "piano" feature
    right = embedding_score('fires on "piano"', held, get_embedder())
    wrong = embedding_score('fires on "tax law"', held, get_embedder())
    assert right.status == "ok" and right.score >= 0.9
    assert right.score > wrong.score
    assert len(right.details) == len(held.activating) + len(held.non_activating)
    assert {"ref", "activating", "similarity", "text"} <= set(right.details[0])
    assert right.ci[0] <= right.score <= right.ci[1] and wrong.ci[0] <= wrong.score <= wrong.ci[1]


def _client(fake_llm):
    return ChatClient(LLMConfig(url=fake_llm.url, model="fake", retries=0))


async def _both(label, held, fake_llm):
    client = _client(fake_llm)
    try:
        return await detection_score(label, held, client, batch=4), await fuzzing_score(label, held, client, batch=4)
    finally:
        await client.aclose()


def test_detection_and_fuzzing_give_balanced_accuracy(sessions, fake_llm):
    held = _held(sessions, 0)
    detection, fuzzing = asyncio.run(_both('the word "Paris"', held, fake_llm))
    assert detection.status == "ok" and detection.score == 1.0
    assert fuzzing.status == "ok" and fuzzing.score == 1.0
    assert all(d["correct"] for d in detection.details)
    wrong_detection, _ = asyncio.run(_both('the word "violin"', held, fake_llm))
    assert wrong_detection.score == 0.5  # says no to everything: all silent right, all active wrong
    assert fake_llm.requests and all(r["model"] == "fake" for r in fake_llm.requests)


@pytest.mark.parametrize("mode", ["error", "malformed"])
def test_provider_errors_and_malformed_replies_are_failures_not_scores(sessions, fake_llm, mode):
    fake_llm.mode = mode
    detection, fuzzing = asyncio.run(_both('the word "Paris"', _held(sessions, 0), fake_llm))
    for result in (detection, fuzzing):
        assert result.status == "failed" and result.score is None
        assert ("HTTP 500" in result.error) if mode == "error" else ("no JSON list" in result.error)
        assert result.inputs["activating"]
