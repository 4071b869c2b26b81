"""Steering throughput and latency on the demo model (issue 6).

Prints, measured in one run on the same model and device:
- tokens/s of steered generation (additive and clamp, one feature, hook active at every position, the steered
  activation measured per token as the app does) against plain generation (the same loop with nothing hooked),
  and their ratios (goal >= 0.9 for both); HF `model.generate` for context;
- time to the first streamed token through the app (POST /api/v1/steer?stream=true), cold and with the model warm.

    python bench/steer.py [--tokens 128] [--repeats 5] [--device cpu] [--model DIR --sae DIR]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import torch  # noqa: E402

from app.ml.bundle import load_bundle  # noqa: E402
from app.ml.steering import Intervention, RowSpec, SamplingConfig, generate_rows, prompt_token_ids  # noqa: E402
from app.paths import DEMO_ARTIFACTS_DIR  # noqa: E402

PROMPT = "The people of the United States"


def interleaved_tokens_per_s(variants: dict, n_tokens: int, repeats: int) -> dict[str, float]:
    """Best tokens/s of each variant, the variants taking turns run by run, so load from other processes on a
    shared machine hits every variant alike (one run of each first, as a warm-up)."""
    best = dict.fromkeys(variants, 0.0)
    for fn in variants.values():
        fn()
    for _ in range(repeats):
        for name, fn in variants.items():
            t0 = time.perf_counter()
            n = fn()
            elapsed = time.perf_counter() - t0
            assert n == n_tokens, f"{name}: generated {n} tokens, expected {n_tokens} (EOS?)"
            best[name] = max(best[name], n_tokens / elapsed)
    return best


def first_token_latency(bundle, source: str, n_tokens: int) -> tuple[float, float]:
    from fastapi.testclient import TestClient

    from app.config import Settings
    from app.http.app import create_app

    body = {"prompt": PROMPT, "features": [{"source": source, "feature": 5, "strength": 4.0}], "n_tokens": n_tokens}
    out = []
    with tempfile.TemporaryDirectory() as tmp, TestClient(create_app(Settings(data_dir=Path(tmp), load_model=False,
                                                                              steer_rate_limit="1000/minute"),
                                                                     bundle=bundle)) as client:
        for seed in (1, 2):  # two different requests: neither is answered from a saved run
            t0 = time.perf_counter()
            with client.stream("POST", "/api/v1/steer?stream=true", json={**body, "seed": seed}) as events:
                lines = events.iter_lines()
                for line in lines:
                    if line.startswith("event: token"):
                        out.append(time.perf_counter() - t0)
                        break
                for _ in lines:  # let the run finish and be saved
                    pass
    return out[0], out[1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default=str(DEMO_ARTIFACTS_DIR / "model"))
    parser.add_argument("--sae", default=str(DEMO_ARTIFACTS_DIR / "saes" / "blocks.3.hook_resid_post"))
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--tokens", type=int, default=96)
    parser.add_argument("--repeats", type=int, default=10)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    source = Path(args.sae).name
    bundle = load_bundle(args.model, {source: args.sae}, device=args.device)
    lm, sae = bundle.lm, bundle.saes[source]
    ids = prompt_token_ids(lm, PROMPT)
    # no EOS: force the full length so every variant generates the same number of tokens
    eos = lm.tokenizer.eos_token_id
    lm.tokenizer.eos_token_id = None
    cfg = SamplingConfig(n_tokens=args.tokens, temperature=1.0, seed=0)
    steer = (Intervention(sae, 5, 4.0),)

    def run(rows):
        return lambda: len(generate_rows(lm, ids, rows, cfg)[rows[0].name].tokens)

    def hf_generate():
        with torch.inference_mode():
            out = lm.model.generate(torch.tensor([ids], device=lm.device), max_new_tokens=args.tokens,
                                    min_new_tokens=args.tokens, do_sample=False, pad_token_id=0)
        return out.shape[1] - len(ids)

    results = interleaved_tokens_per_s({
        "plain": run([RowSpec("plain")]),
        "additive": run([RowSpec("steered", steer, "additive")]),
        "clamp": run([RowSpec("steered", steer, "clamp")]),
        "hf_generate": hf_generate,
    }, args.tokens, args.repeats)
    lm.tokenizer.eos_token_id = eos
    cold, warm = first_token_latency(bundle, source, min(args.tokens, 32))

    print(f"model {args.model} on {bundle.device_name}, {args.tokens} tokens, best of {args.repeats} interleaved runs, "
          f"torch threads {args.threads}")
    for name, value in results.items():
        print(f"  {name:12s} {value:8.1f} tokens/s")
    print(f"steered/plain (additive): {results['additive'] / results['plain']:.3f}   (goal >= 0.9)")
    print(f"steered/plain (clamp):    {results['clamp'] / results['plain']:.3f}   (goal >= 0.9)")
    print(f"plain/hf generate:        {results['plain'] / results['hf_generate']:.3f}")
    print(f"time to first streamed token: {cold * 1000:.0f} ms (first request), {warm * 1000:.0f} ms (second)")


if __name__ == "__main__":
    main()
