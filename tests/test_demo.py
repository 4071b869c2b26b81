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
SAES = {"blocks.1.hook_resid_post": 1024, "blocks.3.hook_resid_post": 1024, "blocks.1.hook_resid_post-4k": 4096}


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
    assert {name: stats["d_sae"] for name, stats in manifest["saes"].items()} == SAES
    for hook, stats in manifest["saes"].items():
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
    for name, d_sae in SAES.items():
        sae = load_sae(DEMO_ARTIFACTS_DIR / "saes" / name)
        assert check_sae_fits_model(sae, lm) == sae.cfg.d_in and sae.cfg.d_sae == d_sae
        hook = sae.cfg.hook_name
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


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.slow
def test_first_start_prints_the_address_at_once_and_shows_progress(tmp_path):
    """`featureboard demo` on a fresh data folder: the address comes first, every page says what is being prepared
    (503 with Retry-After, its progress as JSON under /api), the terminal shows a bar per step with tokens/s and
    the real token total, and the pages open once the data is ready."""
    import time

    import httpx

    port = _free_port()
    env = {**os.environ, "FEATUREBOARD_DATA_DIR": str(tmp_path / "data"), "FEATUREBOARD_PORT": str(port)}
    err = open(tmp_path / "stderr.txt", "w+")
    proc = subprocess.Popen([sys.executable, "-m", "app.cli", "demo", "--no-model", "--tokens", "2048"], env=env,
                            stdout=subprocess.PIPE, stderr=err, text=True)
    try:
        started = time.monotonic()
        first_line = proc.stdout.readline()
        assert first_line.strip() == f"Featureboard at http://127.0.0.1:{port}"
        url = f"http://127.0.0.1:{port}"
        snapshots, page = [], None
        while time.monotonic() - started < 240:
            try:
                snap = httpx.get(url + "/-/progress.json", timeout=5).json()
            except httpx.TransportError:
                time.sleep(0.2)
                continue
            snapshots.append(snap)
            if snap["state"] != "running":
                break
            if page is None and snap["current"]:
                page = httpx.get(url + "/sources/anything", timeout=5)
                api = httpx.get(url + "/api/v1", timeout=5)
            time.sleep(0.3)
        assert snapshots[-1]["state"] == "ready", snapshots[-1]
        assert page is not None and page.status_code == 503 and page.headers["retry-after"]
        assert "Preparing the demo" in page.text and "<progress" in page.text and "Step " in page.text
        assert api.status_code == 503 and api.json()["progress"]["title"] == "Preparing the demo"
        # the tokens it really reads, not a budget (from the step list: a short pass 1 may fall between two polls)
        pass1 = [step for step in snapshots[-1]["steps"] if step["phase"] == "pass1"]
        assert pass1[0]["unit"] == "tokens" and pass1[0]["total"] == 2048 and pass1[0]["done"] == 2048
        assert [s["phase"] for s in snapshots[-1]["steps"]] == ["pass1", "pass2", "pass3", "write", "match", "drafts"]
        drafts = snapshots[-1]["steps"][-1]
        assert drafts["unit"] == "features" and drafts["done"] == drafts["total"] > 0
        assert httpx.get(url + "/", timeout=10).status_code == 200
        # the demo arrives labeled: every alive feature has a label in the source table
        name = httpx.get(url + "/api/v1", timeout=10).json()["data"][0]["name"]
        table = httpx.get(f"{url}/api/v1/sources/{name}/features", params={"hide_dead": 1, "per_page": 200},
                          timeout=10).json()
        assert table["count"] > 0 and all(row["label"] for row in table["data"]), table["data"][:3]
    finally:
        proc.terminate()
        proc.wait(timeout=30)
    err.seek(0)
    terminal = err.read().replace("\r", "\n")
    assert "[1/6] running the model and its three SAEs" in terminal and "2.05k/2.05k" in terminal and "tok/s" in terminal
    assert "[4/6] measuring health and writing features" in terminal and "[5/6] matching features" in terminal and "[6/6] drafting a label" in terminal
    assert "Ready after" in terminal


def test_preparation_reports_rate_and_eta_of_the_current_step():
    import io

    from app.services.startup import DEMO_STEPS, Preparation

    out = io.StringIO()
    prep = Preparation("Preparing the demo", DEMO_STEPS[:5], out=out)
    assert prep.snapshot()["current"] is None and prep.snapshot()["step"] == 0
    prep.update(0, 1000, "pass1")
    prep.steps[0].started -= 2.0  # two seconds ago
    prep.update(400, 1000, "pass1")
    now = prep.snapshot()["current"]
    assert now["percent"] == 40.0 and 150 < now["rate_per_s"] <= 200 and 2 < now["eta_s"] <= 4
    prep.update(0, 2, "write")
    snap = prep.snapshot()
    assert snap["step"] == 4 and [s["state"] for s in snap["steps"]] == ["done", "waiting", "waiting", "running", "waiting"]
    prep.fail("disk full")
    assert prep.snapshot()["state"] == "failed" and "disk full" in out.getvalue()


def test_demo_matches_across_widths_and_layers(demo_db_url, make_app_client):
    """The demo's three SAEs are precomputed in one run, so the compare page has figures on first start: decoder
    cosine and correlation between the two widths on blocks.1, correlation only across layers."""
    client = make_app_client(database_url=demo_db_url)
    wide = client.get("/api/v1/sources/blocks.1.hook_resid_post/compare/blocks.1.hook_resid_post-4k").json()
    assert wide["measured"] and wide["has_cos"] and wide["b"]["d_sae"] == 4096
    by = {(s["direction"], s["measure"]): s for s in wide["summaries"]}
    # the 1k features' directions have close counterparts among 4k (0.95 mean best cosine on the full demo)
    assert by[("a→b", "cos")]["mean_max"] > 0.8 and by[("a→b", "corr")]["matched"] > 0
    across = client.get("/api/v1/sources/blocks.1.hook_resid_post/compare/blocks.3.hook_resid_post").json()
    assert across["measured"] and not across["has_cos"]
    page = client.get("/sources/blocks.1.hook_resid_post/compare/blocks.1.hook_resid_post-4k")
    assert page.status_code == 200 and "blocks.1.hook_resid_post-4k" in page.text
