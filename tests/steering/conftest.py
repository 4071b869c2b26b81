"""Steering fixtures: a seeded tiny GPT-2 with a tied SAE (W_enc = W_dec.T, unit rows), so that clamping a
feature to 0 removes it exactly when the SAE reads the hook again; the shipped demo model is used for the
app tests when its artifacts exist (app.paths.DEMO_ARTIFACTS_DIR)."""

from __future__ import annotations

import pytest
import torch

from app.ml.bundle import ModelBundle
from app.ml.lm import load_language_model
from app.ml.sae import load_sae, save_sae
from app.paths import DEMO_ARTIFACTS_DIR
from tests.ml.factories import build_sae_cfg, build_tiny_model

torch.set_num_threads(1)
PROMPT = "The quick brown fox"
SOURCE = "tiny-b1"


@pytest.fixture(scope="session")
def tiny_lm(tmp_path_factory):
    return load_language_model(str(build_tiny_model(tmp_path_factory.mktemp("steer-model"), "gpt2", seed=1)),
                               device="cpu")


@pytest.fixture(scope="session")
def tied_sae(tmp_path_factory):
    cfg = build_sae_cfg(d_sae=64, hook_name="blocks.1.hook_resid_post")
    gen = torch.Generator().manual_seed(3)
    w_dec = torch.randn(cfg.d_sae, cfg.d_in, generator=gen)
    w_dec = w_dec / w_dec.norm(dim=1, keepdim=True)
    tensors = {"W_enc": w_dec.T.clone(), "W_dec": w_dec, "b_enc": torch.zeros(cfg.d_sae), "b_dec": torch.zeros(cfg.d_in)}
    folder = save_sae(tensors, cfg, tmp_path_factory.mktemp("steer-sae") / "sae")
    return load_sae(folder)


@pytest.fixture(scope="session")
def tiny_bundle(tiny_lm, tied_sae):
    return ModelBundle(lm=tiny_lm, saes={SOURCE: tied_sae})


@pytest.fixture
def app_bundle(tiny_bundle):
    """(bundle, source name, feature index) for the app tests: the demo model when shipped, else the tiny one.

    A fresh lock per test, so a test that holds it cannot block another."""
    import threading

    if (DEMO_ARTIFACTS_DIR / "model" / "config.json").is_file():
        bundle = _demo_bundle()
        return ModelBundle(lm=bundle.lm, saes=bundle.saes, lock=threading.Lock()), next(iter(bundle.saes)), 5
    return ModelBundle(lm=tiny_bundle.lm, saes=tiny_bundle.saes, lock=threading.Lock()), SOURCE, 5


_DEMO: list = []


def _demo_bundle() -> ModelBundle:
    if not _DEMO:
        from app.ml.bundle import load_bundle

        saes = {p.name: str(p) for p in sorted((DEMO_ARTIFACTS_DIR / "saes").iterdir())}
        _DEMO.append(load_bundle(str(DEMO_ARTIFACTS_DIR / "model"), saes, device="cpu"))
    return _DEMO[0]
