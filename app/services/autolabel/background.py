"""Labels without anyone asking (FEATUREBOARD_AUTOLABEL, on in demo mode): every alive feature of a complete
source gets the offline drafts (input- and output-centric) at start, and a background thread scores them with
the embedding scorer, so the canonical label is the best-scoring draft until a person decides.

The demo build ships the embedding scores of the demo's drafts (app/demo/artifacts/label_scores.json.gz, made by
`featureboard demo build-labels`): a draft whose feature and exact text match a shipped one takes its score at
once, so a first start has drafts and scores within its time; whatever does not match (a shorter `--tokens`
precompute drafts differently) is scored in the background. Both steps resume where they stopped.
"""

from __future__ import annotations

import gzip
import json
import sys
import threading
from pathlib import Path

from app.paths import DEMO_ARTIFACTS_DIR
from app.store import autolabel as q
from app.store import sources as qs

SHIPPED_SCORES = DEMO_ARTIFACTS_DIR / "label_scores.json.gz"
SHIPPED_INPUTS = {"shipped": "demo build (featureboard demo build-labels)"}


def complete_sources(database_url: str) -> list[str]:
    from app.store.engine import make_engine, make_sessionmaker

    engine = make_engine(database_url)
    try:
        with make_sessionmaker(engine)() as session:
            return [s.name for s in qs.list_sources(session) if s.status == "complete"]
    finally:
        engine.dispose()


def draft_all(database_url: str, sources: list[str] | None = None, on_progress=None, should_stop=None) -> int:
    """Offline drafts for every alive feature that has none (resumable); returns how many were written.
    ``on_progress(done, total)`` counts features over all the sources."""
    from app.services.autolabel.runner import AutolabelConfig, AutolabelRunner

    names = sources if sources is not None else complete_sources(database_url)
    written, offset, totals = 0, 0, {}

    for name in names:
        def progress(done: int, total: int, _name=name) -> None:
            totals[_name] = total
            if on_progress is not None:
                on_progress(offset + done, offset + total)

        summary = AutolabelRunner(AutolabelConfig(database_url=database_url, source=name, scorers=(),
                                                  progress=False),
                                  on_progress=progress, should_stop=should_stop).run()
        written += sum(summary.drafts.values())
        offset += totals.get(name, 0)
    return written


def export_scores(database_url: str, path: Path) -> dict:
    """Write the drafts' embedding scores of every complete source to ``path`` (gzip JSON):
    {source: [[index, text, score, ci_low, ci_high], ...]}. Returns {source: count}."""
    from app.store.engine import make_engine, make_sessionmaker

    engine = make_engine(database_url)
    out: dict[str, list] = {}
    try:
        with make_sessionmaker(engine)() as session:
            for source in qs.list_sources(session):
                out[source.name] = [[i, t, round(s, 4), lo, hi] for i, t, s, lo, hi in
                                    q.draft_score_rows(session, source.id)]
    finally:
        engine.dispose()
    raw = json.dumps(out, sort_keys=True, separators=(",", ":")).encode()
    with open(path, "wb") as f, gzip.GzipFile(fileobj=f, mode="wb", mtime=0) as gz:  # same scores, same bytes
        gz.write(raw)
    return {name: len(rows) for name, rows in out.items()}


def apply_shipped_scores(database_url: str, path: Path = SHIPPED_SCORES) -> int:
    """Give drafts that match a shipped (feature, exact text) its score; returns how many were applied."""
    if not Path(path).is_file():
        return 0
    from app.store.engine import make_engine, make_sessionmaker

    with gzip.open(path, "rt", encoding="utf-8") as f:
        shipped = json.load(f)
    engine = make_engine(database_url)
    applied = 0
    try:
        with make_sessionmaker(engine)() as session:
            for name, rows in shipped.items():
                source = qs.source_by_name(session, name)
                if source is None:
                    continue
                by_key = {(int(i), t): (s, lo, hi) for i, t, s, lo, hi in rows}
                scored = q.scored_label_versions(session, source.id, q.RANKING_METHOD)
                for label in q.feature_label_rows(session, source.id):
                    hit = by_key.get((label.feature_index, label.text))
                    if hit is None or not label.method.startswith(q.AUTO_PREFIX) \
                            or (label.id, label.version) in scored:
                        continue
                    s, lo, hi = hit
                    q.insert_label_score(session, label.id, label.version, q.RANKING_METHOD, s, SHIPPED_INPUTS, [],
                                         ci=(lo, hi) if lo is not None else None)
                    applied += 1
                session.commit()
    finally:
        engine.dispose()
    return applied


def score_all(database_url: str, sources: list[str] | None = None, should_stop=None, progress: bool = False) -> None:
    """Embedding scores for every label of the sources that lacks one (resumable)."""
    from app.services.autolabel.runner import AutolabelConfig, AutolabelRunner

    for name in sources if sources is not None else complete_sources(database_url):
        if should_stop is not None and should_stop():
            return
        AutolabelRunner(AutolabelConfig(database_url=database_url, source=name, drafters=(), progress=progress),
                        should_stop=should_stop).run()


def build_demo_label_scores(out: str | Path | None = None, rescore: bool = False) -> dict:
    """`featureboard demo build-labels`: the demo precomputed on all its held-out tokens into a scratch database,
    drafts and embedding scores for every alive feature, and the scores written to ``out`` (default: the shipped
    file). The first start drafts the same texts from the same precompute, so they match. Drafts that match the
    file already shipped keep its scores (the scorer is deterministic), so adding an SAE to the demo scores only
    its drafts; ``rescore`` scores every draft again."""
    import tempfile

    from app.precompute.runner import DEMO_TOKENS, precompute_demo

    target = Path(out) if out else SHIPPED_SCORES
    with tempfile.TemporaryDirectory(prefix="featureboard-labels-") as folder:
        url = f"sqlite:///{Path(folder) / 'demo.db'}"
        precompute_demo(database_url=url, data_dir=folder, n_tokens=DEMO_TOKENS, progress=True)
        draft_all(url)
        if not rescore:
            print(f"kept {apply_shipped_scores(url, SHIPPED_SCORES):,} shipped scores", file=sys.stderr)
        score_all(url, progress=True)
        return export_scores(url, target)


def start_background(ctx, draft_first: bool = True) -> threading.Thread | None:
    """When the settings want it: drafts for features without any (unless the caller drafted already), shipped
    scores, then embedding scores for the rest, in a daemon thread that stops with the server."""
    if not ctx.settings.autolabel:
        return None
    from app.ml.embed import available

    url = ctx.settings.resolved_database_url

    def run() -> None:
        try:
            if draft_first:
                draft_all(url, should_stop=ctx.closing.is_set)
            apply_shipped_scores(url)
            if available() is None:
                score_all(url, should_stop=ctx.closing.is_set)
        except Exception as exc:  # noqa: BLE001 - a background job: report it, the pages keep working without it
            if not ctx.closing.is_set():
                print(f"featureboard: autolabel stopped: {type(exc).__name__}: {exc}", file=sys.stderr)

    thread = threading.Thread(target=run, name="autolabel", daemon=True)
    thread.start()
    return thread
