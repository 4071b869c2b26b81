"""SQL for output evidence (feature_output rows, app/precompute/output.py writes them). No HTTP, no torch."""

from __future__ import annotations

from sqlalchemy import delete, insert, select
from sqlalchemy.orm import Session

from app.store.models import Context, Example, Feature, FeatureOutput, Source


def source_by_name(session: Session, name: str) -> Source | None:
    return session.scalars(select(Source).where(Source.name == name)).first()


def pending_features(session: Session, source_id: int) -> list[tuple[int, float]]:
    """(index, max_act) of the source's features that have no output row yet, by index (what a resumed run does)."""
    done = select(FeatureOutput.feature_index).where(FeatureOutput.source_id == source_id)
    rows = session.execute(select(Feature.index, Feature.max_act)
                           .where(Feature.source_id == source_id, Feature.index.not_in(done))
                           .order_by(Feature.index)).all()
    return [(int(i), float(m or 0.0)) for i, m in rows]


def top_contexts(session: Session, source_id: int, indices: list[int], n: int) -> dict[int, list[tuple[bytes, bytes]]]:
    """{feature index: (token ids as int32 LE bytes, activations as float16 LE bytes) of its ``n`` best top
    examples}."""
    rows = session.execute(select(Example.feature_index, Context.token_ids, Example.acts)
                           .join(Context, Context.id == Example.context_id)
                           .where(Example.source_id == source_id, Example.kind == "top",
                                  Example.feature_index.in_(indices), Example.rank < n)
                           .order_by(Example.feature_index, Example.rank)).all()
    out: dict[int, list[tuple[bytes, bytes]]] = {i: [] for i in indices}
    for index, token_ids, acts in rows:
        out[int(index)].append((token_ids, acts))
    return out


def write_outputs(session: Session, source_id: int, rows: list[dict]) -> None:
    """Insert one chunk of rows (``feature_index``, ``n_examples``, ... as the columns) and commit."""
    if rows:
        session.execute(insert(FeatureOutput), [{"source_id": source_id, **r} for r in rows])
    session.commit()


def clear_outputs(session: Session, source_id: int) -> None:
    session.execute(delete(FeatureOutput).where(FeatureOutput.source_id == source_id))
    session.commit()


def feature_output(session: Session, source_id: int, index: int) -> dict | None:
    row = session.get(FeatureOutput, (source_id, index))
    if row is None:
        return None
    return {"n_examples": row.n_examples, "n_positions": row.n_positions, "delta_loss": row.delta_loss,
            "kl": row.kl, "output_score": row.output_score, "strength": row.strength, "promoted": row.promoted}


def output_scores(session: Session, source_id: int, indices: list[int]) -> dict[int, float | None]:
    """{index: output_score} for the given features that have an output row."""
    rows = session.execute(select(FeatureOutput.feature_index, FeatureOutput.output_score)
                           .where(FeatureOutput.source_id == source_id, FeatureOutput.feature_index.in_(indices)))
    return {int(i): s for i, s in rows}
