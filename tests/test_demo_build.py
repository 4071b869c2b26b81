"""The demo builder is deterministic: the same seeds give the same bits (a tiny configuration, twice: ~4 s)."""

from __future__ import annotations

from app.ml.demo_build import DemoBuildConfig, build


def test_tiny_build_twice_is_bit_for_bit_identical(tmp_path):
    cfg = DemoBuildConfig(vocab_size=300, lm_steps=3, lm_batch=4, sae_tokens=2_000, sae_batch=256, sae_steps=5,
                          d_sae=64, max_speeches=2, heldout_tokens=2_000, val_windows=4, ce_windows=4)
    logs: list[str] = []
    first = build(out_dir=tmp_path / "a" / "out", work_dir=tmp_path / "a" / "work", cfg=cfg, log=logs.append)
    second = build(out_dir=tmp_path / "b" / "out", work_dir=tmp_path / "b" / "work", cfg=cfg, log=logs.append)
    assert first["sha256"] == second["sha256"]
    assert {"model/model.safetensors", "model/tokenizer.json",
            "saes/blocks.1.hook_resid_post/sae_weights.safetensors"} <= set(first["sha256"])
    assert first["saes"] == second["saes"]
