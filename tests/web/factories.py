"""Realistic browse rows (sources, features, contexts, examples) inserted through the models.

`build_tokenizer_dir(path)` trains a tiny byte-level BPE (milliseconds, no download) so token text is
real; `make_source(session, ...)` writes a source whose features have histograms, logits, neighbours
and examples (top and interval groups) over real token contexts.
"""

from __future__ import annotations

import random
from pathlib import Path

import numpy as np
from sqlalchemy import insert
from sqlalchemy.orm import Session

from app.store.models import Context, Example, Feature, Source

SENTENCES = [
    "The quick brown fox jumps over the lazy dog.\n",
    "Sparse autoencoders find features in language model activations.",
    "A feature fires on some tokens and stays silent on the others.\n\n",
    "Numbers like 1, 2, 3 and 42 appear in text; so do names like Ada and Alan.",
    "def add(a, b):\n    return a + b\n",
    "Caf\u00e9 cr\u00e8me \u2603 and <script>alert('x')</script> & \"quotes\".",
]


def build_tokenizer_dir(folder: Path, vocab_size: int = 320) -> Path:
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers

    folder.mkdir(parents=True, exist_ok=True)
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=vocab_size, special_tokens=["<|endoftext|>"],
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), show_progress=False)
    tok.train_from_iterator(SENTENCES * 3, trainer=trainer)
    tok.save(str(folder / "tokenizer.json"))
    return folder


def encode(folder: Path, text: str) -> list[int]:
    from tokenizers import Tokenizer

    return Tokenizer.from_file(str(folder / "tokenizer.json")).encode(text).ids


def _hist(rng: np.random.Generator, lo: float, hi: float, n: int = 50) -> dict:
    edges = np.linspace(lo, hi, n + 1)
    counts = rng.integers(0, 200, size=n)
    return {"edges": [float(e) for e in edges], "counts": [int(c) for c in counts]}


def make_source(session: Session, *, name: str = "test-sae", model_name: str = "", d_sae: int = 64,
                n_features: int | None = None, dead: set[int] = frozenset(), dense: set[int] = frozenset(),
                n_top: int = 8, n_bins: int = 3, per_bin: int = 3, context_len: int = 40, seed: int = 0,
                token_ids: list[int] | None = None, with_examples: bool = True, health: dict | None = None,
                status: str = "complete") -> Source:
    """A source with `n_features` (default d_sae) feature rows; `dead` never fire, `dense` fire on 60 %."""
    rng = np.random.default_rng(seed)
    pyrng = random.Random(seed)
    n_features = d_sae if n_features is None else n_features
    source = Source(
        name=name, model_name=model_name, sae_path=f"/saes/{name}", hook_name="blocks.1.hook_resid_post",
        architecture="standard", d_in=128, d_sae=d_sae, cfg={}, corpus={"name": "test corpus"}, params={},
        health=health if health is not None else {
            "L0": 12.5, "explained_variance": 0.81, "mse": 0.0123, "dead": len(dead), "dense": len(dense),
            "ce_clean": 3.1, "ce_spliced": 3.4, "ce_zero_ablation": 7.9, "ce_recovered": 0.94},
        n_tokens=40_000, n_contexts=312, status=status,
    )
    session.add(source)
    session.flush()

    vocab = max(token_ids) + 1 if token_ids else 300
    base_ids = token_ids or list(range(vocab))
    contexts = []
    if with_examples:
        for ordinal in range(24):
            ids = [base_ids[(ordinal * 7 + j) % len(base_ids)] for j in range(context_len)]
            contexts.append(Context(corpus_key=f"{name}-corpus", ordinal=ordinal,
                                    token_ids=np.asarray(ids, dtype="<i4").tobytes()))
        session.add_all(contexts)
        session.flush()

    feature_rows, example_rows = [], []
    for i in range(n_features):
        is_dead = i in dead
        density = 0.0 if is_dead else (0.6 if i in dense else float(10 ** rng.uniform(-5, -1)))
        max_act = 0.0 if is_dead else float(rng.uniform(1, 20))
        neighbours = [{"index": int(j), "cosine": float(rng.uniform(0.2, 0.9))}
                      for j in pyrng.sample(range(d_sae), k=min(5, d_sae)) if j != i][:4]
        top = [{"token_id": int(t), "token": f"tok{t}", "value": float(v)}
               for t, v in zip(rng.integers(0, vocab, 5), sorted(rng.uniform(0.5, 2.0, 5), reverse=True))]
        bottom = [{"token_id": int(t), "token": f"tok{t}", "value": -float(v)}
                  for t, v in zip(rng.integers(0, vocab, 5), sorted(rng.uniform(0.5, 2.0, 5), reverse=True))]
        intervals = [] if is_dead else [
            {"lo": max_act * b / n_bins, "hi": max_act * (b + 1) / n_bins, "share": round(0.7 / (b + 1), 3),
             "count": int(100 / (b + 1))} for b in range(n_bins)]
        feature_rows.append({
            "source_id": source.id, "index": i, "n_active": 0 if is_dead else max(1, int(density * 40_000)),
            "density": density, "max_act": max_act, "mean_act": max_act / 3, "intervals": intervals,
            "act_hist": {} if is_dead else _hist(rng, 0, max_act), "top_logits": top, "bottom_logits": bottom,
            "logit_hist": _hist(rng, -2, 2), "neighbours": neighbours,
        })
        if with_examples and not is_dead:
            specs = [("top", -1, r, max_act * (1 - r / (2 * n_top))) for r in range(n_top)]
            specs += [("interval", b, r, max_act * (b + 0.5) / n_bins) for b in range(n_bins) for r in range(per_bin)]
            for kind, b, rank, peak in specs:
                context = contexts[(i + rank * 3 + b) % len(contexts)] if kind == "top" else contexts[(i + rank) % 4]
                pos = int(rng.integers(0, context_len))
                acts = np.zeros(context_len, dtype=np.float32)
                acts[max(0, pos - 2):pos] = peak * 0.3
                acts[pos] = peak
                example_rows.append({
                    "source_id": source.id, "feature_index": i, "kind": kind, "bin": b, "rank": rank,
                    "context_id": context.id, "max_value": float(np.float16(peak)), "max_pos": pos,
                    "acts": acts.astype("<f2").tobytes()})
    for chunk in range(0, len(feature_rows), 5000):
        session.execute(insert(Feature), feature_rows[chunk:chunk + 5000])
    for chunk in range(0, len(example_rows), 5000):
        session.execute(insert(Example), example_rows[chunk:chunk + 5000])
    session.commit()
    return source


def make_wide_source(session: Session, *, name: str = "wide-sae", d_sae: int = 100_000, dead_every: int = 7,
                     seed: int = 0) -> Source:
    """A source with `d_sae` lean feature rows (no examples): for paging and plots at scale, inserted in bulk."""
    rng = np.random.default_rng(seed)
    source = Source(name=name, model_name="", sae_path=f"/saes/{name}", hook_name="blocks.0.hook_resid_post",
                    architecture="topk", d_in=64, d_sae=d_sae, cfg={}, corpus={}, params={}, health={"L0": 32.0},
                    n_tokens=1_000_000, n_contexts=8000, status="complete")
    session.add(source)
    session.flush()
    density = 10 ** rng.uniform(-6, -0.5, d_sae)
    density[::dead_every] = 0.0
    max_act = rng.uniform(0.5, 30, d_sae) * (density > 0)
    rows = [(source.id, i, int(d * 1_000_000), float(d), float(m), float(m) / 3, "{}", "[]", "[]", "[]", "{}", "[]")
            for i, (d, m) in enumerate(zip(density.tolist(), max_act.tolist()))]
    session.connection().exec_driver_sql(
        'INSERT INTO feature (source_id, "index", n_active, density, max_act, mean_act, act_hist, intervals, '
        "top_logits, bottom_logits, logit_hist, neighbours) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", rows)
    session.commit()
    return source
