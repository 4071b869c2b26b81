"""The shipped offline demo: real artifacts, loaded through the same code path as hub models."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys

import pytest

from app.paths import DEMO_ARTIFACTS_DIR

HOOKS = ["blocks.1.hook_resid_post", "blocks.3.hook_resid_post"]


@pytest.fixture(scope="module")
def manifest() -> dict:
    return json.loads((DEMO_ARTIFACTS_DIR / "manifest.json").read_text())


def test_artifacts_are_small_and_match_manifest(manifest):
    files = [p for p in DEMO_ARTIFACTS_DIR.rglob("*") if p.is_file()]
    total = sum(p.stat().st_size for p in files)
    assert total <= 20 * 2**20, f"demo artifacts are {total / 2**20:.1f} MB, over the 20 MB budget"
    for rel, digest in manifest["sha256"].items():
        assert hashlib.sha256((DEMO_ARTIFACTS_DIR / rel).read_bytes()).hexdigest() == digest, f"{rel} changed since the build"


def test_manifest_meets_the_quality_bar(manifest):
    for hook in HOOKS:
        stats = manifest["saes"][hook]
        assert stats["explained_variance"] >= 0.85, (hook, stats)
        assert stats["dead"] <= 0.05 * stats["d_sae"], (hook, stats)
        assert stats["ce_recovered"] >= 0.90, (hook, stats)


def test_demo_loads_through_the_hub_code_path():
    import torch

    from app.ml import capture_activations, check_sae_fits_model, load_language_model, load_sae

    lm = load_language_model(str(DEMO_ARTIFACTS_DIR / "model"), device="cpu")
    assert lm.architecture == "gpt2" and lm.n_layers == 4
    ids = lm.tokenizer("We must make a new support for peace.", return_tensors="pt")["input_ids"]
    assert lm.tokenizer.decode(ids[0]) == "We must make a new support for peace."
    ids = torch.cat([torch.tensor([[lm.bos_token_id]]), ids], dim=1)
    for hook in HOOKS:
        sae = load_sae(DEMO_ARTIFACTS_DIR / "saes" / hook)
        assert check_sae_fits_model(sae, lm) == sae.cfg.d_in
        acts = capture_activations(lm, ids, hook_names=[hook])[hook]
        f = sae.encode(acts[0, 1:])
        assert 0 < (f > 0).float().sum(-1).mean() < sae.cfg.d_sae / 4


@pytest.mark.slow
def test_demo_command_serves_health_with_model(demo_database, tmp_path):
    data_dir = tmp_path / "data"
    data_dir.mkdir()
    shutil.copy(demo_database, data_dir / "featureboard.db")
    env = {**os.environ, "FEATUREBOARD_DATA_DIR": str(data_dir)}
    result = subprocess.run([sys.executable, "-m", "app.cli", "demo", "--get", "/-/health"], capture_output=True,
                            text=True, env=env, timeout=300)
    assert result.returncode == 0, result.stderr
    health = json.loads(result.stdout)
    assert health["model"]["architecture"] == "gpt2"
    assert health["device"] == "cpu"
    assert set(health["model"]["saes"]) == {s["name"] for s in health["sources"]}
    assert {s["hook_name"] for s in health["sources"]} == set(HOOKS)
    assert health["database_backend"] == "sqlite"
