"""Label scorers, in the spirit of EleutherAI's Delphi. Each returns a ScoreResult over held-out windows.

- embedding: embed the label and each held-out window (all-MiniLM-L6-v2); score = ROC AUC of the cosine similarity
  separating activating from non-activating windows (0.5 = chance, 1 = the label's text sorts them perfectly).
- detection (LLM): shown plain windows and the label, the model says for each whether the feature is active in it;
  score = balanced accuracy (mean of the hit rate on activating and the correct-rejection rate on the others).
- fuzzing (LLM): windows with tokens marked <<like this>>: activating ones marked where the feature is active,
  non-activating ones marked at the positions an activating window has (so the marks are wrong); the model says
  whether the marks are what the label describes; score = balanced accuracy.

Every score comes with a 95 % bootstrap interval (activating and non-activating windows resampled separately,
BOOTSTRAP draws, fixed seed): with 50 + 50 held-out windows an embedding AUC is typically +-0.08.

Provider errors and malformed replies give status "failed" with the reason and no score.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field

import numpy as np

from app.services.autolabel.data import HeldOut, Window
from app.services.autolabel.llm import ChatClient, LLMError
from app.services.autolabel.prompts import detection_messages, fuzzing_messages, parse_binary_list

SCORERS = ("embedding", "detection", "fuzzing")
LLM_SCORERS = ("detection", "fuzzing")


BOOTSTRAP = 500


@dataclass
class ScoreResult:
    method: str
    score: float | None
    inputs: dict
    details: list = field(default_factory=list)
    status: str = "ok"
    error: str | None = None
    ci: tuple[float, float] | None = None  # 95 % bootstrap interval of `score`

    @classmethod
    def failed(cls, method: str, inputs: dict, error: str, details: list | None = None) -> "ScoreResult":
        return cls(method=method, score=None, inputs=inputs, details=details or [], status="failed", error=error)


def roc_auc(scores, truth) -> float:
    """Area under the ROC curve of `scores` for binary `truth` (ties count half): Mann-Whitney U / (n_pos n_neg)."""
    s = np.asarray(scores, dtype=np.float64)
    t = np.asarray(truth, dtype=bool)
    pos, neg = s[t], s[~t]
    if not len(pos) or not len(neg):
        raise ValueError("ROC AUC needs at least one positive and one negative")
    greater = (pos[:, None] > neg[None, :]).sum()
    ties = (pos[:, None] == neg[None, :]).sum()
    return float((greater + 0.5 * ties) / (len(pos) * len(neg)))


def _auc_matrix(pos: np.ndarray, neg: np.ndarray) -> np.ndarray:
    """``[draws]`` ROC AUC of each row pair of ``pos [draws, n_pos]`` and ``neg [draws, n_neg]``, ties half."""
    neg_sorted = np.sort(neg, axis=1)
    below = np.stack([np.searchsorted(row, p, side="left") for row, p in zip(neg_sorted, pos)])
    upto = np.stack([np.searchsorted(row, p, side="right") for row, p in zip(neg_sorted, pos)])
    return (below + 0.5 * (upto - below)).sum(axis=1) / (pos.shape[1] * neg.shape[1])


def bootstrap_interval(statistic, values, truth, draws: int = BOOTSTRAP, seed: int = 0) -> tuple[float, float]:
    """95 % percentile interval of ``statistic`` over stratified resamples (positives and negatives resampled
    separately, so every draw has both classes). ``statistic``: "auc" or "balanced_accuracy"."""
    v = np.asarray(values, dtype=np.float64)
    t = np.asarray(truth, dtype=bool)
    pos, neg = v[t], v[~t]
    rng = np.random.default_rng(seed)
    pos_draws = pos[rng.integers(0, len(pos), (draws, len(pos)))]
    neg_draws = neg[rng.integers(0, len(neg), (draws, len(neg)))]
    if statistic == "auc":
        stats = _auc_matrix(pos_draws, neg_draws)
    else:  # balanced accuracy of binary predictions
        stats = (pos_draws.mean(axis=1) + (1 - neg_draws).mean(axis=1)) / 2
    lo, hi = np.percentile(stats, [2.5, 97.5])
    return round(float(lo), 4), round(float(hi), 4)


def balanced_accuracy(predictions, truth) -> float:
    p = np.asarray(predictions, dtype=bool)
    t = np.asarray(truth, dtype=bool)
    if not t.any() or t.all():
        raise ValueError("balanced accuracy needs both classes")
    return float(((p & t).sum() / t.sum() + (~p & ~t).sum() / (~t).sum()) / 2)


def _no_data(method: str, held: HeldOut) -> str | None:
    if not held.activating or not held.non_activating:
        return (f"{method}: not enough held-out examples ({len(held.activating)} activating, "
                f"{len(held.non_activating)} non-activating)")
    return None


def embedding_score(label: str, held: HeldOut, embedder) -> ScoreResult:
    """ROC AUC of cos(label, window) separating held-out activating from non-activating windows."""
    inputs = held.inputs()
    problem = _no_data("embedding", held)
    if problem:
        return ScoreResult.failed("embedding", inputs, problem)
    windows = held.activating + held.non_activating
    vectors = embedder.embed([label] + [w.text for w in windows])
    sims = vectors[1:] @ vectors[0]
    truth = [w.activating for w in windows]
    details = [{"ref": w.ref, "activating": w.activating, "similarity": round(float(s), 4), "text": w.text}
               for w, s in zip(windows, sims)]
    return ScoreResult("embedding", roc_auc(sims, truth), inputs, details,
                       ci=bootstrap_interval("auc", sims, truth))


def _shuffled(held: HeldOut, seed: int) -> list[Window]:
    windows = held.activating + held.non_activating
    random.Random(seed).shuffle(windows)
    return windows


async def _classify(client: ChatClient, method: str, label: str, items: list[tuple[Window, str]],
                    batch: int, build) -> list[int]:
    predictions: list[int] = []
    for i in range(0, len(items), batch):
        texts = [text for _, text in items[i:i + batch]]
        reply = await client.chat(build(label, texts))
        predictions += parse_binary_list(reply, len(texts))
    return predictions


async def _classification_score(method: str, label: str, held: HeldOut, client: ChatClient, items: list, batch: int,
                                messages) -> ScoreResult:
    """Ask the LLM which of ``items`` ((window, shown text)) the label describes; balanced accuracy."""
    inputs = held.inputs()
    try:
        predictions = await _classify(client, method, label, items, batch, messages)
    except LLMError as exc:
        return ScoreResult.failed(method, inputs, str(exc))
    details = [{"ref": w.ref, "activating": w.activating, "prediction": p, "correct": bool(p) == w.activating,
                "text": text} for (w, text), p in zip(items, predictions)]
    truth = [w.activating for w, _ in items]
    return ScoreResult(method, balanced_accuracy(predictions, truth), inputs, details,
                       ci=bootstrap_interval("balanced_accuracy", predictions, truth))


async def detection_score(label: str, held: HeldOut, client: ChatClient, batch: int = 10, seed: int = 0) -> ScoreResult:
    problem = _no_data("detection", held)
    if problem:
        return ScoreResult.failed("detection", held.inputs(), problem)
    items = [(w, w.text) for w in _shuffled(held, seed)]
    return await _classification_score("detection", label, held, client, items, batch, detection_messages)


async def fuzzing_score(label: str, held: HeldOut, client: ChatClient, batch: int = 10, seed: int = 0) -> ScoreResult:
    problem = _no_data("fuzzing", held)
    if problem:
        return ScoreResult.failed("fuzzing", held.inputs(), problem)
    rng = random.Random(seed)
    marks = [w.active_positions() for w in held.activating]
    items = []
    for w in _shuffled(held, seed):
        if w.activating:
            items.append((w, w.highlighted()))
        else:  # wrong marks: the positions of a random activating window, clipped to this one
            wrong = {p for p in rng.choice(marks) if p < len(w.pieces)} or {len(w.pieces) // 2}
            items.append((w, w.highlighted(wrong)))
    return await _classification_score("fuzzing", label, held, client, items, batch, fuzzing_messages)
