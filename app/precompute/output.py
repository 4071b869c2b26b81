"""Output evidence for every feature of a precomputed source (issue 18): what ablating it does to the model's
next-token predictions on its top examples, and which tokens it promotes when added on neutral prompts.

``OutputEvidenceRunner(config).run()`` reads a complete source's top examples from the database, runs the
model and SAE (:mod:`app.ml.output_evidence`) and writes one ``feature_output`` row per feature, a chunk of
features per commit. It is resumable: a rerun (or a run after an interruption) does only the features that have
no row yet; ``replace=True`` starts over.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch

from app.errors import NotFound
from app.ml.prompts import NEUTRAL_PROMPTS
from app.precompute.config import PrecomputeError
from app.store import output as q
from app.store.engine import make_engine, make_sessionmaker, upgrade_database


@dataclass(frozen=True)
class OutputEvidenceConfig:
    database_url: str
    sources: tuple[str, ...]
    n_examples: int = 8  # top examples ablated per feature
    strength_multiple: float = 1.0  # promoted tokens: the feature added at this × its max activation
    n_promoted: int = 10
    prompts: tuple[str, ...] = NEUTRAL_PROMPTS
    chunk: int = 64  # features per commit (and per batch of the promoted-token pass)
    device: str = "auto"
    replace: bool = False
    progress: bool = True

    def __post_init__(self):
        if not self.sources:
            raise PrecomputeError("output evidence needs at least one source name")
        for name in ("n_examples", "n_promoted", "chunk"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise PrecomputeError(f"{name} must be a positive integer, got {value!r}")
        if not self.strength_multiple > 0:
            raise PrecomputeError(f"strength_multiple must be positive, got {self.strength_multiple!r}")
        if not self.prompts:
            raise PrecomputeError("output evidence needs at least one neutral prompt")


Progress = Callable[[str, int, int], None]  # (source, features done, features in all)


class OutputEvidenceRunner:
    def __init__(self, config: OutputEvidenceConfig, bundle=None, on_progress: Progress | None = None,
                 execute: Callable[[Callable[[], list]], list] | None = None,
                 should_stop: Callable[[], bool] = lambda: False):
        """``bundle``: an already loaded app.ml.bundle.ModelBundle holding the sources' SAEs (else each source's
        model and SAE are loaded from the paths the source recorded). ``execute(fn)`` runs the model work of one
        chunk and returns ``fn()`` (the web process passes its model runner, so other requests run between
        chunks); ``should_stop()`` is polled between chunks (what is written stays; a rerun continues)."""
        self.config = config
        self.bundle = bundle
        self.on_progress = on_progress
        self.execute = execute or (lambda fn: fn())
        self.should_stop = should_stop

    def run(self) -> dict[str, dict]:
        """{source: {"written", "skipped", "seconds"}}."""
        cfg = self.config
        upgrade_database(cfg.database_url)
        engine = make_engine(cfg.database_url)
        sessions = make_sessionmaker(engine)
        out = {}
        try:
            for name in cfg.sources:
                out[name] = self._run_source(sessions, name)
        finally:
            engine.dispose()
        return out

    def _model(self, source):
        if self.bundle is not None and source.name in self.bundle.saes:
            return self.bundle.lm, self.bundle.saes[source.name]
        from app.ml.bundle import load_bundle

        bundle = load_bundle(source.model_name, {source.name: source.sae_path}, device=self.config.device)
        return bundle.lm, bundle.saes[source.name]

    def _run_source(self, sessions, name: str) -> dict:
        cfg = self.config
        t0 = time.perf_counter()
        with sessions() as session:
            source = q.source_by_name(session, name)
            if source is None:
                raise NotFound(f"no source named {name!r} in {cfg.database_url}")
            if source.status != "complete":
                raise PrecomputeError(f"source {name!r} is still being precomputed (status {source.status})")
            if cfg.replace:
                q.clear_outputs(session, source.id)
            pending = q.pending_features(session, source.id)
            total = source.d_sae
        if not pending:
            return {"written": 0, "skipped": total, "seconds": 0.0}
        lm, sae = self._model(source)
        bar = None
        if cfg.progress:
            from tqdm import tqdm

            bar = tqdm(total=len(pending), desc=f"output evidence {name}", unit="feature")
        written = 0
        for start in range(0, len(pending), cfg.chunk):
            if self.should_stop():
                break
            chunk = pending[start:start + cfg.chunk]
            with sessions() as session:
                contexts = q.top_contexts(session, source.id, [i for i, _ in chunk], cfg.n_examples)
            rows = self.execute(lambda: self._chunk_rows(lm, sae, chunk, contexts))  # noqa: B023 - run at once
            with sessions() as session:
                q.write_outputs(session, source.id, rows)
            written += len(rows)
            if bar is not None:
                bar.update(len(rows))
            if self.on_progress is not None:
                self.on_progress(name, total - len(pending) + written, total)
        if bar is not None:
            bar.close()
        return {"written": written, "skipped": total - len(pending), "seconds": round(time.perf_counter() - t0, 2)}

    def _chunk_rows(self, lm, sae, chunk: list[tuple[int, float]], contexts: dict[int, list[bytes]]) -> list[dict]:
        from app.ml.output_evidence import ablation_effects, promoted_tokens

        cfg = self.config
        alive = [(i, m) for i, m in chunk if m > 0]
        promoted = dict(zip([i for i, _ in alive], promoted_tokens(
            lm, sae, [i for i, _ in alive], [m * cfg.strength_multiple for _, m in alive], cfg.prompts,
            k=cfg.n_promoted))) if alive else {}
        texts: dict[int, str] = {}
        rows = []
        for index, max_act in chunk:
            blobs = _same_length(contexts.get(index, []))
            effect = {"delta_loss": 0.0, "kl": 0.0, "n_positions": 0}
            if blobs and max_act > 0:
                ids = torch.from_numpy(np.stack([np.frombuffer(t, dtype="<i4") for t, _ in blobs]).astype(np.int64))
                # where the stored examples last fire (+ a margin for values float16 rounds to 0 at the edge)
                fired = [np.flatnonzero(np.frombuffer(a, dtype="<f2")) for _, a in blobs]
                last = max((int(f[-1]) for f in fired if f.size), default=ids.shape[1] - 1)
                effect = ablation_effects(lm, sae, index, ids, upto=min(ids.shape[1], last + 8))
            tokens = []
            for t in promoted.get(index, []):
                if t["token_id"] not in texts:
                    texts[t["token_id"]] = lm.tokenizer.decode([t["token_id"]])
                tokens.append({**t, "token": texts[t["token_id"]]})
            rows.append({"feature_index": index, "n_examples": len(blobs), "n_positions": effect["n_positions"],
                         "delta_loss": effect["delta_loss"], "kl": effect["kl"],
                         "output_score": effect["kl"] if effect["n_positions"] else None,
                         "strength": max_act * cfg.strength_multiple, "promoted": tokens})
        return rows


def _same_length(blobs: list[tuple[bytes, bytes]]) -> list[tuple[bytes, bytes]]:
    """Contexts of one length (the most common one; a corpus's last context can be shorter)."""
    if not blobs:
        return []
    lengths = [len(t) for t, _ in blobs]
    common = max(set(lengths), key=lengths.count)
    return [b for b in blobs if len(b[0]) == common]
