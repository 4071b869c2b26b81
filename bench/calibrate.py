"""Calibrated default strength on the demo model (issue 18): for each feature, the calibrated strength, the
perplexity of its text against the budget, and the feature's activation on the generated text steered vs
unsteered (read by the unsteered model), all measured in this run with the app's own sweep.

    python bench/calibrate.py --database-url sqlite:///data/featureboard.db [--features SRC:IDX,...] [--scan N]

--scan N calibrates the N densest-but-not-dense live features of each source as well and prints how many of them
got a calibrated strength and how many of those raise their activation on the generated text.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import torch  # noqa: E402
from sqlalchemy import select  # noqa: E402

from app.ml.bundle import load_bundle  # noqa: E402
from app.ml.calibration import CalibrationConfig, calibrate_strength  # noqa: E402
from app.paths import DEMO_ARTIFACTS_DIR  # noqa: E402
from app.store.engine import make_engine, make_sessionmaker  # noqa: E402
from app.store.models import Feature, Source  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--database-url", required=True, help="a database with the demo's precomputed sources")
    parser.add_argument("--features", default="blocks.3.hook_resid_post:5,blocks.3.hook_resid_post:791,"
                                               "blocks.1.hook_resid_post:1004")
    parser.add_argument("--scan", type=int, default=0)
    parser.add_argument("--budget", type=float, default=2.0)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    saes = {p.name: str(p) for p in (DEMO_ARTIFACTS_DIR / "saes").iterdir()}
    bundle = load_bundle(str(DEMO_ARTIFACTS_DIR / "model"), saes, device="cpu")
    sessions = make_sessionmaker(make_engine(args.database_url))
    wanted = [(s, int(i)) for s, i in (f.rsplit(":", 1) for f in args.features.split(",") if f)]
    with sessions() as session:
        max_act = {(s.name, f.index): f.max_act for f, s in session.execute(
            select(Feature, Source).join(Source, Source.id == Feature.source_id))}
        scan = []
        for name in saes if args.scan else []:
            rows = session.execute(select(Feature.index).join(Source, Source.id == Feature.source_id)
                                   .where(Source.name == name, Feature.density > 0.001, Feature.density < 0.05)
                                   .order_by(Feature.density.desc()).limit(args.scan)).scalars()
            scan += [(name, int(i)) for i in rows]
    cfg = CalibrationConfig(budget=args.budget)
    print(f"budget: perplexity <= {cfg.budget:g} x unsteered; {len(cfg.prompts)} neutral prompts x {cfg.n_tokens} "
          f"greedy tokens; grid {', '.join(f'{m:g}' for m in cfg.multiples)} x max activation")
    print(f"{'feature':32s} {'max_act':>8s} {'strength':>9s} {'x':>6s} {'ppl':>7s} {'limit':>7s} "
          f"{'act unsteered':>14s} {'act steered':>12s} {'s':>5s}")
    raised = calibrated = 0
    for source, index in wanted + [p for p in scan if p not in wanted]:
        t0 = time.perf_counter()
        r = calibrate_strength(bundle.lm, bundle.saes[source], index, max_act[(source, index)], cfg)
        elapsed = time.perf_counter() - t0
        if r["strength"] is not None:
            calibrated += 1
            raised += r["activation"] > r["activation_default"]
        print(f"{source + ':' + str(index):32s} {r['max_act']:8.3f} {str(r['strength']):>9s} "
                  f"{str(r['multiple']):>6s} {r['perplexity'] or float('nan'):7.2f} {r['perplexity_limit']:7.2f} "
                  f"{r['activation_default']:14.3f} {r['activation'] if r['activation'] is not None else float('nan'):12.3f} "
                  f"{elapsed:5.2f}")
    total = len(wanted) + len([p for p in scan if p not in wanted])
    print(f"{total} features calibrated: {calibrated} got a strength within the budget; {raised} of those raise "
          "their activation on the generated text")


if __name__ == "__main__":
    main()
