"""`featureboard output-evidence`: what each feature does to the model's output, into the database (resumable)."""

from __future__ import annotations

from app.precompute.config import PrecomputeError


def add_arguments(parser) -> None:
    parser.add_argument("--source", action="append", dest="sources", default=None,
                        help="source name; repeat for several (default: every complete source)")
    parser.add_argument("--examples", type=int, default=8, dest="n_examples",
                        help="top examples per feature on which the feature is ablated")
    parser.add_argument("--strength", type=float, default=1.0, dest="strength_multiple",
                        help="promoted tokens: the feature is added at this × its max activation")
    parser.add_argument("--database-url", default=None, help="default: FEATUREBOARD_DATABASE_URL / data_dir")
    parser.add_argument("--device", default=None, help="auto | cpu | cuda | cuda:N | mps (default: settings)")
    parser.add_argument("--replace", action="store_true", help="recompute features that already have evidence")
    parser.add_argument("--no-progress", action="store_true")


def main(args) -> int:
    from app.config import Settings
    from app.precompute.output import OutputEvidenceConfig, OutputEvidenceRunner
    from app.store.engine import make_engine, make_sessionmaker, upgrade_database
    from app.store.sources import list_source_summaries

    settings = Settings()
    url = args.database_url or settings.resolved_database_url
    sources = tuple(args.sources or ())
    if not sources:
        upgrade_database(url)
        engine = make_engine(url)
        with make_sessionmaker(engine)() as session:
            sources = tuple(s["name"] for s in list_source_summaries(session) if s["status"] == "complete")
        engine.dispose()
        if not sources:
            raise PrecomputeError(f"no complete source in {url}: run `featureboard precompute` first")
    config = OutputEvidenceConfig(database_url=url, sources=sources, n_examples=args.n_examples,
                                  strength_multiple=args.strength_multiple, device=args.device or settings.device,
                                  replace=args.replace, progress=not args.no_progress)
    for name, done in OutputEvidenceRunner(config).run().items():
        print(f"{name}: {done['written']} features written, {done['skipped']} already had evidence "
              f"({done['seconds']} s)")
    return 0
