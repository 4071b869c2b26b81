"""Autolabel benchmark (issue 8), measured in one run on this machine.

    python bench/autolabel.py [--database-url URL] [--source NAME] [--max-features N] [--tokens 40000]

1. The figure: on each source, the embedding scorer's ROC AUC for the feature's own input-centric draft vs an
   unrelated label (another feature's draft), on the same held-out windows; prints the share of features where
   the own label wins and the mean margin, for the drafter and scoring before issue 13 (peak tokens only, 10 + 10
   windows, top first) and now (context and quotes, 50 + 50 windows across interval bins), and the change.
2. The batch command over every alive feature of the first source (drafts input+output, embedding scores):
   features per second, and a second run to show resume skips everything.

Without --database-url the shipped demo (app/demo/artifacts, or --artifacts) is precomputed on --tokens tokens
into a temporary database first. Needs the [embed] extra.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def _demo_database(artifacts: str | None, n_tokens: int) -> str:
    from app.paths import DEMO_ARTIFACTS_DIR
    from app.precompute.runner import precompute_demo

    folder = Path(tempfile.mkdtemp(prefix="bench-autolabel-"))
    url = f"sqlite:///{folder / 'demo.db'}"
    print(f"precomputing the demo on {n_tokens:,} tokens into {folder} ...", flush=True)
    precompute_demo(database_url=url, data_dir=folder, n_tokens=n_tokens,
                    artifacts_dir=artifacts or DEMO_ARTIFACTS_DIR, progress=False)
    return url


def _source_names(url: str) -> list[str]:
    from sqlalchemy import create_engine, text

    engine = create_engine(url)
    with engine.connect() as conn:
        names = [r[0] for r in conn.execute(text("SELECT name FROM source ORDER BY id"))]
    engine.dispose()
    return names


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--database-url", default=None)
    parser.add_argument("--artifacts", default=None, help="demo artifacts folder (model/, saes/)")
    parser.add_argument("--tokens", type=int, default=40_000)
    parser.add_argument("--source", action="append", default=None)
    parser.add_argument("--max-features", type=int, default=None, help="evenly spaced sample for the figure")
    parser.add_argument("--concurrency", type=int, default=4)
    parser.add_argument("--skip-batch", action="store_true", help="only the figure, not the batch run")
    args = parser.parse_args()

    from app.services.autolabel.evaluate import SETTINGS, format_comparison, peak_vs_unrelated
    from app.services.autolabel.runner import AutolabelConfig, AutolabelRunner

    url = args.database_url or _demo_database(args.artifacts, args.tokens)
    names = args.source or _source_names(url)
    for name in names:
        results = {}
        for setting in SETTINGS:
            started = time.perf_counter()
            results[setting] = peak_vs_unrelated(url, name, max_features=args.max_features, progress=True,
                                                 setting=setting)
            print(format_comparison(results[setting]) + f" · {time.perf_counter() - started:.1f} s")
        before, now = results["before"], results["now"]
        print(f"  {name}: own label beats unrelated {before['peak_wins']:.1%} -> {now['peak_wins']:.1%} "
              f"({100 * (now['peak_wins'] - before['peak_wins']):+.1f} points); mean margin "
              f"{before['mean_margin']:+.3f} -> {now['mean_margin']:+.3f} "
              f"({now['mean_margin'] - before['mean_margin']:+.3f})")
        same = results["before-label"]
        print(f"  {name}, same 50 + 50 windows: the new drafter moves own-beats-unrelated {same['peak_wins']:.1%} -> "
              f"{now['peak_wins']:.1%} and the margin {same['mean_margin']:+.3f} -> {now['mean_margin']:+.3f}; "
              f"the new windows narrow the 95 % interval {before['mean_ci_width']:.3f} -> {now['mean_ci_width']:.3f}")

    if args.skip_batch:
        return 0
    config = AutolabelConfig(database_url=url, source=names[0], concurrency=args.concurrency)
    started = time.perf_counter()
    summary = AutolabelRunner(config).run()
    seconds = time.perf_counter() - started
    print("\n".join(summary.lines()))
    print(f"batch: {summary.features} features in {seconds:.1f} s ({summary.features / max(seconds, 1e-9):.1f} features/s)")
    started = time.perf_counter()
    again = AutolabelRunner(AutolabelConfig(database_url=url, source=names[0], progress=False)).run()
    print(f"resume: {sum(again.drafts.values())} new drafts, {sum(again.scores.values())} new scores, "
          f"{time.perf_counter() - started:.1f} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
