"""A tiny seeded model with two SAEs on it (one bundle), and the database rows of their sources.

Nothing is downloaded: the model and tokenizer come from tests/ml/factories (random weights, a byte-level
BPE trained on a few sentences). Feature rows get densities, maxima and histograms; DENSE features are
stored with a density of 20 % so the default 10 % filter hides them.
"""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import insert
from sqlalchemy.orm import Session

from app.store.models import Feature, Source

SOURCES = {"tiny-l1": "blocks.1.hook_resid_post", "tiny-l2": "blocks.2.hook_resid_post"}
D_SAE = 64
DENSE = {0, 1, 2, 3, 4, 5, 6, 7}  # stored density 20 %
N_POSITIONS = 64  # the tiny gpt2's context length


def build_bundle(root: Path):
    """(bundle, model folder): the tiny gpt2 with one SAE per entry of SOURCES."""
    from app.ml.bundle import load_bundle
    from tests.ml.factories import build_sae_folder, build_tiny_model

    model_dir = build_tiny_model(root, "gpt2")
    paths = {}
    for seed, (name, hook) in enumerate(SOURCES.items()):
        layer = int(hook.split(".")[1])
        paths[name] = str(build_sae_folder(root, seed=seed, name=name, hook_name=hook, hook_layer=layer, d_sae=D_SAE))
    return load_bundle(str(model_dir), paths, device="cpu"), model_dir


def act_hist(max_act: float) -> dict:
    edges = [max_act * i / 10 for i in range(11)]
    return {"edges": edges, "counts": [50, 30, 20, 10, 8, 6, 4, 2, 1, 1]}


def seed_sources(session: Session, bundle, model_name: str, max_act: float = 2.0) -> None:
    for name, sae in bundle.saes.items():
        source = Source(name=name, model_name=model_name, sae_path=str(sae.path), hook_name=sae.cfg.hook_name,
                        architecture=sae.cfg.architecture, d_in=sae.cfg.d_in, d_sae=sae.cfg.d_sae,
                        status="complete", n_tokens=10_000, n_contexts=100)
        session.add(source)
        session.flush()
        session.execute(insert(Feature), [
            {"source_id": source.id, "index": i, "n_active": 500 if i in DENSE else 10,
             "density": 0.2 if i in DENSE else 0.001, "max_act": max_act, "mean_act": max_act / 4,
             "act_hist": act_hist(max_act)}
            for i in range(sae.cfg.d_sae)
        ])
    session.commit()
