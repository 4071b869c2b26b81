"""A tiny seeded model with two SAEs on it (one bundle), and the database rows of their sources.

Nothing is downloaded: the model and tokenizer come from tests/ml/factories (random weights, a byte-level
BPE trained on a few sentences). Feature rows (tests/fixtures.add_source) get densities, maxima and histograms; DENSE features are
stored with a density of 20 % so the default 10 % filter hides them.
"""

from __future__ import annotations

from pathlib import Path

from tests.fixtures import add_source

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


def seed_sources(target, bundle, model_name: str, max_act: float = 2.0) -> None:
    """One source row per SAE of ``bundle`` (tests/fixtures.add_source), DENSE features at density 20 %."""
    for name, sae in bundle.saes.items():
        cfg = sae.cfg
        add_source(target, name=name, model_name=model_name, sae_path=str(sae.path), hook_name=cfg.hook_name,
                   architecture=cfg.architecture, d_in=cfg.d_in, d_sae=cfg.d_sae, with_examples=False,
                   max_act=max_act, densities=[0.2 if i in DENSE else 0.001 for i in range(cfg.d_sae)])
