"""Precompute throughput vs the unavoidable work (LM forward up to the hook + SAE encode).

    python bench/precompute.py [--artifacts app/demo/artifacts] [--tokens 65536] [--threads 2]

For the demo SAEs and for random SAEs of d_sae 1k, 4k and 16k on the demo model (encoder bias
calibrated so ~L0_TARGET features fire per token, like a trained SAE; a raw random SAE fires on
half its features, which no real SAE does), on the same tokens, in one run:

- unavoidable: capture_activations (stops after the hook) + sae.encode, batch by batch;
- full: PrecomputeRunner end to end (all passes, weights tables, health, SQLite write), minus
  model loading;
- their ratio (goal >= 0.7), the phase timings and the peak RSS so far.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import torch  # noqa: E402

L0_TARGET = 50


def unavoidable_seconds(lm, saes, batches) -> float:
    from app.ml import capture_activations

    hooks = list(dict.fromkeys(s.hook_name for s in saes))
    start = time.perf_counter()
    with torch.inference_mode():
        for ids in batches:
            captured = capture_activations(lm, ids, hook_names=hooks)
            for sae in saes:
                sae.encode(captured[sae.hook_name])
    return time.perf_counter() - start


def random_sae(lm, folder: Path, d_sae: int, hook_name: str, sample_ids: torch.Tensor, seed: int = 0) -> Path:
    from app.ml import SAEConfig, capture_activations, save_sae

    cfg = SAEConfig(architecture="standard", d_in=lm.d_model, d_sae=d_sae, hook_name=hook_name,
                    model_name=lm.name, context_size=sample_ids.shape[1], prepend_bos=True)
    gen = torch.Generator().manual_seed(seed)
    w_dec = torch.nn.functional.normalize(torch.randn(d_sae, lm.d_model, generator=gen), dim=1)
    x = capture_activations(lm, sample_ids, hook_names=[hook_name])[hook_name].reshape(-1, lm.d_model)
    pre = x @ w_dec.T
    threshold = torch.quantile(pre[torch.randperm(len(pre), generator=gen)[:4096]], 1 - L0_TARGET / d_sae, dim=0)
    tensors = {"W_enc": w_dec.T.contiguous(), "W_dec": w_dec, "b_dec": torch.zeros(lm.d_model), "b_enc": -threshold}
    return save_sae(tensors, cfg, folder / f"random-{d_sae}")


def main() -> int:
    from app.ml import load_language_model, load_sae
    from app.paths import DEMO_ARTIFACTS_DIR
    from app.precompute import corpus as c
    from app.precompute.runner import DEMO_HOOKS, PrecomputeConfig, PrecomputeRunner, peak_rss_bytes

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--artifacts", default=str(DEMO_ARTIFACTS_DIR))
    parser.add_argument("--tokens", type=int, default=262144)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    root = Path(args.artifacts)
    lm = load_language_model(str(root / "model"), device="cpu")
    settings = c.context_settings(lm.tokenizer, 128, True)
    n_ctx = args.tokens // settings.context_size
    contexts = list(c.iter_contexts(c.parse_corpus("demo"), lm.tokenizer, settings, max_contexts=n_ctx))
    batches = [ids for _, ids in c.iter_batches(iter(contexts), args.batch_size)]
    tokens = sum(b.numel() for b in batches)
    work = Path(tempfile.mkdtemp(prefix="bench-precompute-"))
    setups = [("demo SAEs (2 × 1k, blocks.1 + blocks.3)", [str(root / "saes" / h) for h in DEMO_HOOKS])]
    for d_sae in (1024, 4096, 16384):
        setups.append((f"random d_sae={d_sae} (blocks.3, L0≈{L0_TARGET})",
                       [str(random_sae(lm, work, d_sae, DEMO_HOOKS[-1], batches[0]))]))

    print(f"{tokens:,} tokens ({len(contexts)} contexts of {settings.context_size}), {args.threads} threads, "
          f"batch {args.batch_size}")
    print(f"{'setup':<44} {'unavoidable tok/s':>17} {'full tok/s':>11} {'ratio':>6}  phases (s)  peak RSS")
    for i, (label, paths) in enumerate(setups):
        saes = [load_sae(p, device="cpu") for p in paths]
        base = unavoidable_seconds(lm, saes, batches)
        config = PrecomputeConfig(model=str(root / "model"), saes=tuple(paths), corpus="demo", n_tokens=args.tokens,
                                  batch_size=args.batch_size, database_url=f"sqlite:///{work / f'bench{i}.db'}",
                                  checkpoint_dir=str(work / "ckpt"), device="cpu", progress=False,
                                  source_names=tuple(f"s{j}" for j in range(len(paths))))
        summary = PrecomputeRunner(config).run()
        timings = summary["timings"]
        full = summary["seconds"] - timings["load_s"]
        phases = " ".join(f"{k[:-2]}={v:.1f}" for k, v in timings.items() if k != "load_s")
        print(f"{label:<44} {tokens / base:>17,.0f} {tokens / full:>11,.0f} {base / full:>6.2f}  {phases}  "
              f"{peak_rss_bytes() / 2**20:,.0f} MB", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
