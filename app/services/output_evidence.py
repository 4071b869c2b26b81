"""Output evidence in the web process (FEATUREBOARD_OUTPUT_EVIDENCE, on in demo mode): after the model loads, a
background thread measures it for the loaded sources that lack it, each chunk of features as one job of the one
model runner (app/services/runner.py), so live and steering requests are served between chunks. It stops when the
server stops; what is written stays, and the next start continues (app/precompute/output.py is resumable).
"""

from __future__ import annotations

import sys
import threading
import time

from app.errors import Busy
from app.services.context import Context
from app.store import output as q

CHUNK = 16  # features per model-runner job: about a second on the demo model, so other requests wait little


def pending_sources(ctx: Context) -> list[str]:
    """Loaded sources (complete in the database) with features that have no output evidence yet."""
    if ctx.bundle is None:
        return []
    names = []
    with ctx.sessionmaker() as session:
        for name in ctx.bundle.saes:
            source = q.source_by_name(session, name)
            if source is not None and source.status == "complete" and q.pending_features(session, source.id):
                names.append(name)
    return names


def start_background(ctx: Context) -> threading.Thread | None:
    """Start the background measurement when the settings want it and something is missing; None otherwise."""
    if not ctx.settings.output_evidence or ctx.runner is None:
        return None
    sources = pending_sources(ctx)
    if not sources:
        return None
    runner = ctx.runner

    def execute(fn):
        while not ctx.closing.is_set():
            try:
                return runner.submit(fn).result()
            except Busy:  # live requests had the model for a while; ours can wait
                time.sleep(0.5)
        raise _Closing

    def run() -> None:
        from app.precompute.output import OutputEvidenceConfig, OutputEvidenceRunner

        config = OutputEvidenceConfig(database_url=ctx.settings.resolved_database_url, sources=tuple(sources),
                                      chunk=CHUNK, progress=False)
        try:
            OutputEvidenceRunner(config, bundle=ctx.bundle, execute=execute,
                                 should_stop=ctx.closing.is_set).run()
        except _Closing:
            pass
        except Exception as exc:  # noqa: BLE001 - a background job: report it, the pages keep working without it
            if not ctx.closing.is_set():
                print(f"featureboard: output evidence stopped: {type(exc).__name__}: {exc}", file=sys.stderr)

    thread = threading.Thread(target=run, name="output-evidence", daemon=True)
    thread.start()
    return thread


class _Closing(Exception):
    """The server is stopping."""
