"""SQL reads behind the browse pages (home, source, feature). No HTTP, no templates, no torch.

Labels belong to app.queries.labels (another capability); it is imported defensively so these pages
work before it exists.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

from sqlalchemy import Row, case, func, literal_column, select
from sqlalchemy.orm import Session

from app.store.autolabel import canonical_score as _canonical_score
from app.store.autolabel import label_scores as _label_scores
from app.store.engine import MAX_IN_LIST
from app.store.labels import canonical_labels as _canonical_labels
from app.store.models import Context, Example, Feature, FeatureOutput, Source


def labels_available() -> bool:
    """Kept in the feature table's JSON (`labels_available`) for clients; labels are always installed now."""
    return True


def canonical_labels(session: Session, source_id: int, indices) -> dict[int, str]:
    """Canonical label text by feature index. indices=None: all."""
    return _canonical_labels(session, source_id, None if indices is None else list(indices))


def canonical_label_scores(session: Session, source_id: int, indices, method: str) -> dict[int, float]:
    """`method` score of each feature's canonical label by feature index."""
    return _label_scores(session, source_id, list(indices), method=method)








def feature_with_source(session: Session, source_name: str, index: int) -> tuple[Source | None, Feature | None]:
    """The source and one feature row in one query (feature None when the index has no row)."""
    row = session.execute(
        select(Source, Feature)
        .outerjoin(Feature, (Feature.source_id == Source.id) & (Feature.index == index))
        .where(Source.name == source_name)
    ).first()
    if row is None:
        return None, None
    return row[0], row[1]


@dataclass(frozen=True)
class ExampleRow:
    """One stored example: `acts` are float16 LE bytes over the context's tokens (`token_ids`, int32 LE)."""

    id: int
    kind: str
    bin: int
    rank: int
    context_id: int
    max_value: float
    max_pos: int
    acts: bytes
    token_ids: bytes


def feature_examples(session: Session, source_id: int, index: int) -> list[ExampleRow]:
    """All stored examples of a feature with their contexts' token ids, top first then bins ascending."""
    rows = session.execute(
        select(Example.id, Example.kind, Example.bin, Example.rank, Example.context_id, Example.max_value,
               Example.max_pos, Example.acts, Context.token_ids)
        .join(Context, Context.id == Example.context_id)
        .where(Example.source_id == source_id, Example.feature_index == index)
        .order_by(Example.kind.desc(), Example.bin, Example.rank)
    ).all()
    return [ExampleRow(*r) for r in rows]


def feature_densities(session: Session, source_id: int) -> list[float]:
    return list(session.scalars(select(Feature.density).where(Feature.source_id == source_id)))


def feature_counts(session: Session, source_id: int) -> tuple[int, int, int, int]:
    """(rows, dead, min index, max index) of a source's features.

    Dead is density == 0 (same as n_active == 0) so that every count here is answered from indexes,
    never by reading the wide feature rows."""
    n, dead = session.execute(
        select(func.count(), func.sum(case((Feature.density <= 0, 1), else_=0))).where(Feature.source_id == source_id)
    ).one()
    lo = session.scalar(select(func.min(Feature.index)).where(Feature.source_id == source_id))
    hi = session.scalar(select(func.max(Feature.index)).where(Feature.source_id == source_id))
    return int(n or 0), int(dead or 0), lo, hi


@dataclass(frozen=True)
class TableQuery:
    sort: str = "index"  # index | density | max | label | score (the canonical label's score)
    order: str = "asc"  # asc | desc
    hide_dead: bool = False
    max_density: float | None = None  # percent; rows above it are hidden
    label: str = "any"  # any | labeled | unlabeled
    min_output: float | None = None  # output score (ablation KL, nats); rows below it or without one are hidden
    page: int = 1
    per_page: int = 50


SORTS = ("index", "density", "max", "label", "score", "output")
SCORE_METHOD = "embedding"  # the label score shown and sorted on: the one that runs offline
LABEL_FILTERS = ("any", "labeled", "unlabeled")


def feature_table(session: Session, source_id: int, q: TableQuery) -> tuple[list[Row], int]:
    """One page of feature rows (index, density, max_act, mean_act, n_active, top_logits) and the filtered count."""
    cond = [Feature.source_id == source_id]
    if q.hide_dead:
        # A dead feature has density 0 and max 0: filter on the sorted column so its index serves both.
        cond.append(Feature.max_act > 0 if q.sort == "max" else Feature.density > 0)
    if q.max_density is not None:
        cond.append(Feature.density <= q.max_density / 100.0)
    labeled: set[int] | None = None
    if q.label != "any" or q.sort == "label":
        labeled = set(canonical_labels(session, source_id, None))
        if len(labeled) > MAX_IN_LIST:
            labeled = set(sorted(labeled)[:MAX_IN_LIST])
    if q.label == "labeled":
        cond.append(Feature.index.in_(labeled or []))
    elif q.label == "unlabeled" and labeled:
        cond.append(Feature.index.not_in(labeled))

    output = output_score()
    if q.min_output is not None:
        cond.append(output >= q.min_output)

    desc = q.order == "desc"
    column = {"index": Feature.index, "density": Feature.density, "max": Feature.max_act}.get(q.sort)
    if q.sort == "label" and labeled:
        state = Feature.index.in_(labeled)
        order_by = [state.desc() if not desc else state.asc(), Feature.index]
    elif q.sort == "score":
        score = _canonical_score(SCORE_METHOD)
        # Features whose canonical label has no score come last in either order.
        order_by = [(score.desc() if desc else score.asc()).nulls_last(), Feature.index]
    elif q.sort == "output":
        # Features without output evidence (not computed yet, or never fired on their examples) come last.
        order_by = [(output.desc() if desc else output.asc()).nulls_last(), Feature.index]
    elif column is None or column is Feature.index:
        order_by = [Feature.index.desc() if desc else Feature.index]
    else:
        # The tie-breaker must ride in the same index as the sort column, else SQLite sorts all rows in a
        # temp B-tree: there (source_id, column) indexes end in rowid; elsewhere the feature index breaks ties.
        tie = literal_column("feature.rowid") if session.get_bind().dialect.name == "sqlite" else Feature.index
        order_by = [column.desc(), tie.desc()] if desc else [column.asc(), tie.asc()]

    count = session.scalar(select(func.count()).select_from(Feature).where(*cond)) or 0
    rows = session.execute(
        select(Feature.index, Feature.density, Feature.max_act, Feature.mean_act, Feature.n_active,
               Feature.top_logits, output.label("output_score"))
        .where(*cond).order_by(*order_by)
        .limit(q.per_page).offset((q.page - 1) * q.per_page)
    ).all()
    return rows, int(count)


def output_score():
    """Scalar subquery over the enclosing query's Feature row: its output score (feature_output), NULL without one."""
    return (select(FeatureOutput.output_score)
            .where(FeatureOutput.source_id == Feature.source_id, FeatureOutput.feature_index == Feature.index)
            .scalar_subquery())


def random_live_index(session: Session, source_id: int, d_sae: int, rng: random.Random | None = None) -> int | None:
    """A random feature index that fired at least once (None if every feature is dead or absent)."""
    start = (rng or random).randrange(max(d_sae, 1))
    base = select(Feature.index).where(Feature.source_id == source_id, Feature.density > 0)
    found = session.scalar(base.where(Feature.index >= start).order_by(Feature.index).limit(1))
    if found is None:
        found = session.scalar(base.where(Feature.index < start).order_by(Feature.index).limit(1))
    return found


PEAK_EXAMPLES = 10  # top examples per feature whose peak tokens make its "fires on" column


def peak_tokens(session: Session, source_id: int, indices, n: int = 3) -> dict[int, list[int]]:
    """{feature index: its `n` commonest peak token ids over its first PEAK_EXAMPLES top examples, most common
    first (ties: the higher-ranked example's token)}. Reads only the 4 bytes of each peak (substr on the blob)."""
    wanted = sorted({int(i) for i in indices})
    if not wanted:
        return {}
    peak = func.substr(Context.token_ids, Example.max_pos * 4 + 1, 4)
    rows = session.execute(
        select(Example.feature_index, Example.rank, peak).join(Context, Context.id == Example.context_id)
        .where(Example.source_id == source_id, Example.kind == "top", Example.rank < PEAK_EXAMPLES,
               Example.feature_index.in_(wanted[:MAX_IN_LIST]))
        .order_by(Example.feature_index, Example.rank)).all()
    counts: dict[int, dict[int, int]] = {}
    for index, _rank, raw in rows:
        if raw is None or len(raw) != 4:
            continue
        token = int.from_bytes(bytes(raw), "little", signed=True)
        per = counts.setdefault(index, {})
        per[token] = per.get(token, 0) + 1  # dicts keep first-seen order: ties go to the higher-ranked example
    return {index: [t for t, _ in sorted(per.items(), key=lambda kv: -kv[1])[:n]] for index, per in counts.items()}
