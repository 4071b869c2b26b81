"""SQL for labels, revisions, votes, comments, feature lists, the activity feed and label search.

Writes that can race are single conditional statements (`UPDATE ... WHERE version = :base`), so they are
correct on PostgreSQL (row lock, then the WHERE is re-checked) and on SQLite (one writer at a time).
"""

from __future__ import annotations

import re
import uuid
from datetime import datetime

from sqlalchemy import and_, case, delete, exists, func, or_, select, text, update
from sqlalchemy.orm import Session

from app.store.engine import IN_CHUNK
from app.store.models import (
    Account,
    Activity,
    Comment,
    Feature,
    FeatureList,
    FeatureListItem,
    Label,
    LabelRevision,
    Source,
    Vote,
    utcnow,
)


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value else None


# --- sources and features -------------------------------------------------------------------------------------







def get_feature(session: Session, source_id: int, index: int) -> Feature | None:
    return session.get(Feature, (source_id, index))


def feature_exists(session: Session, source_id: int, index: int) -> bool:
    """Existence only: the feature row's JSON columns (histograms, logits, neighbours) stay unread."""
    return session.scalar(select(Feature.index).where(Feature.source_id == source_id, Feature.index == index)) is not None


# --- labels ---------------------------------------------------------------------------------------------------

AUTO_PREFIX = "auto:"  # method of a machine-drafted label


def canonical_order() -> tuple:
    """ORDER BY of a feature's labels, canonical first: most votes, then a person's label before a machine draft
    (auto:*) with as many votes, then among drafts the best-scoring (draft_score; unscored last), then newest.
    Every "canonical label" in the app ranks labels with this."""
    machine = case((Label.method.startswith(AUTO_PREFIX), 1), else_=0)
    unscored = case((Label.draft_score.is_(None), 1), else_=0)
    return (Label.score.desc(), machine.asc(), unscored.asc(), Label.draft_score.desc(), Label.created_at.desc(),
            Label.id.desc())


def canonical_label_id():
    """Scalar subquery over the enclosing query's Feature row: id of its canonical label, NULL when it has none.
    Each row costs one seek on ix_label_canonical, so ordering 16k features by it stays fast."""
    return (select(Label.id).where(Label.source_id == Feature.source_id, Label.feature_index == Feature.index)
            .order_by(*canonical_order()).limit(1).correlate(Feature).scalar_subquery())


def label_public(label: Label, author: str, source: str) -> dict:
    return {"id": label.id, "uid": label.uid, "source_id": label.source_id, "source": source,
            "feature_index": label.feature_index,
            "text": label.text, "description": label.description, "tags": list(label.tags or []),
            "method": label.method, "author": author, "author_id": label.author_id, "version": label.version,
            "score": label.score, "created_at": _iso(label.created_at), "updated_at": _iso(label.updated_at)}


def _labels_with_authors(session: Session, stmt) -> list[dict]:
    rows = session.execute(stmt.add_columns(Account.username, Source.name).join(Account, Account.id == Label.author_id)
                           .join(Source, Source.id == Label.source_id)).all()
    return [label_public(label, username, source) for label, username, source in rows]


def get_label(session: Session, label_id: int) -> dict | None:
    found = _labels_with_authors(session, select(Label).where(Label.id == label_id))
    return found[0] if found else None


def feature_labels(session: Session, source_id: int, index: int, account_id: int | None) -> list[dict]:
    """Labels of one feature, canonical first (see canonical_order), each with `my_vote` for the account."""
    stmt = (select(Label).where(Label.source_id == source_id, Label.feature_index == index)
            .order_by(*canonical_order()))
    labels = _labels_with_authors(session, stmt)
    votes: dict[int, list[dict]] = {}
    if labels:
        rows = session.execute(select(Vote.label_id, Vote.account_id, Vote.value, Account.username)
                               .join(Account, Account.id == Vote.account_id)
                               .where(Vote.label_id.in_([lab["id"] for lab in labels]))
                               .order_by(Vote.label_id, Account.username)).all()
        for label_id, voter_id, value, username in rows:
            votes.setdefault(label_id, []).append({"account": username, "account_id": voter_id, "value": value})
    for lab in labels:
        lab["votes"] = votes.get(lab["id"], [])
        lab["my_vote"] = next((x["value"] for x in lab["votes"] if x["account_id"] == account_id), 0)
    return labels


def canonical_labels(session: Session, source_id: int, indices=None) -> dict[int, str]:
    """{feature index: text of its canonical label} for the features of `indices` (all when None) that have one.

    Canonical: see canonical_order. One indexed query per 5000 indices."""
    order = (Label.feature_index, *canonical_order())
    base = select(Label.feature_index, Label.text).where(Label.source_id == source_id).order_by(*order)
    if indices is None:
        batches = [session.execute(base).all()]
    else:
        wanted = sorted({int(i) for i in indices})
        batches = [session.execute(base.where(Label.feature_index.in_(wanted[i:i + IN_CHUNK]))).all()
                   for i in range(0, len(wanted), IN_CHUNK)]
    out: dict[int, str] = {}
    for rows in batches:
        for index, label_text in rows:
            out.setdefault(index, label_text)
    return out


def insert_label(session: Session, source_id: int, index: int, author_id: int, text_: str, description: str,
                 tags: list[str], method: str, uid: str | None = None, created_at: datetime | None = None,
                 updated_at: datetime | None = None, version: int = 1) -> Label:
    now = created_at or utcnow()
    label = Label(uid=uid or str(uuid.uuid4()), source_id=source_id, feature_index=index, text=text_,
                  description=description, tags=tags, method=method, author_id=author_id, version=version, score=0,
                  created_at=now, updated_at=updated_at or now)
    session.add(label)
    session.flush()
    return label


def update_label_if_version(session: Session, label_id: int, base_version: int, editor_id: int, is_admin: bool,
                            text_: str, description: str, tags: list[str], now: datetime):
    """The one statement that decides a concurrent edit: succeeds only when the label is still at `base_version`
    (and the editor is its author, unless admin). Returns (source_id, feature_index) or None."""
    stmt = (update(Label).where(Label.id == label_id, Label.version == base_version)
            .values(text=text_, description=description, tags=tags, version=Label.version + 1, updated_at=now,
                    draft_score=None)
            .returning(Label.source_id, Label.feature_index))
    if not is_admin:
        stmt = stmt.where(Label.author_id == editor_id)
    return session.execute(stmt).first()


def insert_revision(session: Session, label_id: int, version: int, text_: str, description: str, tags: list[str],
                    author_id: int, created_at: datetime) -> None:
    session.add(LabelRevision(label_id=label_id, version=version, text=text_, description=description, tags=tags,
                              author_id=author_id, created_at=created_at))
    session.flush()


def label_revisions(session: Session, label_id: int) -> list[dict]:
    rows = session.execute(select(LabelRevision, Account.username).join(Account, Account.id == LabelRevision.author_id)
                           .where(LabelRevision.label_id == label_id).order_by(LabelRevision.version)).all()
    return [{"version": r.version, "text": r.text, "description": r.description, "tags": list(r.tags or []),
             "author": name, "created_at": _iso(r.created_at)} for r, name in rows]


def delete_label(session: Session, label_id: int) -> None:
    session.execute(delete(Label).where(Label.id == label_id))


def lock_label(session: Session, label_id: int) -> bool:
    """Take the label's write lock first thing in a transaction (row lock on PostgreSQL, the database write lock on
    SQLite), so reads that follow see every committed vote. False when the label does not exist."""
    return session.execute(update(Label).where(Label.id == label_id).values(score=Label.score)).rowcount == 1


# --- votes ----------------------------------------------------------------------------------------------------

def get_vote(session: Session, label_id: int, account_id: int) -> Vote | None:
    return session.scalar(select(Vote).where(Vote.label_id == label_id, Vote.account_id == account_id))


def set_vote(session: Session, label_id: int, account_id: int, value: int, now: datetime) -> int:
    """Set (value +-1) or clear (0) the account's vote; returns the change to the label's score. Call after
    lock_label in the same transaction."""
    current = get_vote(session, label_id, account_id)
    old = current.value if current else 0
    if value == 0 and current is not None:
        session.delete(current)
    elif value != 0 and current is None:
        session.add(Vote(label_id=label_id, account_id=account_id, value=value, created_at=now, updated_at=now))
    elif value != 0 and current.value != value:
        current.value, current.updated_at = value, now
    delta = value - old
    if delta:
        session.execute(update(Label).where(Label.id == label_id).values(score=Label.score + delta))
    session.flush()
    return delta


def label_votes(session: Session, label_ids: list[int]) -> dict[int, list[dict]]:
    out: dict[int, list[dict]] = {i: [] for i in label_ids}
    for i in range(0, len(label_ids), IN_CHUNK):
        rows = session.execute(select(Vote, Account.username).join(Account, Account.id == Vote.account_id)
                               .where(Vote.label_id.in_(label_ids[i:i + IN_CHUNK])).order_by(Vote.id)).all()
        for v, name in rows:
            out[v.label_id].append({"account": name, "value": v.value, "created_at": _iso(v.created_at),
                                    "updated_at": _iso(v.updated_at)})
    return out


# --- comments -------------------------------------------------------------------------------------------------

def insert_comment(session: Session, source_id: int, index: int, author_id: int, body: str) -> int:
    comment = Comment(source_id=source_id, feature_index=index, author_id=author_id, body=body, created_at=utcnow())
    session.add(comment)
    session.flush()
    return comment.id


def feature_comments(session: Session, source_id: int, index: int) -> list[dict]:
    rows = session.execute(select(Comment, Account.username).join(Account, Account.id == Comment.author_id)
                           .where(Comment.source_id == source_id, Comment.feature_index == index)
                           .order_by(Comment.created_at, Comment.id)).all()
    return [{"id": c.id, "body": c.body, "author": name, "author_id": c.author_id,
             "created_at": _iso(c.created_at)} for c, name in rows]


def get_comment(session: Session, comment_id: int) -> Comment | None:
    return session.get(Comment, comment_id)


def delete_comment(session: Session, comment_id: int) -> None:
    session.execute(delete(Comment).where(Comment.id == comment_id))


# --- feature lists --------------------------------------------------------------------------------------------

def create_list(session: Session, slug: str, source_id: int, owner_id: int, name: str, notes: str) -> FeatureList:
    fl = FeatureList(slug=slug, source_id=source_id, owner_id=owner_id, name=name, notes=notes, created_at=utcnow())
    session.add(fl)
    session.flush()
    return fl


def get_list(session: Session, slug: str) -> FeatureList | None:
    return session.scalar(select(FeatureList).where(FeatureList.slug == slug))


def list_public(fl: FeatureList, owner: str, source_name: str) -> dict:
    return {"slug": fl.slug, "name": fl.name, "notes": fl.notes, "owner": owner, "owner_id": fl.owner_id,
            "source": source_name, "source_id": fl.source_id, "created_at": _iso(fl.created_at)}


def lists_overview(session: Session, owner_id: int | None = None) -> list[dict]:
    stmt = (select(FeatureList, Account.username, Source.name).join(Account, Account.id == FeatureList.owner_id)
            .join(Source, Source.id == FeatureList.source_id).order_by(FeatureList.created_at.desc()))
    if owner_id is not None:
        stmt = stmt.where(FeatureList.owner_id == owner_id)
    return [list_public(fl, owner, source) for fl, owner, source in session.execute(stmt).all()]


def list_items(session: Session, list_id: int) -> list[dict]:
    rows = session.scalars(select(FeatureListItem).where(FeatureListItem.list_id == list_id)
                           .order_by(FeatureListItem.added_at, FeatureListItem.feature_index))
    return [{"index": it.feature_index, "note": it.note, "added_at": _iso(it.added_at)} for it in rows]


def upsert_list_item(session: Session, list_id: int, index: int, note: str) -> None:
    item = session.get(FeatureListItem, (list_id, index))
    if item is None:
        session.add(FeatureListItem(list_id=list_id, feature_index=index, note=note, added_at=utcnow()))
    else:
        item.note = note
    session.flush()


def delete_list_item(session: Session, list_id: int, index: int) -> None:
    session.execute(delete(FeatureListItem).where(FeatureListItem.list_id == list_id,
                                                  FeatureListItem.feature_index == index))


def delete_list(session: Session, list_id: int) -> None:
    session.execute(delete(FeatureList).where(FeatureList.id == list_id))


# --- labeling flow --------------------------------------------------------------------------------------------

def next_unlabeled(session: Session, source_id: int, after: int = -1, min_density: float | None = None,
                   max_density: float | None = None, list_id: int | None = None,
                   assigned_to: int | None = None) -> int | None:
    """The lowest alive feature index above `after` with no human label and no upvoted label (machine drafts alone
    do not count), optionally within a density range or a list. With `assigned_to`: the
    features assigned to that account that it has not decided yet (labeled or voted on), whoever else did."""
    from app.store.team import decided_by, is_assigned

    if assigned_to is not None:
        undecided = and_(is_assigned(assigned_to), ~decided_by(assigned_to))
    else:
        undecided = ~exists().where(Label.source_id == Feature.source_id, Label.feature_index == Feature.index,
                                    or_(Label.method == "human", Label.score > 0))
    # dead features have nothing to label: no examples (their logits remain on the feature page)
    stmt = select(Feature.index).where(Feature.source_id == source_id, Feature.index > after, Feature.n_active > 0,
                                       undecided)
    if min_density is not None:
        stmt = stmt.where(Feature.density >= min_density)
    if max_density is not None:
        stmt = stmt.where(Feature.density <= max_density)
    if list_id is not None:
        stmt = stmt.where(exists().where(FeatureListItem.list_id == list_id,
                                         FeatureListItem.feature_index == Feature.index))
    return session.scalar(stmt.order_by(Feature.index).limit(1))


def label_counts(session: Session, source_id: int) -> dict:
    n_features = session.scalar(select(func.count()).select_from(Feature).where(Feature.source_id == source_id))
    n_labeled = session.scalar(select(func.count(func.distinct(Label.feature_index))).where(
        Label.source_id == source_id, or_(Label.method == "human", Label.score > 0)))
    return {"features": n_features or 0, "labeled": n_labeled or 0}


# --- activity -------------------------------------------------------------------------------------------------

def add_activity(session: Session, source_id: int, account_id: int, kind: str, summary: str,
                 feature_index: int | None = None, label_id: int | None = None) -> None:
    session.add(Activity(source_id=source_id, account_id=account_id, kind=kind, feature_index=feature_index,
                         label_id=label_id, summary=summary[:300], created_at=utcnow()))


def source_activity(session: Session, source_id: int, limit: int = 50, before_id: int | None = None) -> list[dict]:
    stmt = (select(Activity, Account.username).join(Account, Account.id == Activity.account_id)
            .where(Activity.source_id == source_id).order_by(Activity.id.desc()).limit(limit))
    if before_id is not None:
        stmt = stmt.where(Activity.id < before_id)
    return [{"id": a.id, "kind": a.kind, "account": name, "feature_index": a.feature_index, "label_id": a.label_id,
             "summary": a.summary, "created_at": _iso(a.created_at)} for a, name in session.execute(stmt).all()]


# --- full-text search -----------------------------------------------------------------------------------------

TS_EXPR = "to_tsvector('english', label.text || ' ' || coalesce(label.description, ''))"


def _fts5_query(q: str) -> str:
    """User text -> an FTS5 query of quoted terms (all must match, the last as a prefix); never a syntax error."""
    terms = re.findall(r"\w+", q)
    return " ".join(f'"{t}"' for t in terms[:-1]) + (f' "{terms[-1]}"*' if terms else "")


def search_labels(session: Session, q: str, source_id: int | None = None, limit: int = 50) -> list[dict]:
    """Labels whose text or description match `q`, best match first, with their source's name."""
    dialect = session.get_bind().dialect.name
    if dialect == "sqlite":
        match = _fts5_query(q)
        if not match:
            return []
        ids_sql = "SELECT rowid FROM label_fts WHERE label_fts MATCH :q ORDER BY rank LIMIT :n"
        ranked = [r[0] for r in session.execute(text(ids_sql), {"q": match, "n": limit * 4})]
    elif dialect == "postgresql":
        ids_sql = (f"SELECT id FROM label WHERE {TS_EXPR} @@ plainto_tsquery('english', :q) "
                   f"ORDER BY ts_rank({TS_EXPR}, plainto_tsquery('english', :q)) DESC LIMIT :n")
        ranked = [r[0] for r in session.execute(text(ids_sql), {"q": q, "n": limit * 4})]
    else:  # other backends: a plain substring match
        like = f"%{q}%"
        ranked = list(session.scalars(select(Label.id).where(or_(Label.text.ilike(like), Label.description.ilike(like)))
                                      .limit(limit * 4)))
    if not ranked:
        return []
    stmt = select(Label).where(Label.id.in_(ranked))
    if source_id is not None:
        stmt = stmt.where(Label.source_id == source_id)
    found = {lab["id"]: lab for lab in _labels_with_authors(session, stmt)}
    return [found[label_id] for label_id in ranked if label_id in found][:limit]


# --- export / import ------------------------------------------------------------------------------------------

def labels_for_export(session: Session, source_id: int | None = None):
    """(label, author username, source name) rows, oldest first, streamed."""
    stmt = (select(Label, Account.username, Source.name).join(Account, Account.id == Label.author_id)
            .join(Source, Source.id == Label.source_id).order_by(Label.id))
    if source_id is not None:
        stmt = stmt.where(Label.source_id == source_id)
    return session.execute(stmt.execution_options(yield_per=1000))


def label_ids_by_uid(session: Session, uids: list[str]) -> dict[str, int]:
    out = {}
    for i in range(0, len(uids), IN_CHUNK):
        out.update(session.execute(select(Label.uid, Label.id).where(Label.uid.in_(uids[i:i + IN_CHUNK]))).all())
    return out


def existing_revision_versions(session: Session, label_id: int) -> set[int]:
    return set(session.scalars(select(LabelRevision.version).where(LabelRevision.label_id == label_id)))


def existing_voters(session: Session, label_id: int) -> set[int]:
    return set(session.scalars(select(Vote.account_id).where(Vote.label_id == label_id)))


def insert_vote_row(session: Session, label_id: int, account_id: int, value: int, created_at, updated_at) -> None:
    session.add(Vote(label_id=label_id, account_id=account_id, value=value, created_at=created_at,
                     updated_at=updated_at))
    session.execute(update(Label).where(Label.id == label_id).values(score=Label.score + value))


def features_present(session: Session, source_id: int, indices: set[int]) -> set[int]:
    wanted = sorted(indices)
    out: set[int] = set()
    for i in range(0, len(wanted), IN_CHUNK):
        out.update(session.scalars(select(Feature.index).where(
            and_(Feature.source_id == source_id, Feature.index.in_(wanted[i:i + IN_CHUNK])))))
    return out
