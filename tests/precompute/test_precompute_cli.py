"""`featureboard precompute`: every flag reaches PrecomputeConfig (the runner is replaced, nothing is loaded)."""

from __future__ import annotations

from dataclasses import fields

import pytest

from app.precompute.config import PrecomputeConfig


@pytest.fixture
def captured(monkeypatch):
    configs = []

    class RecordingRunner:
        def __init__(self, config):
            configs.append(config)

        def run(self):
            return {}

    monkeypatch.setattr("app.precompute.runner.PrecomputeRunner", RecordingRunner)
    return configs


def test_every_flag_reaches_the_config(captured, tmp_path):
    from app.cli import main

    argv = ["precompute", "--model", "m", "--sae", "a", "--sae", "b", "--name", "x", "--name", "y",
            "--corpus", "hf:owner/set:test", "--text-field", "body", "--tokens", "1234", "--context-size", "64",
            "--batch-size", "7", "--top-k", "9", "--n-intervals", "3", "--examples-per-interval", "4",
            "--hist-bins", "30", "--n-logits", "6", "--n-neighbours", "8", "--seed", "5",
            "--n-matches", "3", "--n-coactive", "4", "--match-tokens", "8192", "--match-memory-mb", "64",
            "--database-url", f"sqlite:///{tmp_path}/x.db", "--checkpoint-dir", str(tmp_path / "ck"),
            "--device", "cuda:1", "--dtype", "bfloat16", "--replace", "--health-contexts", "6",
            "--checkpoint-every", "12.5", "--no-progress"]
    assert main(argv) == 0
    want = PrecomputeConfig(
        model="m", saes=("a", "b"), source_names=("x", "y"), corpus="hf:owner/set:test", text_field="body",
        n_tokens=1234, context_size=64, batch_size=7, top_k=9, n_intervals=3, examples_per_interval=4, hist_bins=30,
        n_logits=6, n_neighbours=8, seed=5, n_matches=3, n_coactive=4, match_tokens=8192, match_memory_mb=64, database_url=f"sqlite:///{tmp_path}/x.db",
        checkpoint_dir=str(tmp_path / "ck"), device="cuda:1", dtype="bfloat16", if_exists="replace",
        health_contexts=6, checkpoint_every_s=12.5, progress=False)
    assert captured == [want]
    defaults = PrecomputeConfig(model="other", saes=("a",))
    unchanged = [f.name for f in fields(PrecomputeConfig) if getattr(want, f.name) == getattr(defaults, f.name)]
    assert unchanged == [], f"no flag sets {unchanged}"  # a new config field needs its flag (and this test)


def test_defaults_are_the_config_defaults_and_settings(captured, tmp_path, monkeypatch):
    from app.cli import main

    monkeypatch.setenv("FEATUREBOARD_DATA_DIR", str(tmp_path))
    monkeypatch.delenv("FEATUREBOARD_DATABASE_URL", raising=False)
    monkeypatch.setenv("FEATUREBOARD_DEVICE", "cpu")
    assert main(["precompute", "--model", "m", "--sae", "a"]) == 0
    (config,) = captured
    defaults = PrecomputeConfig(model="m", saes=("a",))
    for f in fields(PrecomputeConfig):
        if f.name not in ("database_url", "checkpoint_dir", "device"):
            assert getattr(config, f.name) == getattr(defaults, f.name), f.name
    assert config.database_url.endswith(f"{tmp_path}/featureboard.db")
    assert config.checkpoint_dir == str(tmp_path / "precompute")
    assert config.device == "cpu"


def test_bad_value_is_a_one_line_error(captured, capsys):
    from app.cli import main

    assert main(["precompute", "--model", "m", "--sae", "a", "--top-k", "0"]) == 2
    assert "top_k must be a positive integer" in capsys.readouterr().err
    assert captured == []
