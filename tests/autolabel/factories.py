"""Small, meaningful rows for autolabel tests: features that fire on known words of a real (tiny) tokenizer.

`build_word_source(session, folder)` trains a byte-level BPE on WORD_TEXT (milliseconds), cuts the token stream
into contexts, and writes one feature per word of FEATURE_WORDS whose activations are nonzero exactly on that
word's tokens: top examples (by value), interval examples, top logits naming the word, plus one dead feature.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from sqlalchemy import insert
from sqlalchemy.orm import Session

from app.store.models import Context, Example, Feature, Source

FEATURE_WORDS = ["Paris", "dog", "rain", "piano", "coffee", "river"]
FILLER = [
    "the meeting went on for a long time and nobody said much",
    "numbers such as seven and twelve were written on the board",
    "she opened the window and looked at the street below",
    "a small bird sat quietly on the old wooden fence",
    "the report was finished late on a cold Tuesday evening",
    "he counted the boxes twice before signing the form",
]
TEMPLATES = [
    "we talked about {w} for hours yesterday",
    "my friend loves {w} more than anything",
    "there was {w} everywhere in the story",
    "nobody expected {w} to matter so much",
]
WORD_TEXT = " ".join(
    f"{FILLER[(i + j) % len(FILLER)]}. {TEMPLATES[(i * 3 + j) % len(TEMPLATES)].format(w=w)}."
    for j in range(4) for i, w in enumerate(FEATURE_WORDS)) + " " + " ".join(FILLER * 4)
CONTEXT_LEN = 32


def build_tokenizer(folder: Path) -> Path:
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers

    folder.mkdir(parents=True, exist_ok=True)
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=600, special_tokens=["<|endoftext|>"],
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), show_progress=False)
    tok.train_from_iterator([WORD_TEXT] * 3, trainer=trainer)
    tok.save(str(folder / "tokenizer.json"))
    return folder


def build_word_source(session: Session, folder: Path, name: str = "words-sae") -> Source:
    """A source over real token text; feature i (< len(FEATURE_WORDS)) fires on FEATURE_WORDS[i]; the last is dead."""
    from tokenizers import Tokenizer

    tok = Tokenizer.from_file(str(folder / "tokenizer.json"))
    ids = tok.encode(WORD_TEXT).ids
    pieces = [tok.decode([t]).strip().lower() for t in ids]
    n_features = len(FEATURE_WORDS) + 1
    source = Source(name=name, model_name=str(folder), sae_path="/saes/words", hook_name="blocks.0.hook_resid_post",
                    architecture="standard", d_in=16, d_sae=n_features, cfg={}, corpus={"name": "words"}, params={},
                    health={}, n_tokens=len(ids), n_contexts=0, status="complete")
    session.add(source)
    session.flush()
    contexts = []
    for k, start in enumerate(range(0, len(ids) - CONTEXT_LEN + 1, CONTEXT_LEN)):
        contexts.append(Context(corpus_key=f"{name}-corpus", ordinal=k,
                                token_ids=np.asarray(ids[start:start + CONTEXT_LEN], dtype="<i4").tobytes()))
    session.add_all(contexts)
    session.flush()
    source.n_contexts = len(contexts)
    rng = np.random.default_rng(0)
    features, examples = [], []
    for f, word in enumerate(FEATURE_WORDS):
        word_ids = tok.encode(" " + word).ids
        hits = []  # (context, acts) for contexts where the word's tokens occur
        for k, ctx in enumerate(contexts):
            acts = np.zeros(CONTEXT_LEN, dtype=np.float32)
            for pos in range(CONTEXT_LEN):
                if pieces[k * CONTEXT_LEN + pos] == word.lower() or ids[k * CONTEXT_LEN + pos] == word_ids[-1]:
                    acts[pos] = float(rng.uniform(2.0, 10.0))
            if acts.any():
                hits.append((ctx, acts))
        hits.sort(key=lambda h: -h[1].max())
        max_act = float(hits[0][1].max())
        ranked = [("top", -1, r, h) for r, h in enumerate(hits[:8])]
        ranked += [("interval", b, r, h) for b in range(2) for r, h in enumerate(hits[b::2][:3])]
        for kind, b, r, (ctx, acts) in ranked:
            examples.append({"source_id": source.id, "feature_index": f, "kind": kind, "bin": b, "rank": r,
                             "context_id": ctx.id, "max_value": float(acts.max()), "max_pos": int(acts.argmax()),
                             "acts": acts.astype("<f2").tobytes()})
        features.append(_feature_row(source.id, f, max_act, len(hits), word_ids[-1], word))
    features.append(_feature_row(source.id, n_features - 1, 0.0, 0, 0, ""))
    session.execute(insert(Feature), features)
    session.execute(insert(Example), examples)
    session.commit()
    return source


def _feature_row(source_id: int, index: int, max_act: float, n_active: int, token_id: int, word: str) -> dict:
    top = [{"token_id": token_id, "token": f" {word}", "value": 1.5},
           {"token_id": token_id, "token": f" {word}s", "value": 0.9}] if word else []
    return {"source_id": source_id, "index": index, "n_active": n_active, "density": n_active / 1000,
            "max_act": max_act, "mean_act": max_act / 2, "act_hist": {}, "intervals": [], "top_logits": top,
            "bottom_logits": [], "logit_hist": {}, "neighbours": []}
