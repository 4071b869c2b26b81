"""`featureboard autolabel`: draft and score labels for every alive feature of a source.

    featureboard autolabel --source S [--drafters input,output[,llm]] [--scorers embedding[,detection,fuzzing]]
                           [--llm-url URL --llm-model M] [--concurrency 4] [--features 0-99,120] [--compare]

Runs are resumable: run the same command again after an interruption and finished work is skipped.
`--compare` also prints the peak-token vs unrelated-label embedding figure (see app/services/autolabel/evaluate.py).
"""

from __future__ import annotations

import argparse


def _names(value: str) -> tuple[str, ...]:
    return tuple(v.strip() for v in value.split(",") if v.strip())


def parse_features(value: str | None) -> tuple[int, ...] | None:
    """"0-99,120" -> (0, ..., 99, 120); None -> None (every alive feature)."""
    if not value:
        return None
    out: list[int] = []
    for part in value.split(","):
        part = part.strip()
        try:
            if "-" in part:
                lo, hi = (int(x) for x in part.split("-", 1))
                out += range(lo, hi + 1)
            elif part:
                out.append(int(part))
        except ValueError:
            raise argparse.ArgumentTypeError(f"--features {value!r}: use indices and ranges like 0-99,120") from None
    return tuple(out)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--source", required=True, help="source name (or id)")
    parser.add_argument("--drafters", type=_names, default=("input", "output"),
                        help="comma-separated: input (peak tokens), output (top logits), llm (needs --llm-url); "
                             "'' for none (default: input,output)")
    parser.add_argument("--scorers", type=_names, default=("embedding",),
                        help="comma-separated: embedding (needs the [embed] extra), detection, fuzzing (need an LLM); "
                             "'' for none (default: embedding)")
    parser.add_argument("--llm-url", default=None, help="OpenAI-compatible base URL (FEATUREBOARD_LLM_URL)")
    parser.add_argument("--llm-model", default=None, help="model name sent to the endpoint (FEATUREBOARD_LLM_MODEL)")
    parser.add_argument("--concurrency", type=int, default=4, help="features in flight at once (default 4)")
    parser.add_argument("--features", type=parse_features, default=None, help="only these indices, e.g. 0-99,120")
    parser.add_argument("--n-activating", type=int, default=50,
                        help="held-out activating windows per score, drawn across interval bins (default 50)")
    parser.add_argument("--n-non-activating", type=int, default=50, help="non-activating windows per score (default 50)")
    parser.add_argument("--draft-labeled", action="store_true",
                        help="also draft features that already have a human label (default: skip them)")
    parser.add_argument("--compare", action="store_true",
                        help="print the peak-token vs unrelated-label embedding AUC figure after the run")
    parser.add_argument("--database-url", default=None, help="default: FEATUREBOARD_DATABASE_URL / data_dir")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--no-progress", action="store_true")


def main(args: argparse.Namespace) -> int:
    from app.config import Settings
    from app.services.autolabel.llm import LLMConfig
    from app.services.autolabel.runner import AutolabelConfig, AutolabelRunner

    settings = Settings()
    url = args.database_url or settings.resolved_database_url
    llm = LLMConfig.from_settings(settings, url=args.llm_url, model=args.llm_model)
    config = AutolabelConfig(database_url=url, source=args.source, drafters=args.drafters, scorers=args.scorers,
                             llm=llm, concurrency=args.concurrency, n_activating=args.n_activating,
                             n_non_activating=args.n_non_activating, features=args.features,
                             draft_labeled=args.draft_labeled, seed=args.seed, progress=not args.no_progress)
    summary = AutolabelRunner(config).run()
    print("\n".join(summary.lines()))
    if args.compare:
        from app.services.autolabel.evaluate import format_comparison, peak_vs_unrelated

        print(format_comparison(peak_vs_unrelated(url, args.source, features=args.features, seed=args.seed,
                                                  progress=not args.no_progress)))
    return 0
