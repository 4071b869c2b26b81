"""Labeling as a team: features where people disagree (the "needs a second opinion" queue), features assigned
to a person, and each person's progress on a source.

A person *backs* a label when they wrote it (method human) or voted it up, and *opposes* it when they voted it
down. A feature needs a second opinion when two different people back labels with different texts (compared
without case or outer spaces), or when one person backs a label that another opposes (split votes).
"""

from __future__ import annotations

from sqlalchemy.orm import Session

from app.errors import Forbidden, Invalid, NotFound
from app.services import audit
from app.services.actor import Actor, actor_public
from app.services.labels import resolve_source
from app.store import accounts as qa
from app.store import labels as ql
from app.store import team as q

MAX_ASSIGN = 100_000


def _norm(text: str) -> str:
    return " ".join(text.lower().split())


def disagreements(opinions: list[dict]) -> dict[int, dict]:
    """{feature index: {"reason", "labels": [...]}} for the features that need a second opinion (see module
    docstring); ``opinions`` are app.store.team.opinions rows. Each label gets `backers` and `opposers`."""
    by_feature: dict[int, list[dict]] = {}
    for lab in opinions:
        backers = sorted({lab["author"]} - {None} | {a for a, v in lab["votes"].items() if v > 0})
        opposers = sorted(a for a, v in lab["votes"].items() if v < 0)
        by_feature.setdefault(lab["feature_index"], []).append(
            {"id": lab["id"], "text": lab["text"], "method": lab["method"], "author": lab["author"],
             "backers": backers, "opposers": opposers})
    out: dict[int, dict] = {}
    for index, labels in by_feature.items():
        reasons = []
        backed = [(lab, set(lab["backers"])) for lab in labels if lab["backers"]]
        if any(_norm(a["text"]) != _norm(b["text"]) and (pa | pb) - (pa & pb)
               for k, (a, pa) in enumerate(backed) for b, pb in backed[k + 1:]):
            reasons.append("different labels")
        if any(set(lab["backers"]) - set(lab["opposers"]) and set(lab["opposers"]) - set(lab["backers"])
               for lab in labels):
            reasons.append("split votes")
        if reasons:
            out[index] = {"index": index, "reason": " and ".join(reasons), "labels": labels}
    return out


def second_opinion_data(session: Session, actor: Actor | None, source_ref: str) -> dict:
    """The queue page: every feature where people disagree, with the competing labels and who backs each."""
    source = resolve_source(session, source_ref)
    queue = disagreements(q.opinions(session, source.id))
    items = [queue[i] for i in sorted(queue)]
    canonical = ql.canonical_labels(session, source.id, [it["index"] for it in items]) if items else {}
    for it in items:
        it["label"] = canonical.get(it["index"])
        it["mine"] = bool(actor and any(actor.username in lab["backers"] + lab["opposers"] for lab in it["labels"]))
    return {"source": {"id": source.id, "name": source.name}, "items": items, "count": len(items),
            "account": actor_public(actor)}


def next_second_opinion(session: Session, actor: Actor | None, source_ref: str, after: int = -1
                        ) -> tuple[str, int | None]:
    """The next feature of the queue after `after` that the actor has not given an opinion on yet (a second
    opinion comes from someone else)."""
    data = second_opinion_data(session, actor, source_ref)
    index = next((it["index"] for it in data["items"] if it["index"] > after and not it["mine"]), None)
    return data["source"]["name"], index


def parse_indices(spec: str, d_sae: int) -> list[int]:
    """"0-99,120" -> [0, ..., 99, 120]; a clear error naming the bad part and the valid range otherwise."""
    out: set[int] = set()
    for part in (p.strip() for p in spec.split(",")):
        if not part:
            continue
        try:
            lo, hi = (int(x) for x in part.split("-", 1)) if "-" in part[1:] else (int(part), int(part))
        except ValueError:
            raise Invalid(f"features: {part!r} is not an index or a range like 0-99") from None
        if lo < 0 or hi >= d_sae or lo > hi:
            raise Invalid(f"features: {part!r} is outside 0-{d_sae - 1}")
        if hi - lo + len(out) >= MAX_ASSIGN:
            raise Invalid(f"features: at most {MAX_ASSIGN:,} at once")
        out.update(range(lo, hi + 1))
    if not out:
        raise Invalid("features: give indices or ranges, e.g. 0-99,120")
    return sorted(out)


def _admin_target(session: Session, actor: Actor, source_ref: str, username: str):
    """(source, account) of an assignment change; only admins assign features."""
    if not actor.is_admin:
        raise Forbidden("Only admins assign features.")
    source = resolve_source(session, source_ref)
    account = qa.get_account_by_username(session, username.strip())
    if account is None:
        raise NotFound(f"No account named {username.strip()!r}.")
    return source, account


def assign_features(session: Session, actor: Actor, source_ref: str, username: str, spec: str) -> dict:
    """Assign features (indices and ranges) of a source to a person; admins only. Recorded in the audit log."""
    source, account = _admin_target(session, actor, source_ref, username)
    indices = q.existing_indices(session, source.id, parse_indices(spec, source.d_sae))
    added = q.assign(session, source.id, indices, account.id, actor.id)
    audit.record(session, actor, "features_assigned",
                 f"assigned {added} features of {source.name} to {account.username}", target_account_id=account.id)
    session.commit()
    return {"source": source.name, "account": account.username, "assigned": added, "requested": len(indices)}


def unassign_features(session: Session, actor: Actor, source_ref: str, username: str) -> dict:
    source, account = _admin_target(session, actor, source_ref, username)
    removed = q.unassign(session, source.id, account.id)
    audit.record(session, actor, "features_unassigned",
                 f"took {removed} features of {source.name} from {account.username}", target_account_id=account.id)
    session.commit()
    return {"source": source.name, "account": account.username, "removed": removed}


def progress_data(session: Session, source_ref: str) -> dict:
    """Each person's progress on a source (app.store.team.progress) and the second-opinion queue's length."""
    source = resolve_source(session, source_ref)
    return {"people": q.progress(session, source.id),
            "second_opinion": len(disagreements(q.opinions(session, source.id)))}
