"""Small, meaningful rows for autolabel tests: features that fire on known words of a real (tiny) tokenizer.

`build_word_source(target, folder)` uses a byte-level BPE trained on WORD_TEXT (milliseconds), cuts the token stream
into contexts, and writes one feature per word of FEATURE_WORDS whose activations are nonzero exactly on that
word's tokens: top examples (by value), interval examples, top logits naming the word, plus one dead feature.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from tests.fixtures import ExampleRows, write_rows
from tests.ml.factories import build_tokenizer as build_ml_tokenizer

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
    """The words tokenizer (tests/ml/factories.build_tokenizer on WORD_TEXT), saved in ``folder``."""
    build_ml_tokenizer(vocab_size=600, texts=[WORD_TEXT] * 3, folder=folder)
    return folder


def build_word_source(target, folder: Path, name: str = "words-sae") -> int:
    """A source over real token text, written through the precompute writer (tests/fixtures.write_rows); feature
    i (< len(FEATURE_WORDS)) fires on FEATURE_WORDS[i]; the last is dead. Returns the source id."""
    from tokenizers import Tokenizer

    tok = Tokenizer.from_file(str(folder / "tokenizer.json"))
    ids = tok.encode(WORD_TEXT).ids
    pieces = [tok.decode([t]).strip().lower() for t in ids]
    n_features = len(FEATURE_WORDS) + 1
    contexts = {k: ids[start:start + CONTEXT_LEN]
                for k, start in enumerate(range(0, len(ids) - CONTEXT_LEN + 1, CONTEXT_LEN))}
    row = {"name": name, "model_name": str(folder), "sae_path": "/saes/words", "hook_name": "blocks.0.hook_resid_post",
           "architecture": "standard", "d_in": 16, "d_sae": n_features, "cfg": {}, "corpus": {"name": "words"},
           "params": {}, "health": {}, "n_tokens": len(ids), "n_contexts": len(contexts)}
    rng = np.random.default_rng(0)
    features, examples = [], ExampleRows()
    for f, word in enumerate(FEATURE_WORDS):
        word_ids = tok.encode(" " + word).ids
        hits = []  # (context ordinal, acts) for contexts where the word's tokens occur
        for k in contexts:
            acts = np.zeros(CONTEXT_LEN, dtype=np.float32)
            for pos in range(CONTEXT_LEN):
                if pieces[k * CONTEXT_LEN + pos] == word.lower() or ids[k * CONTEXT_LEN + pos] == word_ids[-1]:
                    acts[pos] = float(rng.uniform(2.0, 10.0))
            if acts.any():
                hits.append((k, acts))
        hits.sort(key=lambda h: -h[1].max())
        max_act = float(hits[0][1].max())
        ranked = [(True, -1, r, h) for r, h in enumerate(hits[:8])]
        ranked += [(False, b, r, h) for b in range(2) for r, h in enumerate(hits[b::2][:3])]
        for is_top, b, r, (k, acts) in ranked:
            examples.add(f, is_top, b, r, k, float(acts.max()), int(acts.argmax()), acts)
        features.append(_feature_row(f, max_act, len(hits), word_ids[-1], word))
    features.append(_feature_row(n_features - 1, 0.0, 0, 0, ""))
    return write_rows(target, row, f"{name}-corpus", contexts, [(features, examples.done())])


def _feature_row(index: int, max_act: float, n_active: int, token_id: int, word: str) -> dict:
    top = [{"token_id": token_id, "token": f" {word}", "value": 1.5},
           {"token_id": token_id, "token": f" {word}s", "value": 0.9}] if word else []
    return {"index": index, "n_active": n_active, "density": n_active / 1000,
            "max_act": max_act, "mean_act": max_act / 2, "act_hist": {}, "intervals": [], "top_logits": top,
            "bottom_logits": [], "logit_hist": {}, "neighbours": []}
