"""Tiny seeded model + SAEs + a small text corpus, built once per session (nothing downloaded)."""

from __future__ import annotations

import json
import random

import pytest
import torch

from tests.ml.factories import SENTENCES, build_sae_folder, build_tiny_model

torch.set_num_threads(1)

CONTEXT_SIZE = 16
JSON_COLUMNS = {"cfg", "corpus", "params", "health", "act_hist", "intervals", "top_logits", "bottom_logits",
                "logit_hist", "neighbours"}


def write_corpus(folder, n_docs: int = 24, seed: int = 0):
    """A few hundred short documents' worth of sentences from the tokenizer's training text."""
    rng = random.Random(seed)
    folder.mkdir(parents=True, exist_ok=True)
    for d in range(n_docs):
        words = " ".join(rng.choice(SENTENCES).replace("\n", " ") for _ in range(rng.randint(2, 5)))
        (folder / f"doc{d:03d}.txt").write_text(words + "\n", encoding="utf-8")
    # an exact duplicate document: its contexts are dropped when they line up identically
    (folder / "zz-dup.txt").write_text((folder / "doc000.txt").read_text() * 3, encoding="utf-8")
    return folder


@pytest.fixture(scope="session")
def tiny(tmp_path_factory):
    """{"model": folder, "saes": [standard on blocks.1, topk on blocks.2], "corpus": folder}."""
    root = tmp_path_factory.mktemp("precompute-tiny")
    model = build_tiny_model(root, "gpt2")
    saes = [
        build_sae_folder(root, "standard", seed=1, name="sae-l1", context_size=CONTEXT_SIZE),
        build_sae_folder(root, "topk", seed=2, name="sae-l2", hook_name="blocks.2.hook_resid_post", hook_layer=2,
                         context_size=CONTEXT_SIZE),
    ]
    corpus = write_corpus(root / "corpus")
    return {"model": str(model), "saes": [str(s) for s in saes], "corpus": str(corpus), "root": root}


@pytest.fixture
def make_config(tiny, tmp_path):
    from app.precompute.runner import PrecomputeConfig

    def factory(**overrides):
        values = dict(model=tiny["model"], saes=tuple(tiny["saes"]), corpus=tiny["corpus"], n_tokens=1600,
                      batch_size=8, top_k=5, n_intervals=4, examples_per_interval=3, hist_bins=20,
                      database_url=f"sqlite:///{tmp_path / 'fb.db'}", checkpoint_dir=str(tmp_path / "ckpt"),
                      device="cpu", health_contexts=4, progress=False, checkpoint_every_s=0.0)
        values.update(overrides)
        return PrecomputeConfig(**values)

    return factory


def dump_database(url: str) -> dict:
    """Every row of the precompute tables (created_at left out), for equality checks."""
    from sqlalchemy import create_engine, text

    engine = create_engine(url)
    out = {}
    with engine.connect() as conn:
        for table, order in (("source", "id"), ("feature", "source_id, \"index\""), ("context", "id"),
                             ("example", "id")):
            rows = conn.execute(text(f"SELECT * FROM {table} ORDER BY {order}")).mappings().all()
            out[table] = [{k: json.loads(v) if k in JSON_COLUMNS and isinstance(v, str) else v
                           for k, v in row.items() if k != "created_at"} for row in rows]
    engine.dispose()
    return out
