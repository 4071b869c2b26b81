"""Precompute runs over the fixture world's tiny model, SAEs and corpus (tests/fixtures.py; nothing downloaded)."""

from __future__ import annotations

import json

import pytest
import torch

torch.set_num_threads(1)

JSON_COLUMNS = {"cfg", "corpus", "params", "health", "act_hist", "intervals", "top_logits", "bottom_logits",
                "logit_hist", "neighbours"}


@pytest.fixture(scope="session")
def tiny(world):
    """The fixture world's files: {"model": folder, "saes": [standard on blocks.1, topk on blocks.2], "corpus":
    folder, "root": folder} (tests/fixtures.py)."""
    return {"model": world.model, "saes": list(world.saes.values()), "corpus": world.corpus, "root": world.root}


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
