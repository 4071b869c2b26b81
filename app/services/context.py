"""What a service needs to do its work, and nothing of HTTP: settings, the database, the model.

One ``Context`` per server process (the web app keeps it on ``app.state.context``; the CLI builds its own). The
model bundle arrives after start-up (it loads in the app's lifespan), so ``set_bundle`` also creates the one
:class:`~app.services.runner.ModelRunner` that all live and steering work goes through.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session, sessionmaker

from app.config import Settings
from app.errors import Unavailable
from app.services.runner import ModelRunner


@dataclass
class Context:
    settings: Settings
    engine: Engine
    sessionmaker: sessionmaker[Session]
    bundle: Any = None  # app.ml.bundle.ModelBundle once loaded (typed loosely: no torch import here)
    runner: ModelRunner | None = field(default=None, repr=False)
    closing: threading.Event = field(default_factory=threading.Event, repr=False)  # set by close(): background work stops

    @classmethod
    def open(cls, settings: Settings, bundle=None, migrate: bool = True) -> "Context":
        """Connect to the settings' database (migrating it to the newest schema unless ``migrate`` is off)."""
        from app.store.engine import make_engine, make_sessionmaker, upgrade_database

        url = settings.resolved_database_url
        if migrate:
            upgrade_database(url)
        engine = make_engine(url)
        ctx = cls(settings=settings, engine=engine, sessionmaker=make_sessionmaker(engine))
        if bundle is not None:
            ctx.set_bundle(bundle)
        return ctx

    def set_bundle(self, bundle) -> None:
        if self.runner is not None:
            self.runner.shutdown()
        self.bundle = bundle
        self.runner = ModelRunner(bundle, self.settings.model_timeout_s) if bundle is not None else None

    def model_off_reason(self) -> str | None:
        """Why no model work can run, in words, or None when a model is loaded."""
        if self.bundle is not None:
            return None
        if not self.settings.load_model:
            return ("No model is loaded: the server was started with FEATUREBOARD_LOAD_MODEL=false, so pages come "
                    "from the database only.")
        return ("No model is loaded: no model is configured (FEATUREBOARD_MODEL) and no precomputed source "
                "names one.")

    def require_runner(self) -> ModelRunner:
        if self.runner is None:
            raise Unavailable(self.model_off_reason() or "No model is loaded.")
        return self.runner

    def require_sae(self, source_name: str):
        """The loaded SAE of ``source_name``; Unavailable when no model is loaded or that SAE is not part of it."""
        runner = self.require_runner()
        sae = runner.bundle.saes.get(source_name)
        if sae is None:
            loaded = ", ".join(sorted(runner.bundle.saes)) or "none"
            raise Unavailable(f"Model work is off for {source_name!r}: its SAE is not loaded on this server "
                              f"(loaded SAEs: {loaded}).")
        return sae

    def model_summary(self) -> dict | None:
        """Metadata of the loaded model (name, device, SAEs); a page never runs the model."""
        return self.bundle.describe() if self.bundle is not None else None

    def close(self) -> None:
        self.closing.set()
        if self.runner is not None:
            self.runner.shutdown()
        self.engine.dispose()


