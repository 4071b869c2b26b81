"""SQL for machine-drafted labels and label scores (issue 8). No HTTP, no templates, no torch.

Labels themselves (rows, revisions, votes) belong to app/queries/labels.py; this module reads them and writes
only `label_score` rows. A draft is a label whose method starts with "auto:"; it is *pending review* while no
account has voted on it (accept = an upvote, reject = a downvote, see app/autolabel/review.py).
"""

from __future__ import annotations

import random

from sqlalchemy import and_, exists, func, select, update
from sqlalchemy.orm import Session, defer

from app.store.engine import IN_CHUNK
from app.store.labels import AUTO_PREFIX, _iso, canonical_label_id
from app.store.models import Account, Context, Example, Feature, Label, LabelScore, Vote, utcnow

SYSTEM_ACCOUNT = "autolabel"  # author of machine drafts; has no password, so nobody can log in as it


# --- features and examples ------------------------------------------------------------------------------------

def alive_feature_indices(session: Session, source_id: int) -> list[int]:
    """Indices of the features that fired at least once in the precompute, ascending."""
    return list(session.scalars(select(Feature.index).where(Feature.source_id == source_id, Feature.n_active > 0)
                                .order_by(Feature.index)))


def other_feature_contexts(session: Session, source_id: int, index: int, n: int, seed: int) -> list[tuple[int, bytes]]:
    """(context id, token ids) of up to `n` contexts that are top examples of *other* features and hold no
    stored example of feature `index`, picked reproducibly from `seed`. Used as non-activating text when the
    feature's own contexts have too few all-zero windows; the feature is *assumed* silent there (it is sparse)."""
    own = select(Example.context_id).where(Example.source_id == source_id, Example.feature_index == index)
    candidates = list(session.scalars(
        select(Example.feature_index).where(Example.source_id == source_id, Example.kind == "top", Example.rank == 0,
                                            Example.feature_index != index).order_by(Example.feature_index)))
    random.Random(seed * 1_000_003 + index).shuffle(candidates)
    picked = candidates[: 3 * n]
    position = {f: k for k, f in enumerate(picked)}
    rows = []
    for i in range(0, len(picked), IN_CHUNK):
        rows += session.execute(
            select(Example.feature_index, Context.id, Context.token_ids).join(Context, Context.id == Example.context_id)
            .where(Example.source_id == source_id, Example.kind == "top", Example.rank < 4,
                   Example.feature_index.in_(picked[i:i + IN_CHUNK]), Context.id.not_in(own))
            .add_columns(Example.rank)).all()
    out: dict[int, bytes] = {}
    for _, cid, ids, _ in sorted(rows, key=lambda r: (r[3], position[r[0]])):
        out.setdefault(cid, ids)
    return list(out.items())[:n]


# --- labels as the drafter and scorers see them ---------------------------------------------------------------

def system_account_id(session: Session) -> int:
    """Id of the password-less account that authors machine drafts, created on first use."""
    found = session.scalar(select(Account.id).where(Account.username == SYSTEM_ACCOUNT))
    if found is not None:
        return found
    account = Account(username=SYSTEM_ACCOUNT, password_hash=None, role="labeler", is_active=True, created_at=utcnow())
    session.add(account)
    session.flush()
    return account.id


def feature_label_rows(session: Session, source_id: int, indices: list[int] | None = None) -> list[Label]:
    """Labels of the source (or of the given feature indices), by feature then id."""
    stmt = select(Label).where(Label.source_id == source_id).order_by(Label.feature_index, Label.id)
    if indices is None:
        return list(session.scalars(stmt))
    out: list[Label] = []
    wanted = sorted(set(indices))
    for i in range(0, len(wanted), IN_CHUNK):
        out += session.scalars(stmt.where(Label.feature_index.in_(wanted[i:i + IN_CHUNK])))
    return out


def drafted_features(session: Session, source_id: int, method: str) -> set[int]:
    """Feature indices that already have a label with this auto method (any review state): resume skips them."""
    return set(session.scalars(select(Label.feature_index).where(Label.source_id == source_id, Label.method == method)))


def human_labeled_features(session: Session, source_id: int) -> set[int]:
    return set(session.scalars(select(Label.feature_index).where(Label.source_id == source_id,
                                                                 Label.method == "human")))


def scored_label_versions(session: Session, source_id: int, method: str) -> set[tuple[int, int]]:
    """(label id, label version) pairs already holding an 'ok' score of `method`: resume skips them."""
    rows = session.execute(select(LabelScore.label_id, LabelScore.label_version)
                           .join(Label, Label.id == LabelScore.label_id)
                           .where(Label.source_id == source_id, LabelScore.method == method,
                                  LabelScore.status == "ok")).all()
    return {(a, b) for a, b in rows}


# --- label scores ---------------------------------------------------------------------------------------------

RANKING_METHOD = "embedding"  # the score that ranks unvoted drafts (the one that runs offline)


def insert_label_score(session: Session, label_id: int, label_version: int, method: str, score: float | None,
                       inputs: dict, details: list, status: str = "ok", error: str | None = None,
                       ci: tuple[float, float] | None = None) -> LabelScore:
    """Store one score; an ok ranking-method score of a draft's current version becomes its draft_score."""
    ok = status == "ok"
    row = LabelScore(label_id=label_id, label_version=label_version, method=method, status=status,
                     score=score if ok else None, ci_low=ci[0] if ci and ok else None,
                     ci_high=ci[1] if ci and ok else None, inputs=inputs, details=details, error=error,
                     created_at=utcnow())
    session.add(row)
    if ok and method == RANKING_METHOD:
        session.execute(update(Label).where(Label.id == label_id, Label.version == label_version,
                                            Label.method.startswith(AUTO_PREFIX)).values(draft_score=score))
    session.flush()
    return row


def score_public(row: LabelScore, with_details: bool = False) -> dict:
    out = {"id": row.id, "label_id": row.label_id, "label_version": row.label_version, "method": row.method,
           "status": row.status, "score": row.score, "ci_low": row.ci_low, "ci_high": row.ci_high,
           "error": row.error, "created_at": _iso(row.created_at),
           "inputs": row.inputs}
    if with_details:
        out["details"] = row.details
    return out


def latest_scores(session: Session, label_ids: list[int], with_details: bool = False) -> dict[int, dict[str, dict]]:
    """{label id: {method: newest score row as a dict}} — failures included (status 'failed', score None)."""
    out: dict[int, dict[str, dict]] = {i: {} for i in label_ids}
    ids = sorted(set(label_ids))
    # Per-example details can be large and the label cards on every feature page need none of them.
    options = () if with_details else (defer(LabelScore.details),)
    for i in range(0, len(ids), IN_CHUNK):
        rows = session.scalars(select(LabelScore).where(LabelScore.label_id.in_(ids[i:i + IN_CHUNK]))
                               .order_by(LabelScore.created_at, LabelScore.id).options(*options))
        for row in rows:
            out[row.label_id][row.method] = score_public(row, with_details)
    return out


def get_label_score(session: Session, score_id: int) -> LabelScore | None:
    return session.get(LabelScore, score_id)


def _ok_scores_subquery(method: str):
    """Newest 'ok' score per label for `method` (max id among ok rows)."""
    newest = (select(LabelScore.label_id, func.max(LabelScore.id).label("score_id"))
              .where(LabelScore.method == method, LabelScore.status == "ok")
              .group_by(LabelScore.label_id).subquery())
    return (select(newest.c.label_id, LabelScore.score)
            .join(LabelScore, LabelScore.id == newest.c.score_id).subquery())


def canonical_score(method: str = "embedding"):
    """Scalar subquery over the enclosing query's Feature row: the newest ok `method` score of its canonical label
    (app/queries/labels.py canonical_order), NULL when that label has none. Two index seeks per feature row."""
    label_id = canonical_label_id()
    return (select(LabelScore.score)
            .where(LabelScore.label_id == label_id, LabelScore.method == method, LabelScore.status == "ok")
            .order_by(LabelScore.id.desc()).limit(1).scalar_subquery())


def label_scores(session: Session, source_id: int, indices=None, method: str = "embedding") -> dict[int, float]:
    """{feature index: newest ok `method` score of the feature's canonical label} for features that have one;
    indices=None means all features of the source."""
    stmt = select(Feature.index, canonical_score(method).label("score")).where(Feature.source_id == source_id)
    if indices is None:
        rows = session.execute(stmt).all()
    else:
        wanted = sorted({int(i) for i in indices})
        rows = [row for i in range(0, len(wanted), IN_CHUNK)
                for row in session.execute(stmt.where(Feature.index.in_(wanted[i:i + IN_CHUNK]))).all()]
    return {index: float(score) for index, score in rows if score is not None}


def low_scoring_labels(session: Session, source_id: int, method: str, threshold: float,
                       limit: int = 200) -> list[tuple[Label, float]]:
    """Labels whose newest ok `method` score is below `threshold`, worst first ("needs review")."""
    scores = _ok_scores_subquery(method)
    rows = session.execute(
        select(Label, scores.c.score).join(scores, scores.c.label_id == Label.id)
        .where(Label.source_id == source_id, scores.c.score < threshold)
        .order_by(scores.c.score, Label.feature_index, Label.id).limit(limit)).all()
    return [(label, float(score)) for label, score in rows]


def pending_drafts(session: Session, source_id: int, limit: int = 50, offset: int = 0) -> tuple[list[Label], int]:
    """Machine drafts nobody has voted on yet (the review queue), by feature index, and their total count."""
    voted = exists().where(Vote.label_id == Label.id)
    cond = and_(Label.source_id == source_id, Label.method.startswith(AUTO_PREFIX), ~voted)
    total = session.scalar(select(func.count()).select_from(Label).where(cond)) or 0
    rows = list(session.scalars(select(Label).where(cond).order_by(Label.feature_index, Label.id)
                                .limit(limit).offset(offset)))
    return rows, int(total)


def all_label_texts(session: Session, source_id: int) -> list[tuple[int, int, int, str, str]]:
    """(label id, version, feature index, method, text) of every label of a source, for semantic search."""
    return [tuple(r) for r in session.execute(
        select(Label.id, Label.version, Label.feature_index, Label.method, Label.text)
        .where(Label.source_id == source_id).order_by(Label.id)).all()]


def draft_score_rows(session: Session, source_id: int, method: str = RANKING_METHOD) -> list[tuple]:
    """(feature index, text, score, ci_low, ci_high) of the newest ok `method` score of each machine draft's
    current version (what the demo build ships)."""
    newest = (select(func.max(LabelScore.id)).join(Label, Label.id == LabelScore.label_id)
              .where(Label.source_id == source_id, Label.method.startswith(AUTO_PREFIX), LabelScore.method == method,
                     LabelScore.status == "ok", LabelScore.label_version == Label.version)
              .group_by(LabelScore.label_id))
    return [tuple(r) for r in session.execute(
        select(Label.feature_index, Label.text, LabelScore.score, LabelScore.ci_low, LabelScore.ci_high)
        .join(Label, Label.id == LabelScore.label_id).where(LabelScore.id.in_(newest))
        .order_by(Label.feature_index, Label.id)).all()]
