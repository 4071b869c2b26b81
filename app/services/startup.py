"""Start-up glue between settings, the database and the model bundle (no torch at import time), and the first
start of the demo: its precompute runs while the server already answers, with its progress on a page and in the
terminal (:class:`Preparation`)."""

from __future__ import annotations

import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path

from app.config import Settings
from app.paths import DEMO_ARTIFACTS_DIR

DEMO_STEPS = (  # (phase the precompute reports, what a person reads, unit)
    ("pass1", "running the model and its three SAEs over the held-out speeches", "tokens"),
    ("pass2", "sampling examples across activation intervals", "tokens"),
    ("pass3", "collecting each example's per-token activations", "tokens"),
    ("write", "measuring health and writing features to the database", "sources"),
    ("match", "matching features across the SAEs and counting co-activation (beside the write)", "tokens"),
    ("drafts", "drafting a label for every alive feature", "features"),
    ("model", "loading the model for live inference and steering", "models"),
)
PRECOMPUTE_PHASES = ("pass1", "pass2", "pass3", "write", "match")


def demo_steps(settings: Settings) -> tuple:
    """The first start's steps for these settings: the precompute's five, the drafts when autolabel is on, the
    model when one is loaded."""
    wanted = set(PRECOMPUTE_PHASES) | ({"drafts"} if settings.autolabel else set()) \
        | ({"model"} if settings.load_model else set())
    return tuple(step for step in DEMO_STEPS if step[0] in wanted)


def demo_model_path() -> Path:
    return DEMO_ARTIFACTS_DIR / "model"


@dataclass
class _Step:
    phase: str
    label: str
    unit: str
    done: int = 0
    total: int = 0
    started: float | None = None  # when its first unit was counted (rates exclude the wait before it)
    first_done: int = 0
    finished: float | None = None


class Preparation:
    """A long job the server runs before its pages are ready, step by step: the waiting page and /-/progress.json
    read :meth:`snapshot`; the terminal gets a tqdm bar per step (rate and ETA measured on that step alone)."""

    def __init__(self, title: str, steps=DEMO_STEPS, out=None) -> None:
        self.title = title
        self.steps = [_Step(phase, label, unit) for phase, label, unit in steps]
        self.started = time.monotonic()
        self.state = "running"  # running | ready | failed
        self.error: str | None = None
        self._out = out if out is not None else sys.stderr
        self._bar = None
        self._current = -1
        self._lock = threading.Lock()

    # -- updates (the precompute's on_progress) --------------------------------------------------------------
    def update(self, done: int, total: int, phase: str) -> None:
        with self._lock:
            i = next((k for k, s in enumerate(self.steps) if s.phase == phase), None)
            if i is None:
                return
            now = time.monotonic()
            if i != self._current:
                self._close_bar(now)
                self._current = i
            step = self.steps[i]
            if step.started is None:
                step.started, step.first_done = now, done
            step.done, step.total = done, total
            self._draw(step, i)

    def finish(self) -> None:
        with self._lock:
            self._close_bar(time.monotonic())
            self.state = "ready"
        print(f"Ready after {time.monotonic() - self.started:.0f} s.", file=self._out, flush=True)

    def fail(self, message: str) -> None:
        with self._lock:
            self._close_bar(time.monotonic())
            self.state, self.error = "failed", message
        print(f"featureboard: error: {message}", file=self._out, flush=True)

    @property
    def ready(self) -> bool:
        return self.state == "ready"

    def _draw(self, step: _Step, i: int) -> None:
        from tqdm import tqdm

        if self._bar is None:
            self._bar = tqdm(total=step.total, initial=step.done, unit="tok" if step.unit == "tokens" else step.unit[:-1],
                             unit_scale=step.unit == "tokens", file=self._out, mininterval=0.5, smoothing=0.1,
                             desc=f"[{i + 1}/{len(self.steps)}] {step.label}", dynamic_ncols=True)
        if self._bar.total != step.total:
            self._bar.total = step.total
        self._bar.update(step.done - self._bar.n)

    def _close_bar(self, now: float) -> None:
        if self._current >= 0:
            self.steps[self._current].finished = now
        if self._bar is not None:
            self._bar.close()
            self._bar = None

    # -- reading ---------------------------------------------------------------------------------------------
    def snapshot(self) -> dict:
        """Where the job is: the current step with done/total, rate and ETA of that step, every step's state."""
        with self._lock:
            now = time.monotonic()
            current = self.steps[self._current] if self._current >= 0 else None
            rate = eta = None
            if current is not None and current.started is not None and current.finished is None:
                elapsed = now - current.started
                counted = current.done - current.first_done
                if elapsed > 0.5 and counted > 0:
                    rate = counted / elapsed
                    eta = max(0.0, (current.total - current.done) / rate)
            steps = [{"phase": s.phase, "label": s.label, "unit": s.unit, "done": s.done, "total": s.total,
                      "state": "done" if s.finished is not None else "running" if k == self._current else "waiting",
                      "seconds": round((s.finished or now) - s.started, 1) if s.started is not None else None}
                     for k, s in enumerate(self.steps)]
            out = {"title": self.title, "state": self.state, "error": self.error,
                   "elapsed_s": round(now - self.started, 1), "step": self._current + 1, "n_steps": len(self.steps),
                   "steps": steps, "current": None}
            if current is not None and self.state == "running":
                out["current"] = {"label": current.label, "unit": current.unit, "done": current.done,
                                  "total": current.total,
                                  "percent": round(100 * current.done / current.total, 1) if current.total else None,
                                  "rate_per_s": round(rate, 1) if rate else None,
                                  "eta_s": round(eta) if eta is not None else None}
            return out


def demo_is_precomputed(settings: Settings) -> bool:
    """Whether the settings' database already holds a complete source (the demo needs no first-start work)."""
    from app.store.engine import make_engine, make_sessionmaker, upgrade_database
    from app.store.sources import list_source_summaries

    url = settings.resolved_database_url
    upgrade_database(url)
    engine = make_engine(url)
    try:
        with make_sessionmaker(engine)() as session:
            return any(s["status"] == "complete" for s in list_source_summaries(session))
    finally:
        engine.dispose()


def precompute_demo_database(settings: Settings, preparation: Preparation | None = None,
                             n_tokens: int | None = None) -> dict:
    """Precompute the demo's sources into the settings' database, reporting to ``preparation`` (a terminal-only
    one when None). ``n_tokens`` caps the held-out tokens read (default: all of them)."""
    from app.precompute.runner import DEMO_TOKENS, precompute_demo

    preparation = preparation or Preparation("Precomputing the demo", DEMO_STEPS[:len(PRECOMPUTE_PHASES)])
    return precompute_demo(database_url=settings.resolved_database_url, data_dir=settings.data_dir,
                           n_tokens=n_tokens or DEMO_TOKENS, progress=False, on_progress=preparation.update)


def ensure_demo_database(settings: Settings, n_tokens: int | None = None) -> None:
    """Precompute the demo's sources unless they are already complete, with a progress bar per step."""
    if demo_is_precomputed(settings):
        return
    steps = tuple(step for step in demo_steps(settings) if step[0] != "model")
    preparation = Preparation("Precomputing the demo", steps)
    print(f"First start: precomputing the demo's features ({len(steps)} steps; progress below).", file=sys.stderr,
          flush=True)
    precompute_demo_database(settings, preparation, n_tokens)
    draft_demo_labels(settings, preparation)
    preparation.finish()


def draft_demo_labels(settings: Settings, preparation: Preparation) -> None:
    """When autolabel is on: a draft for every alive feature, and the shipped scores of those that match."""
    if not settings.autolabel:
        return
    from app.services.autolabel.background import apply_shipped_scores, draft_all

    url = settings.resolved_database_url
    preparation.update(0, 1, "drafts")
    draft_all(url, on_progress=lambda done, total: preparation.update(done, total, "drafts"))
    apply_shipped_scores(url)


def demo_preparation(settings: Settings) -> Preparation:
    """The first start's steps: the precompute's four, then loading the model when the settings want one."""
    return Preparation("Preparing the demo", demo_steps(settings))


def prepare_demo_in_background(ctx, preparation: Preparation, n_tokens: int | None = None) -> threading.Thread:
    """The first start of ``featureboard demo`` while the server already answers: precompute, then load the model
    (when the settings want one) into ``ctx``; ``preparation`` says how far it got, or what failed."""

    def run() -> None:
        try:
            precompute_demo_database(ctx.settings, preparation, n_tokens)
            draft_demo_labels(ctx.settings, preparation)
            if ctx.settings.load_model:
                preparation.update(0, 1, "model")
                ctx.set_bundle(load_bundle_for_app(ctx.settings, ctx.sessionmaker))
                preparation.update(1, 1, "model")
                from app.services.output_evidence import start_background

                start_background(ctx)
            from app.services.autolabel import background

            background.start_background(ctx, draft_first=False)  # the drafts were just written: score the rest
            preparation.finish()
        except Exception as exc:  # noqa: BLE001 - shown on the waiting page and in the terminal, with its traceback
            import traceback

            traceback.print_exc(file=sys.stderr)
            preparation.fail(f"the demo could not be prepared: {exc}")

    thread = threading.Thread(target=run, name="demo-first-start", daemon=True)
    thread.start()
    return thread


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
