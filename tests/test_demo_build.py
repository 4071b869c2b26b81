"""The demo builder is deterministic: the same seeds give the same bits (a tiny configuration, twice: ~4 s), and an
interrupted build resumes at the SAE it was training."""

from __future__ import annotations

import json

from app.ml.demo_build import DemoBuildConfig, build

TINY = DemoBuildConfig(vocab_size=300, lm_steps=3, lm_batch=4, sae_tokens=2_000, sae_batch=256, sae_steps=5,
                       d_sae=64, wider=(("blocks.1.hook_resid_post", 128),), max_speeches=2, heldout_tokens=2_000,
                       val_windows=4, ce_windows=4)


def test_tiny_build_twice_is_bit_for_bit_identical(tmp_path):
    logs: list[str] = []
    first = build(out_dir=tmp_path / "a" / "out", work_dir=tmp_path / "a" / "work", cfg=TINY, log=logs.append)
    second = build(out_dir=tmp_path / "b" / "out", work_dir=tmp_path / "b" / "work", cfg=TINY, log=logs.append)
    assert first["sha256"] == second["sha256"]
    assert {"model/model.safetensors", "model/tokenizer.json",
            "saes/blocks.1.hook_resid_post/sae_weights.safetensors",
            "saes/blocks.1.hook_resid_post-128/sae_weights.safetensors"} <= set(first["sha256"])
    assert first["saes"] == second["saes"]
    # the wider SAE reads the same hook with its own width, and the shipped folder holds only SAELens files
    wide = tmp_path / "a" / "out" / "saes" / "blocks.1.hook_resid_post-128"
    cfg = json.loads((wide / "cfg.json").read_text())
    assert (cfg["d_sae"], cfg["metadata"]["hook_name"]) == (128, "blocks.1.hook_resid_post")
    assert first["saes"]["blocks.1.hook_resid_post-128"]["d_sae"] == 128
    assert sorted(p.name for p in wide.iterdir()) == ["cfg.json", "sae_weights.safetensors"]


def test_a_rerun_keeps_trained_saes_and_other_artifacts(tmp_path):
    out, work = tmp_path / "out", tmp_path / "work"
    first = build(out_dir=out, work_dir=work, cfg=TINY, log=lambda _: None)
    (out / "label_scores.json.gz").write_bytes(b"kept")  # made by `demo build-labels`, not by this build
    logs: list[str] = []
    again = build(out_dir=out, work_dir=work, cfg=TINY, log=logs.append)
    assert again["sha256"] == first["sha256"]
    assert sum("already trained" in line for line in logs) == len(TINY.sae_specs()) == 3
    assert (out / "label_scores.json.gz").read_bytes() == b"kept"
