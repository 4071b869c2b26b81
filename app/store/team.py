"""Labeling as a team: who was given which features (assignments), each person's progress on a source, and the
opinions people hold on a feature's labels (the raw material of the "needs a second opinion" queue)."""

from __future__ import annotations

from sqlalchemy import and_, delete, exists, func, or_, select
from sqlalchemy.orm import Session

from app.store.engine import IN_CHUNK
from app.store.models import Account, Assignment, Feature, Label, Vote, utcnow


def decided_by(account_id: int):
    """EXISTS over the enclosing Feature row: the account wrote a label of it or voted on one of its labels."""
    wrote = exists().where(Label.source_id == Feature.source_id, Label.feature_index == Feature.index,
                           Label.author_id == account_id, Label.method == "human")
    voted = exists().where(Label.source_id == Feature.source_id, Label.feature_index == Feature.index,
                           Vote.label_id == Label.id, Vote.account_id == account_id)
    return or_(wrote, voted)


def is_assigned(account_id: int):
    return exists().where(Assignment.source_id == Feature.source_id, Assignment.feature_index == Feature.index,
                          Assignment.account_id == account_id)


def existing_indices(session: Session, source_id: int, indices: list[int]) -> list[int]:
    """The given indices that are stored features of the source, ascending."""
    wanted = sorted({int(i) for i in indices})
    out: list[int] = []
    for i in range(0, len(wanted), IN_CHUNK):
        out += session.scalars(select(Feature.index).where(Feature.source_id == source_id,
                                                           Feature.index.in_(wanted[i:i + IN_CHUNK]))).all()
    return sorted(out)


def assign(session: Session, source_id: int, indices: list[int], account_id: int, by: int | None) -> int:
    """Give the features to the account (already given ones are kept as they are); returns how many are new."""
    have = set()
    for i in range(0, len(indices), IN_CHUNK):
        have |= set(session.scalars(select(Assignment.feature_index).where(
            Assignment.source_id == source_id, Assignment.account_id == account_id,
            Assignment.feature_index.in_(indices[i:i + IN_CHUNK]))))
    now = utcnow()
    new = [i for i in indices if i not in have]
    session.add_all([Assignment(source_id=source_id, feature_index=i, account_id=account_id, assigned_by=by,
                                created_at=now) for i in new])
    session.flush()
    return len(new)


def unassign(session: Session, source_id: int, account_id: int, indices: list[int] | None = None) -> int:
    stmt = delete(Assignment).where(Assignment.source_id == source_id, Assignment.account_id == account_id)
    if indices is not None:
        stmt = stmt.where(Assignment.feature_index.in_(indices))
    return session.execute(stmt).rowcount or 0


def assignments(session: Session, source_id: int | None = None) -> list[dict]:
    """Every assignment (of one source, or all) with usernames, for export and the progress panel."""
    assigner = Account.__table__.alias("assigner")
    stmt = (select(Assignment, Account.username, assigner.c.username)
            .join(Account, Account.id == Assignment.account_id)
            .outerjoin(assigner, assigner.c.id == Assignment.assigned_by)
            .order_by(Assignment.source_id, Account.username, Assignment.feature_index))
    if source_id is not None:
        stmt = stmt.where(Assignment.source_id == source_id)
    return [{"source_id": a.source_id, "feature_index": a.feature_index, "account": user, "assigned_by": by,
             "created_at": a.created_at.isoformat() if a.created_at else None}
            for a, user, by in session.execute(stmt).all()]


def progress(session: Session, source_id: int) -> list[dict]:
    """Per person with any labeling work on the source: features they labeled, features they voted on, features
    they decided (either), features assigned to them and how many of those they decided. Busiest first."""
    people: dict[int, dict] = {}

    def row(account_id: int, username: str) -> dict:
        return people.setdefault(account_id, {"account": username, "labeled": 0, "voted": 0, "decided": 0,
                                              "assigned": 0, "assigned_done": 0})

    labeled = session.execute(
        select(Label.author_id, Account.username, func.count(func.distinct(Label.feature_index)))
        .join(Account, Account.id == Label.author_id)
        .where(Label.source_id == source_id, Label.method == "human").group_by(Label.author_id, Account.username))
    for account_id, username, n in labeled:
        row(account_id, username)["labeled"] = n
    voted = session.execute(
        select(Vote.account_id, Account.username, func.count(func.distinct(Label.feature_index)))
        .join(Label, Label.id == Vote.label_id).join(Account, Account.id == Vote.account_id)
        .where(Label.source_id == source_id).group_by(Vote.account_id, Account.username))
    for account_id, username, n in voted:
        row(account_id, username)["voted"] = n
    for account_id in list(people):
        people[account_id]["decided"] = session.scalar(
            select(func.count()).select_from(Feature).where(Feature.source_id == source_id, decided_by(account_id)))
    given = session.execute(
        select(Assignment.account_id, Account.username, func.count()).join(Account, Account.id == Assignment.account_id)
        .where(Assignment.source_id == source_id).group_by(Assignment.account_id, Account.username))
    for account_id, username, n in given:
        r = row(account_id, username)
        r["assigned"] = n
        r["assigned_done"] = session.scalar(
            select(func.count()).select_from(Feature).where(Feature.source_id == source_id, is_assigned(account_id),
                                                            decided_by(account_id)))
    return sorted(people.values(), key=lambda r: (-r["decided"], -r["assigned"], r["account"]))


def opinions(session: Session, source_id: int, indices: list[int] | None = None) -> list[dict]:
    """What people said about the source's labels: one row per label that a person wrote or voted on, with its
    text, its human author (None for a draft) and the votes ({account: value}). Machine drafts nobody voted on
    are left out: they are nobody's opinion yet."""
    human = Label.method == "human"
    voted = exists().where(Vote.label_id == Label.id)
    stmt = (select(Label.id, Label.feature_index, Label.text, Label.method, Account.username)
            .join(Account, Account.id == Label.author_id)
            .where(Label.source_id == source_id, or_(human, voted)).order_by(Label.feature_index, Label.id))
    if indices is not None:
        stmt = stmt.where(Label.feature_index.in_(list(indices)))
    labels = {lid: {"id": lid, "feature_index": index, "text": text_, "author": user if method == "human" else None,
                    "method": method, "votes": {}}
              for lid, index, text_, method, user in session.execute(stmt).all()}
    ids = list(labels)
    for i in range(0, len(ids), IN_CHUNK):
        rows = session.execute(select(Vote.label_id, Account.username, Vote.value)
                               .join(Account, Account.id == Vote.account_id)
                               .where(and_(Vote.label_id.in_(ids[i:i + IN_CHUNK])))).all()
        for label_id, username, value in rows:
            labels[label_id]["votes"][username] = value
    return list(labels.values())
