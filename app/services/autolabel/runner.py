"""Draft and score labels for every alive feature of a source: `AutolabelRunner(config).run()`.

- bounded concurrency: at most `concurrency` features in flight (LLM calls overlap; DB work and embeddings run in
  worker threads, one embedding forward at a time);
- progress: a tqdm bar over features;
- resume: a feature that already has a draft of a drafter's method is not drafted again by it, and a label version
  that already has an 'ok' score of a scorer is not scored again by it (failed scores are retried), so an
  interrupted run continues where it stopped when run again;
- drafts never touch human labels: they are new labels with method auto:<name>, written through
  app/labels/service.py as the password-less account "autolabel"; by default features that already have a human
  label get no drafts (their labels are still scored).
"""

from __future__ import annotations

import asyncio
from collections import Counter, defaultdict
from dataclasses import dataclass, field

from app.errors import Invalid
from app.services.autolabel.data import (
    EMBED_WINDOW,
    LLM_WINDOW,
    N_ACTIVATING,
    N_NON_ACTIVATING,
    held_out_windows,
    load_feature,
)
from app.services.autolabel.drafts import OFFLINE_DRAFTERS, Draft
from app.services.autolabel.llm import ChatClient, LLMConfig, LLMError
from app.services.autolabel.scorers import (
    LLM_SCORERS,
    SCORERS,
    ScoreResult,
    detection_score,
    embedding_score,
    fuzzing_score,
)
from app.store import autolabel as q
from app.store import sources as qs

DRAFTERS = ("input", "output", "llm")


class AutolabelError(Invalid):
    """A bad request a user can fix (unknown source, drafter or scorer, LLM work without an llm_url)."""


@dataclass(frozen=True)
class AutolabelConfig:
    database_url: str
    source: str
    drafters: tuple[str, ...] = ("input", "output")
    scorers: tuple[str, ...] = ("embedding",)
    llm: LLMConfig | None = None
    concurrency: int = 4
    n_activating: int = N_ACTIVATING
    n_non_activating: int = N_NON_ACTIVATING
    features: tuple[int, ...] | None = None  # None: every alive feature
    draft_labeled: bool = False  # also draft features that already have a human label
    seed: int = 0
    progress: bool = True

    def __post_init__(self):
        for name in self.drafters:
            if name not in DRAFTERS:
                raise AutolabelError(f"unknown drafter {name!r}; choose from {', '.join(DRAFTERS)}")
        for name in self.scorers:
            if name not in SCORERS:
                raise AutolabelError(f"unknown scorer {name!r}; choose from {', '.join(SCORERS)}")
        needs_llm = [n for n in self.drafters if n == "llm"] + [n for n in self.scorers if n in LLM_SCORERS]
        if needs_llm and self.llm is None:
            raise AutolabelError(f"{', '.join(needs_llm)} need an LLM: set FEATUREBOARD_LLM_URL or pass --llm-url")
        if self.concurrency < 1:
            raise AutolabelError(f"concurrency must be at least 1, not {self.concurrency}")


@dataclass
class RunSummary:
    source: str
    features: int = 0
    drafts: Counter = field(default_factory=Counter)
    drafts_skipped: Counter = field(default_factory=Counter)
    draft_failures: Counter = field(default_factory=Counter)
    scores: Counter = field(default_factory=Counter)
    score_failures: Counter = field(default_factory=Counter)
    scores_skipped: Counter = field(default_factory=Counter)
    score_sums: dict = field(default_factory=lambda: defaultdict(float))
    errors: list = field(default_factory=list)

    def as_dict(self) -> dict:
        means = {m: round(self.score_sums[m] / n, 4) for m, n in self.scores.items() if n}
        return {"source": self.source, "features": self.features, "drafts": dict(self.drafts),
                "drafts_skipped": dict(self.drafts_skipped), "draft_failures": dict(self.draft_failures),
                "scores": dict(self.scores), "score_failures": dict(self.score_failures),
                "scores_skipped": dict(self.scores_skipped), "mean_score": means, "errors": self.errors[:20]}

    def lines(self) -> list[str]:
        d = self.as_dict()
        out = [f"autolabel {self.source}: {self.features} features"]
        for key in ("drafts", "drafts_skipped", "draft_failures", "scores", "scores_skipped", "score_failures",
                    "mean_score"):
            if d[key]:
                out.append(f"  {key.replace('_', ' ')}: " + ", ".join(f"{k} {v}" for k, v in sorted(d[key].items())))
        out += [f"  error: {e}" for e in d["errors"][:5]]
        return out


class AutolabelRunner:
    def __init__(self, config: AutolabelConfig, transport=None, should_stop=None, on_progress=None):
        self.config = config
        self._transport = transport  # tests: an httpx transport; None: real network to llm_url
        self._should_stop = should_stop or (lambda: False)  # checked before each feature (a server stopping)
        self._on_progress = on_progress  # (done, total) after each feature

    def run(self) -> RunSummary:
        return asyncio.run(self.arun())

    async def arun(self) -> RunSummary:
        from app.store.engine import make_engine, make_sessionmaker

        engine = make_engine(self.config.database_url)
        self._sessions = make_sessionmaker(engine)
        client = ChatClient(self.config.llm, transport=self._transport) if self.config.llm else None
        try:
            return await self._run(client)
        finally:
            if client is not None:
                await client.aclose()
            engine.dispose()

    def _plan(self) -> tuple[object, list[int], dict[str, set[int]], set[int], dict[str, set]]:
        c = self.config
        with self._sessions() as session:
            source = qs.source_by_ref(session, c.source)
            if source is None:
                raise AutolabelError(f"no source named {c.source!r}")
            alive = q.alive_feature_indices(session, source.id)
            if c.features is not None:
                alive_set = set(alive)
                alive = [i for i in c.features if i in alive_set]
            drafted = {name: q.drafted_features(session, source.id, f"auto:{name}") for name in c.drafters}
            human = set() if c.draft_labeled else q.human_labeled_features(session, source.id)
            scored = {name: q.scored_label_versions(session, source.id, name) for name in c.scorers}
            if not c.drafters:  # scoring only: leave out features whose every label version is scored already
                todo = {lab.feature_index for lab in q.feature_label_rows(session, source.id)
                        if any((lab.id, lab.version) not in scored[name] for name in c.scorers)}
                alive = [i for i in alive if i in todo]
            # created here, before any concurrency, so parallel features never race to create it
            self._author_id = q.system_account_id(session) if c.drafters else None
            session.commit()
            session.expunge(source)
        return source, alive, drafted, human, scored

    async def _run(self, client: ChatClient | None) -> RunSummary:
        source, indices, drafted, human, scored = await asyncio.to_thread(self._plan)
        summary = RunSummary(source=source.name, features=len(indices))
        embedder = None
        if "embedding" in self.config.scorers:
            from app.ml.embed import EmbeddingUnavailable, get_embedder

            try:
                embedder = await asyncio.to_thread(get_embedder)
            except EmbeddingUnavailable as exc:
                raise AutolabelError(str(exc)) from None
        from tqdm import tqdm

        bar = tqdm(total=len(indices), desc=f"autolabel {source.name}", unit="feature",
                   disable=not self.config.progress)
        limit = asyncio.Semaphore(self.config.concurrency)

        done = 0

        async def one(index: int) -> None:
            nonlocal done
            async with limit:
                if self._should_stop():
                    return
                try:
                    await self._feature(source, index, drafted, human, scored, client, embedder, summary)
                except Exception as exc:  # noqa: BLE001 - one feature's failure must not stop the batch
                    summary.errors.append(f"feature {index}: {type(exc).__name__}: {exc}")
                bar.update(1)
                done += 1
                if self._on_progress is not None:
                    self._on_progress(done, len(indices))

        await asyncio.gather(*(one(i) for i in indices))
        bar.close()
        return summary

    async def _feature(self, source, index, drafted, human, scored, client, embedder, summary: RunSummary) -> None:
        c = self.config

        def load():
            with self._sessions() as session:
                feature = load_feature(session, source, index)
                held = {width: held_out_windows(session, feature, c.n_activating, c.n_non_activating, c.seed, width)
                        for width in {EMBED_WINDOW if n == "embedding" else LLM_WINDOW for n in c.scorers}}
                return feature, held

        feature, held = await asyncio.to_thread(load)
        drafts: list[Draft] = []
        # output-centric drafts first: until scores rank them, the newest draft (the input-centric one) is canonical
        for name in sorted(c.drafters, key=lambda n: n != "output"):
            if index in drafted[name] or index in human:
                summary.drafts_skipped[name] += 1
                continue
            try:
                if name == "llm":
                    from app.services.autolabel.explainer import llm_draft

                    draft = await llm_draft(feature, client)
                else:
                    draft = OFFLINE_DRAFTERS[name](feature)
            except LLMError as exc:
                summary.draft_failures[name] += 1
                summary.errors.append(f"feature {index} draft {name}: {exc}")
                continue
            if draft is not None:
                drafts.append(draft)
        labels = await asyncio.to_thread(self._store_drafts, source, index, drafts)
        summary.drafts.update(d.method.removeprefix("auto:") for d in drafts)

        results: list[tuple[int, int, ScoreResult]] = []
        for label_id, version, text in labels:
            for name in c.scorers:
                if (label_id, version) in scored[name]:
                    summary.scores_skipped[name] += 1
                    continue
                if name == "embedding":
                    result = await asyncio.to_thread(embedding_score, text, held[EMBED_WINDOW], embedder)
                elif name == "detection":
                    result = await detection_score(text, held[LLM_WINDOW], client, seed=c.seed + index)
                else:
                    result = await fuzzing_score(text, held[LLM_WINDOW], client, seed=c.seed + index)
                results.append((label_id, version, result))
                if result.status == "ok":
                    summary.scores[name] += 1
                    summary.score_sums[name] += result.score
                else:
                    summary.score_failures[name] += 1
                    summary.errors.append(f"feature {index} label {label_id} {name}: {result.error}")
        if results:
            await asyncio.to_thread(self._store_scores, results)

    def _store_drafts(self, source, index: int, drafts: list[Draft]) -> list[tuple[int, int, str]]:
        """Write the drafts as labels; return (id, version, text) of every label of the feature (to score)."""
        from app.services import labels as service
        from app.services.actor import Actor

        with self._sessions() as session:
            if drafts:
                actor = Actor(self._author_id, q.SYSTEM_ACCOUNT, "labeler")
                for draft in drafts:
                    service.create_label(session, actor, source.name, index, draft.text, draft.description,
                                         ["auto"], draft.method)
            return [(lab.id, lab.version, lab.text) for lab in q.feature_label_rows(session, source.id, [index])]

    def _store_scores(self, results: list[tuple[int, int, ScoreResult]]) -> None:
        with self._sessions() as session:
            for label_id, version, r in results:
                q.insert_label_score(session, label_id, version, r.method, r.score, r.inputs, r.details, r.status,
                                     r.error, ci=r.ci)
            session.commit()

