"""`featureboard precompute`: its options and entry point (torch is imported only when it runs)."""

from __future__ import annotations

from app.precompute.config import PrecomputeConfig


def add_arguments(parser) -> None:
    """Options of ``featureboard precompute``."""
    d = PrecomputeConfig.__dataclass_fields__
    parser.add_argument("--model", required=True, help="hub id or folder of the language model")
    parser.add_argument("--sae", action="append", required=True, dest="saes",
                        help="SAE folder (SAELens layout); repeat for several SAEs on the same model")
    parser.add_argument("--name", action="append", dest="source_names", default=None,
                        help="source name per --sae, in order (default: the SAE folder's name)")
    parser.add_argument("--corpus", default="demo", help="demo | a .txt/.jsonl file or folder | hf:NAME[:split]")
    parser.add_argument("--text-field", default="text", help="field holding the text in jsonl / HF records")
    parser.add_argument("--tokens", type=int, default=d["n_tokens"].default, dest="n_tokens",
                        help="token budget (contexts × context size)")
    parser.add_argument("--context-size", type=int, default=None,
                        help="tokens per context incl. BOS (default: the SAE's context_size, else 128)")
    parser.add_argument("--batch-size", type=int, default=d["batch_size"].default, help="contexts per forward pass")
    parser.add_argument("--top-k", type=int, default=d["top_k"].default, help="max-activating examples per feature")
    parser.add_argument("--n-intervals", type=int, default=d["n_intervals"].default,
                        help="equal-width activation intervals per feature")
    parser.add_argument("--examples-per-interval", type=int, default=d["examples_per_interval"].default)
    parser.add_argument("--hist-bins", type=int, default=d["hist_bins"].default)
    parser.add_argument("--n-logits", type=int, default=d["n_logits"].default,
                        help="top and bottom logit effects kept per feature")
    parser.add_argument("--n-neighbours", type=int, default=d["n_neighbours"].default,
                        help="nearest features by decoder cosine kept per feature")
    parser.add_argument("--n-matches", type=int, default=d["n_matches"].default,
                        help="best matches kept per feature in each other SAE of the run (by correlation, by cosine)")
    parser.add_argument("--n-coactive", type=int, default=d["n_coactive"].default,
                        help="most co-active features kept per feature")
    parser.add_argument("--match-tokens", type=int, default=d["match_tokens"].default,
                        help="tokens (evenly spaced batches) that matches and co-activation are measured on; "
                             "0: every token (at most 2,097,152)")
    parser.add_argument("--match-memory-mb", type=int, default=d["match_memory_mb"].default,
                        help="MiB of products held at once while matching (less: narrower feature blocks)")
    parser.add_argument("--seed", type=int, default=d["seed"].default, help="seed of the interval sampling")
    parser.add_argument("--database-url", default=None, help="default: FEATUREBOARD_DATABASE_URL / data_dir")
    parser.add_argument("--checkpoint-dir", default=None, help="default: <data_dir>/precompute")
    parser.add_argument("--device", default=None, help="auto | cpu | cuda | cuda:N | mps (default: settings)")
    parser.add_argument("--dtype", default=None, help="float32 | float16 | bfloat16 (default: settings)")
    parser.add_argument("--replace", action="store_true", help="replace complete sources of the same name")
    parser.add_argument("--health-contexts", type=int, default=d["health_contexts"].default,
                        help="contexts used for the CE-loss / explained-variance health figures")
    parser.add_argument("--checkpoint-every", type=float, default=d["checkpoint_every_s"].default,
                        dest="checkpoint_every_s",
                        help="seconds between checkpoints")
    parser.add_argument("--no-progress", action="store_true")


def main(args) -> int:
    """Run ``featureboard precompute``; errors a user can cause are raised and printed by app/cli."""
    from app.config import Settings
    from app.precompute.runner import PrecomputeRunner

    settings = Settings()
    config = PrecomputeConfig(
        model=args.model, saes=tuple(args.saes), corpus=args.corpus, text_field=args.text_field,
        n_tokens=args.n_tokens, context_size=args.context_size, batch_size=args.batch_size, top_k=args.top_k,
        n_intervals=args.n_intervals, examples_per_interval=args.examples_per_interval,
        hist_bins=args.hist_bins, n_logits=args.n_logits, n_neighbours=args.n_neighbours, seed=args.seed,
        n_matches=args.n_matches, n_coactive=args.n_coactive, match_tokens=args.match_tokens,
        match_memory_mb=args.match_memory_mb,
        database_url=args.database_url or settings.resolved_database_url,
        checkpoint_dir=args.checkpoint_dir or str(settings.data_dir / "precompute"),
        source_names=tuple(args.source_names or ()), device=args.device or settings.device,
        dtype=args.dtype or (settings.dtype if settings.dtype != "auto" else "float32"),
        if_exists="replace" if args.replace else "error", health_contexts=args.health_contexts,
        checkpoint_every_s=args.checkpoint_every_s, progress=not args.no_progress)
    PrecomputeRunner(config).run()
    return 0
