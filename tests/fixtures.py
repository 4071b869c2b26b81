"""One fixture world, in the spirit of Datasette's fixtures.py: a known Featureboard written through the real code.

`build_world(root)` makes, once per test session:
- a seeded tiny GPT-2 (tests/ml/factories.py, the one tokenizer builder) and two SAE folders in the SAELens format,
  "world-l1" (standard, blocks.1) and "world-l2" (topk, blocks.2);
- a corpus of short documents, precomputed by the real PrecomputeRunner into `world.db` (the precompute writer);
- accounts made by app/services/accounts.py: admin "root", labelers "ada" and "bob", viewer "vic" (password
  PASSWORD for all), and labels, revisions, votes, a comment and a feature list made by app/services/labels.py:
  feature LABELED of world-l1 carries ada's label (edited once) and bob's different one, bob upvoted ada's.

`add_source(url, ...)` writes one source of made-up features and examples through the same writer, for tests that
need a shape the corpus does not give (dead and dense features, 100k features, odd names). Tests get private copies:
`world_db_url` / `world_app_client` in tests/conftest.py.
"""

from __future__ import annotations

import random
import sqlite3
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from tests.ml.factories import SENTENCES, build_sae_folder, build_tiny_model

PASSWORD = "correct horse battery staple"
ACCOUNTS = {"root": "admin", "ada": "labeler", "bob": "labeler", "vic": "viewer"}
CONTEXT_SIZE = 16
LABELED = 3  # the world-l1 feature that ada and bob label differently (the first alive one is used if 3 is dead)


@dataclass
class World:
    root: Path
    db: Path
    model: str
    saes: dict[str, str]  # source name -> SAE folder
    corpus: str
    labeled: int = LABELED
    label_ids: dict[str, int] = field(default_factory=dict)  # "ada" / "bob" -> id of their label on `labeled`
    list_slug: str = ""
    alive: dict[str, list[int]] = field(default_factory=dict)  # source -> indices that fired

    @property
    def url(self) -> str:
        return f"sqlite:///{self.db}"

    def copy_to(self, folder: Path) -> str:
        """A private copy of the world's database in ``folder`` (SQLite's backup API, so the WAL comes along);
        returns its URL."""
        folder.mkdir(parents=True, exist_ok=True)
        target = folder / "world.db"
        with sqlite3.connect(self.db) as src, sqlite3.connect(target) as dst:
            src.backup(dst)
        return f"sqlite:///{target}"


def write_corpus(folder: Path, n_docs: int = 24, seed: int = 0) -> Path:
    """A few hundred short documents' worth of the tokenizer's training sentences (and one exact duplicate)."""
    rng = random.Random(seed)
    folder.mkdir(parents=True, exist_ok=True)
    for d in range(n_docs):
        words = " ".join(rng.choice(SENTENCES).replace("\n", " ") for _ in range(rng.randint(2, 5)))
        (folder / f"doc{d:03d}.txt").write_text(words + "\n", encoding="utf-8")
    (folder / "zz-dup.txt").write_text((folder / "doc000.txt").read_text() * 3, encoding="utf-8")
    return folder


def build_world(root: Path) -> World:
    from app.precompute.runner import PrecomputeConfig, PrecomputeRunner

    root.mkdir(parents=True, exist_ok=True)
    model = build_tiny_model(root, "gpt2")
    saes = {
        "world-l1": build_sae_folder(root, "standard", seed=1, name="world-l1", context_size=CONTEXT_SIZE),
        "world-l2": build_sae_folder(root, "topk", seed=2, name="world-l2", hook_name="blocks.2.hook_resid_post",
                                     hook_layer=2, context_size=CONTEXT_SIZE),
    }
    corpus = write_corpus(root / "corpus")
    world = World(root=root, db=root / "world.db", model=str(model), saes={k: str(v) for k, v in saes.items()},
                  corpus=str(corpus))
    config = PrecomputeConfig(model=world.model, saes=tuple(world.saes.values()), corpus=world.corpus,
                              source_names=tuple(world.saes), n_tokens=1600, batch_size=8, top_k=5, n_intervals=4,
                              examples_per_interval=3, hist_bins=20, database_url=world.url,
                              checkpoint_dir=str(root / "ckpt"), device="cpu", health_contexts=4, progress=False,
                              checkpoint_every_s=0.0)
    PrecomputeRunner(config).run()
    _people_and_labels(world)
    return world


def _people_and_labels(world: World) -> None:
    from app.services import accounts, labels
    from app.store.engine import make_engine, make_sessionmaker
    from app.store.models import Feature
    from app.store.sources import source_by_name

    engine = make_engine(world.url)
    try:
        with make_sessionmaker(engine)() as session:
            for name in world.saes:
                source = source_by_name(session, name)
                world.alive[name] = sorted(session.scalars(
                    Feature.__table__.select().with_only_columns(Feature.index)
                    .where(Feature.source_id == source.id, Feature.n_active > 0)))
            actors = {name: accounts.create_account(session, name, PASSWORD, role) for name, role in ACCOUNTS.items()}
            if world.labeled not in world.alive["world-l1"]:
                world.labeled = world.alive["world-l1"][0]
            index = world.labeled
            ada = labels.create_label(session, actors["ada"], "world-l1", index, "numbers in text", "first take",
                                      "digits")
            labels.edit_label(session, actors["ada"], ada["id"], ada["version"], "numbers and digits",
                              "seen on 1, 2, 3 and 42", "digits, numbers")
            bob = labels.create_label(session, actors["bob"], "world-l1", index, "list separators")
            labels.vote(session, actors["bob"], ada["id"], 1)
            labels.add_comment(session, actors["ada"], "world-l1", index, "Fires on the comma after a digit too.")
            made = labels.create_list(session, actors["ada"], "world-l1", "favourites", "features to revisit")
            for i in world.alive["world-l1"][:3]:
                labels.add_list_item(session, actors["ada"], made["slug"], i, "")
            world.label_ids = {"ada": ada["id"], "bob": bob["id"]}
            world.list_slug = made["slug"]
    finally:
        engine.dispose()


# --- made-up sources, written through the precompute writer --------------------------------------------------

def add_source(target, *, name: str = "test-sae", model_name: str = "", d_sae: int = 64,
               n_features: int | None = None, dead: set[int] = frozenset(), dense: set[int] = frozenset(),
               token_ids: list[int] | None = None, n_top: int = 8, n_bins: int = 3, per_bin: int = 3,
               context_len: int = 40, with_examples: bool = True, health: dict | None = None,
               hook_name: str = "blocks.1.hook_resid_post", d_in: int = 128, sae_path: str | None = None,
               architecture: str = "standard", seed: int = 0, lean: bool = False, dead_every: int = 0,
               densities: list[float] | None = None, max_act: float | None = None, cfg: dict | None = None) -> int:
    """Write a complete source of ``n_features`` (default ``d_sae``) seeded feature rows — ``dead`` (and, with
    ``dead_every``, every such index) never fire, ``dense`` fire on 60 % of tokens, the rest on 0.1–5 % — with
    top and interval examples over real token contexts, through app/store/writer.write_source. ``lean``: feature
    rows without histograms, logits or examples and densities spread over 1e-6..0.3 (for paging at 100k features).
    ``densities``: feature i gets exactly densities[i] (0 = dead); ``max_act``: every alive feature's maximum. ``target``: a database URL, an Engine, or a
    TestClient of the app (its engine). Returns the source id."""
    rng = np.random.default_rng(seed)
    n_features = d_sae if n_features is None else n_features
    base_ids = token_ids or list(range(300))
    n_contexts = 24 if with_examples and not lean else 0
    contexts = {o: np.array([base_ids[(o * 7 + j) % len(base_ids)] for j in range(context_len)], dtype="<i4")
                for o in range(n_contexts)}
    row = {"name": name, "model_name": model_name, "sae_path": sae_path or f"/saes/{name}", "hook_name": hook_name,
           "architecture": architecture, "d_in": d_in, "d_sae": d_sae, "cfg": cfg or {}, "corpus": {"name": "test corpus"},
           "params": {}, "n_tokens": 40_000, "n_contexts": 312,
           "health": health if health is not None else {
               "l0": 12.5, "explained_variance": 0.81, "mse": 0.0123, "dead": len(dead), "dense": len(dense),
               "ce_loss_clean": 3.1, "ce_loss_sae": 3.4, "ce_loss_zero_ablation": 7.9, "ce_recovered": 0.94}}

    if dead_every:
        dead = set(dead) | set(range(0, n_features, dead_every))
    if densities is not None:
        dead = set(dead) | {i for i, d in enumerate(densities) if d == 0}

    def lean_chunks():
        density = 10 ** rng.uniform(-6, -0.5, n_features)
        max_act = rng.uniform(0.5, 30, n_features)
        for i in dead:
            density[i], max_act[i] = 0.0, 0.0
        for start in range(0, n_features, 10_000):
            rows = [{"index": i, "n_active": int(d * 1_000_000), "density": d, "max_act": m, "mean_act": m / 3,
                     "act_hist": {}, "intervals": [], "top_logits": [], "bottom_logits": [], "logit_hist": {},
                     "neighbours": []}
                    for i, d, m in zip(range(start, min(start + 10_000, n_features)),
                                       density[start:start + 10_000].tolist(), max_act[start:start + 10_000].tolist())]
            yield rows, ExampleRows().done()

    def chunks():
        for start in range(0, n_features, 1024):
            features, columns = [], ExampleRows()
            for index in range(start, min(start + 1024, n_features)):
                features.append(_feature_row(rng, index, index in dead, index in dense, d_sae, n_bins, max_act))
                if densities is not None:
                    features[-1].update(density=densities[index], n_active=round(densities[index] * 40_000))
                if with_examples and index not in dead:
                    _examples(rng, columns, index, features[-1]["max_act"], n_contexts, context_len,
                              n_top, n_bins, per_bin)
            yield features, columns.done()

    return write_rows(target, row, f"test:{name}:{seed}", contexts, lean_chunks() if lean else chunks())


def write_rows(target, row: dict, corpus_key: str, contexts: dict[int, np.ndarray], chunks) -> int:
    """Write one source through app/store/writer.write_source: ``row`` (the source's columns), token ``contexts``
    by ordinal, and ``chunks`` of (feature rows, ExampleRows(...).done()). Returns the source id."""
    from app.store.writer import write_source

    engine = _engine_of(target)
    try:
        return write_source(engine, row, corpus_key, {o: np.asarray(ids, dtype="<i4").tobytes()
                                                      for o, ids in contexts.items()}, chunks)
    finally:
        if isinstance(target, str):
            engine.dispose()


def _engine_of(target):
    """The Engine behind a URL, an Engine or an app's TestClient."""
    from app.store.engine import make_engine

    if isinstance(target, str):
        return make_engine(target)
    app = getattr(target, "app", None)
    return app.state.engine if app is not None else target


def _hist(rng, lo: float, hi: float, n: int = 50) -> dict:
    return {"edges": [float(e) for e in np.linspace(lo, hi, n + 1)], "counts": [int(c) for c in rng.integers(0, 200, n)]}


def _feature_row(rng, index: int, is_dead: bool, is_dense: bool, d_sae: int, n_bins: int = 3,
                 fixed_max: float | None = None) -> dict:
    density = 0.0 if is_dead else (0.6 if is_dense else float(rng.uniform(0.001, 0.05)))
    max_act = 0.0 if is_dead else float(rng.uniform(1.0, 9.0)) if fixed_max is None else fixed_max
    logits = [{"token_id": int(t), "token": f"t{t}", "value": float(v)}
              for t, v in zip(rng.integers(0, 300, 5), np.sort(rng.uniform(0.1, 2.0, 5))[::-1])]
    neighbours = [{"index": int(j), "cosine": float(c)} for j, c in
                  zip(rng.choice(max(d_sae, 2), size=min(5, d_sae), replace=False), np.sort(rng.uniform(0.2, 0.9, 5))[::-1])
                  if int(j) != index]
    return {"index": index, "n_active": 0 if is_dead else max(1, int(density * 40_000)), "density": density,
            "max_act": max_act, "mean_act": max_act / 3,
            "act_hist": {} if is_dead else _hist(rng, 0.0, max_act),
            "intervals": [] if is_dead else [
                {"lo": max_act * b / n_bins, "hi": max_act * (b + 1) / n_bins, "share": round(0.7 / (b + 1), 3),
                 "count": int(100 / (b + 1))} for b in range(n_bins)],
            "top_logits": logits, "bottom_logits": [{**t, "value": -t["value"]} for t in logits],
            "logit_hist": _hist(rng, -2.0, 2.0), "neighbours": neighbours}


class ExampleRows:
    """Example rows collected one by one, handed to the writer as app/store/writer.ExampleColumns."""

    def __init__(self):
        self.rows: list[tuple] = []

    def add(self, feature_index: int, is_top: bool, bin_: int, rank: int, ordinal: int, max_value: float,
            max_pos: int, acts: np.ndarray) -> None:
        self.rows.append((feature_index, is_top, bin_, rank, ordinal, max_value, max_pos, acts))

    def done(self):
        from app.store.writer import ExampleColumns as columns_cls

        if not self.rows:
            empty = np.zeros(0, dtype=np.int64)
            return columns_cls(empty, empty.astype(bool), empty, empty, empty, empty.astype(np.float32), empty,
                               np.zeros((0, 1), dtype=np.float16))
        f, top, b, r, o, v, pos, acts = zip(*self.rows)
        return columns_cls(np.array(f, dtype=np.int64), np.array(top, dtype=bool), np.array(b, dtype=np.int64),
                           np.array(r, dtype=np.int64), np.array(o, dtype=np.int64), np.array(v, dtype=np.float32),
                           np.array(pos, dtype=np.int64), np.stack(acts).astype(np.float16))


def _examples(rng, out: ExampleRows, index: int, max_act: float, n_contexts: int, context_len: int, n_top: int,
              n_bins: int, per_bin: int) -> None:
    def acts_for(peak_pos: int, peak: float) -> np.ndarray:
        values = np.zeros(context_len, dtype=np.float32)
        values[rng.integers(0, context_len, 3)] = rng.uniform(0, peak / 2, 3)
        values[peak_pos] = peak
        return values

    for rank in range(n_top):
        peak = max_act * (1 - rank * 0.05)
        pos = int(rng.integers(0, context_len))
        out.add(index, True, -1, rank, rank % n_contexts, peak, pos, acts_for(pos, peak))
    for b in range(n_bins):
        for k in range(per_bin):
            peak = max_act * (b + 0.5) / n_bins
            pos = int(rng.integers(0, context_len))
            # interval samples reuse 4 contexts, so full windows repeat (the pages fold duplicates)
            out.add(index, False, b, k, (b * per_bin + k) % 4, peak, pos, acts_for(pos, peak))
