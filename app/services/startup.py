"""Start-up glue between settings, the database and the model bundle (no torch at import time)."""

from __future__ import annotations

import sys
import time
from pathlib import Path

from app.config import Settings
from app.paths import DEMO_ARTIFACTS_DIR


def demo_model_path() -> Path:
    return DEMO_ARTIFACTS_DIR / "model"


def ensure_demo_database(settings: Settings) -> None:
    """Precompute the demo's sources into the settings' database unless they are already complete."""
    from app.store.engine import make_engine, make_sessionmaker, upgrade_database
    from app.store.sources import list_source_summaries

    url = settings.resolved_database_url
    upgrade_database(url)
    engine = make_engine(url)
    try:
        with make_sessionmaker(engine)() as session:
            complete = [s for s in list_source_summaries(session) if s["status"] == "complete"]
    finally:
        engine.dispose()
    if complete:
        return
    from app.precompute.runner import precompute_demo

    print("First start: precomputing the demo's features (about 30 s on 2 cores)…", file=sys.stderr, flush=True)
    t0 = time.time()
    precompute_demo(database_url=url, data_dir=settings.data_dir)
    print(f"Demo precomputed in {time.time() - t0:.0f}s", file=sys.stderr, flush=True)


def sae_paths_from_database(sessionmaker) -> tuple[str | None, dict[str, str]]:
    """(model name, {source name: SAE path}) of the complete sources; the model of the first source wins."""
    from app.store.sources import sae_paths

    with sessionmaker() as session:
        return sae_paths(session)


def load_bundle_for_app(settings: Settings, sessionmaker):
    """The bundle named by settings (model + saes), else by the database's sources; None if there is nothing to load."""
    from app.ml.bundle import load_bundle

    model_name, paths = sae_paths_from_database(sessionmaker)
    if settings.model:
        model_name = settings.model
    if settings.saes:
        paths = {Path(p).name: p for p in settings.saes}
    if settings.demo and not model_name:
        model_name = str(demo_model_path())
    if not model_name:
        return None
    return load_bundle(model_name, paths, device=settings.device, dtype=settings.dtype)
