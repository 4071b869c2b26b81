"""Label logic: who may do what, validation, concurrency outcomes, and the data behind every label page.

Each page's data function returns one dict used both by its template and by its JSON twin.
Write functions commit their own transaction; the conditional UPDATE in queries decides concurrent edits.
"""

from __future__ import annotations

import difflib
import re
import secrets

from sqlalchemy.orm import Session

from app.errors import Conflict, Forbidden, Invalid, NotFound
from app.services import audit
from app.services import validate as v
from app.services.actor import Actor, actor_public
from app.store import autolabel as qa
from app.store import labels as q
from app.store import sources as qs
from app.store.models import utcnow


def resolve_source(session: Session, ref: str):
    source = qs.source_by_ref(session, ref)
    if source is None:
        raise NotFound(f"No source named {ref!r}.")
    return source


def resolve_feature(session: Session, ref: str, index: int):
    source = resolve_source(session, ref)
    if not q.feature_exists(session, source.id, index):
        raise NotFound(f"Source {source.name!r} has no feature {index} (features 0..{source.d_sae - 1}).")
    return source


def _may_change(actor: Actor, author_id: int) -> bool:
    return actor.is_admin or actor.id == author_id


# --- labels ---------------------------------------------------------------------------------------------------

def create_label(session: Session, actor: Actor, source_ref: str, index: int, text: str, description: str = "",
                 tags=None, method: str | None = "human") -> dict:
    source = resolve_feature(session, source_ref, index)
    text = v.text_field(text, "label text", v.MAX_LABEL, required=True)
    description = v.text_field(description, "description", v.MAX_DESCRIPTION)
    tags, method = v.tags_field(tags), v.method_field(method)
    label = q.insert_label(session, source.id, index, actor.id, text, description, tags, method)
    q.insert_revision(session, label.id, 1, text, description, tags, actor.id, label.created_at)
    q.add_activity(session, source.id, actor.id, "label_created", text, index, label.id)
    session.commit()
    return q.get_label(session, label.id)


def edit_label(session: Session, actor: Actor, label_id: int, base_version: int, text: str, description: str = "",
               tags=None) -> dict:
    """Apply an edit made on `base_version`. Raises Conflict (409) when someone saved first, with both texts."""
    text = v.text_field(text, "label text", v.MAX_LABEL, required=True)
    description = v.text_field(description, "description", v.MAX_DESCRIPTION)
    tags = v.tags_field(tags)
    now = utcnow()
    won = q.update_label_if_version(session, label_id, base_version, actor.id, actor.is_admin, text, description,
                                    tags, now)
    if won is not None:
        q.insert_revision(session, label_id, base_version + 1, text, description, tags, actor.id, now)
        q.add_activity(session, won.source_id, actor.id, "label_edited", text, won.feature_index, label_id)
        session.commit()
        return q.get_label(session, label_id)
    session.rollback()
    current = q.get_label(session, label_id)
    if current is None:
        raise NotFound(f"Label {label_id} does not exist (deleted?).")
    if not _may_change(actor, current["author_id"]):
        raise Forbidden(f"Only the author ({current['author']}) or an admin can edit label {label_id}.")
    conflict = Conflict(f"Label {label_id} was changed to version {current['version']} while you edited version "
                        f"{base_version}; your text is kept below.", current=current,
                        yours={"text": text, "description": description, "tags": tags, "base_version": base_version})
    conflict.page = label_detail_data(session, actor, label_id)  # the editor again, with both texts
    raise conflict


def delete_label(session: Session, actor: Actor, label_id: int) -> dict:
    label = q.get_label(session, label_id)
    if label is None:
        raise NotFound(f"Label {label_id} does not exist.")
    if not _may_change(actor, label["author_id"]):
        raise Forbidden(f"Only the author ({label['author']}) or an admin can delete label {label_id}.")
    q.delete_label(session, label_id)
    q.add_activity(session, label["source_id"], actor.id, "label_deleted", label["text"], label["feature_index"],
                   label_id)
    audit.record_if_others(session, actor, label["author_id"], "label_deleted",
                           f"label {label_id} of feature {label['feature_index']}: {label['text'][:200]}",
                           {"label_id": label_id, "source_id": label["source_id"],
                            "feature_index": label["feature_index"], "text": label["text"]})
    session.commit()
    return label


def vote(session: Session, actor: Actor, label_id: int, value) -> dict:
    value = v.vote_field(value)
    if not q.lock_label(session, label_id):
        session.rollback()
        raise NotFound(f"Label {label_id} does not exist.")
    delta = q.set_vote(session, label_id, actor.id, value, utcnow())
    label = q.get_label(session, label_id)
    if delta:
        kind = {1: "voted_up", -1: "voted_down", 0: "vote_cleared"}[value]
        q.add_activity(session, label["source_id"], actor.id, kind, label["text"], label["feature_index"], label_id)
    session.commit()
    return {**label, "my_vote": value}


# --- comments -------------------------------------------------------------------------------------------------

def add_comment(session: Session, actor: Actor, source_ref: str, index: int, body: str) -> dict:
    source = resolve_feature(session, source_ref, index)
    body = v.text_field(body, "comment", v.MAX_COMMENT, required=True)
    comment_id = q.insert_comment(session, source.id, index, actor.id, body)
    q.add_activity(session, source.id, actor.id, "commented", body, index)
    session.commit()
    return {"id": comment_id, "body": body, "author": actor.username}


def delete_comment(session: Session, actor: Actor, comment_id: int) -> None:
    comment = q.get_comment(session, comment_id)
    if comment is None:
        raise NotFound(f"Comment {comment_id} does not exist.")
    if not _may_change(actor, comment.author_id):
        raise Forbidden("Only the comment's author or an admin can delete it.")
    detail = {"comment_id": comment_id, "source_id": comment.source_id, "feature_index": comment.feature_index,
              "body": comment.body}
    author_id = comment.author_id
    q.delete_comment(session, comment_id)
    audit.record_if_others(session, actor, author_id, "comment_deleted",
                           f"comment {comment_id} on feature {detail['feature_index']}: {detail['body'][:200]}", detail)
    session.commit()


# --- lists ----------------------------------------------------------------------------------------------------

def create_list(session: Session, actor: Actor, source_ref: str, name: str, notes: str = "") -> dict:
    source = resolve_source(session, source_ref)
    name = v.text_field(name, "list name", v.MAX_LIST_NAME, required=True)
    notes = v.text_field(notes, "notes", v.MAX_NOTES)
    fl = q.create_list(session, secrets.token_urlsafe(9), source.id, actor.id, name, notes)
    q.add_activity(session, source.id, actor.id, "list_created", name)
    session.commit()
    return q.list_public(fl, actor.username, source.name)


def _own_list(session: Session, actor: Actor, slug: str):
    fl = q.get_list(session, slug)
    if fl is None:
        raise NotFound(f"No list {slug!r}.")
    if not _may_change(actor, fl.owner_id):
        raise Forbidden("Only the list's owner or an admin can change it.")
    return fl


def add_list_item(session: Session, actor: Actor, slug: str, index: int, note: str = "") -> None:
    fl = _own_list(session, actor, slug)
    if not q.feature_exists(session, fl.source_id, index):
        raise Invalid(f"feature {index} does not exist in this list's source.")
    q.upsert_list_item(session, fl.id, index, v.text_field(note, "note", v.MAX_NOTES))
    session.commit()


def remove_list_item(session: Session, actor: Actor, slug: str, index: int) -> None:
    fl = _own_list(session, actor, slug)
    name, owner_id = fl.name, fl.owner_id
    q.delete_list_item(session, fl.id, index)
    audit.record_if_others(session, actor, owner_id, "list_item_removed", f"feature {index} from list {name!r}",
                           {"slug": slug, "feature_index": index})
    session.commit()


def delete_list(session: Session, actor: Actor, slug: str) -> None:
    fl = _own_list(session, actor, slug)
    name, owner_id = fl.name, fl.owner_id
    q.delete_list(session, fl.id)
    audit.record_if_others(session, actor, owner_id, "list_deleted", f"list {name!r}", {"slug": slug, "name": name})
    session.commit()


# --- page data ------------------------------------------------------------------------------------------------

def with_scores(session: Session, labels: list[dict]) -> list[dict]:
    """Give each label dict `scores`: {method: newest score row}, failures included, in one query for all."""
    scores = qa.latest_scores(session, [lab["id"] for lab in labels]) if labels else {}
    for lab in labels:
        lab["scores"] = scores.get(lab["id"], {})
    return labels


def feature_labels_data(session: Session, actor: Actor | None, source_ref: str, index: int) -> dict:
    source = resolve_feature(session, source_ref, index)
    labels = with_scores(session, q.feature_labels(session, source.id, index, actor.id if actor else None))
    for lab in labels:
        lab["can_change"] = bool(actor and _may_change(actor, lab["author_id"]))
    return {"source": {"id": source.id, "name": source.name}, "feature": {"index": index}, "labels": labels,
            "canonical": labels[0] if labels else None,
            "comments": q.feature_comments(session, source.id, index), "account": actor_public(actor),
            "can_write": bool(actor and actor.can_write)}


_WORDS = re.compile(r"\s+|\w+|[^\w\s]")


def word_diff(old: str, new: str) -> list[dict]:
    """[{op: equal|insert|delete, text}] turning `old` into `new`, by words."""
    a, b = _WORDS.findall(old), _WORDS.findall(new)
    out = []
    for op, i1, i2, j1, j2 in difflib.SequenceMatcher(None, a, b, autojunk=False).get_opcodes():
        if op in ("equal", "delete", "replace") and i2 > i1:
            out.append({"op": "equal" if op == "equal" else "delete", "text": "".join(a[i1:i2])})
        if op in ("insert", "replace") and j2 > j1:
            out.append({"op": "insert", "text": "".join(b[j1:j2])})
    return out


def label_detail_data(session: Session, actor: Actor | None, label_id: int) -> dict:
    label = q.get_label(session, label_id)
    if label is None:
        raise NotFound(f"Label {label_id} does not exist.")
    revisions = q.label_revisions(session, label_id)
    previous = {"text": "", "description": "", "tags": []}
    for rev in revisions:
        rev["text_diff"] = word_diff(previous["text"], rev["text"])
        rev["description_diff"] = list(difflib.unified_diff(previous["description"].splitlines(),
                                                            rev["description"].splitlines(), lineterm="", n=1))[2:]
        rev["tags_added"] = [t for t in rev["tags"] if t not in previous["tags"]]
        rev["tags_removed"] = [t for t in previous["tags"] if t not in rev["tags"]]
        previous = rev
    source = qs.source_by_ref(session, str(label["source_id"]))
    my_vote = 0
    if actor:
        found = q.get_vote(session, label_id, actor.id)
        my_vote = found.value if found else 0
    label = with_scores(session, [{**label, "my_vote": my_vote}])[0]
    return {"label": label, "revisions": revisions[::-1],
            "source": {"id": source.id, "name": source.name}, "feature": {"index": label["feature_index"]},
            "account": actor_public(actor), "can_change": bool(actor and _may_change(actor, label["author_id"]))}


def activity_data(session: Session, actor: Actor | None, source_ref: str, before: int | None = None) -> dict:
    source = resolve_source(session, source_ref)
    events = q.source_activity(session, source.id, 50, before)
    return {"source": {"id": source.id, "name": source.name}, "events": events,
            "next_before": events[-1]["id"] if len(events) == 50 else None,
            "counts": q.label_counts(session, source.id), "account": actor_public(actor)}


def search_data(session: Session, actor: Actor | None, query: str, source_ref: str | None = None) -> dict:
    query = v.text_field(query, "search", 500)
    source = resolve_source(session, source_ref) if source_ref else None
    results = q.search_labels(session, query, source.id if source else None) if query.strip() else []
    return {"q": query, "source": source.name if source else None, "results": results,
            "sources": qs.source_names(session), "account": actor_public(actor)}


def lists_data(session: Session, actor: Actor | None) -> dict:
    return {"lists": q.lists_overview(session), "mine": q.lists_overview(session, actor.id) if actor else [],
            "sources": qs.source_names(session), "account": actor_public(actor)}


def list_data(session: Session, actor: Actor | None, slug: str) -> dict:
    fl = q.get_list(session, slug)
    if fl is None:
        raise NotFound(f"No list {slug!r}.")
    overview = next(item for item in q.lists_overview(session, fl.owner_id) if item["slug"] == slug)
    items = q.list_items(session, fl.id)
    canonical = q.canonical_labels(session, fl.source_id, [it["index"] for it in items])
    for it in items:
        it["label"] = canonical.get(it["index"])
    return {"list": overview, "items": items, "account": actor_public(actor),
            "can_change": bool(actor and _may_change(actor, fl.owner_id))}


def assignee(session: Session, actor: Actor | None, assigned: str | None) -> int | None:
    """The account id a flow's `assigned` names ("me" or a username), None when it names nobody."""
    if not assigned:
        return None
    if assigned == "me":
        if actor is None:
            raise Forbidden("Log in to label the features assigned to you.")
        return actor.id
    from app.store.accounts import get_account_by_username

    account = get_account_by_username(session, assigned)
    if account is None:
        raise NotFound(f"No account named {assigned!r}.")
    return account.id


def next_unlabeled_index(session: Session, source_ref: str, after: int = -1, min_density: float | None = None,
                         max_density: float | None = None, list_slug: str | None = None,
                         assigned_to: int | None = None) -> tuple[str, int | None]:
    source = resolve_source(session, source_ref)
    list_id = None
    if list_slug:
        fl = q.get_list(session, list_slug)
        if fl is None or fl.source_id != source.id:
            raise NotFound(f"No list {list_slug!r} on source {source.name!r}.")
        list_id = fl.id
    return source.name, q.next_unlabeled(session, source.id, after, min_density, max_density, list_id, assigned_to)


EVIDENCE_TOP = 8  # top examples beside the label form
EVIDENCE_PER_INTERVAL = 2  # and a sample of each interval bin


def labeling_evidence(session: Session, source_ref: str, index: int, context: str):
    """(evidence, the feature page's data it was cut from). What a labeler decides on, from the feature page's own data function: the top examples and a sample of each
    interval bin (shaded in the page, peak marked), the logit tables compact, and the key numbers."""
    from app.services.browse import feature_data

    page = feature_data(session, source_ref, index, context)
    groups = []
    for g in page.groups:
        keep = EVIDENCE_TOP if g.kind == "top" else EVIDENCE_PER_INTERVAL
        if g.examples:
            groups.append(g.model_copy(update={"examples": g.examples[:keep]}))
    return {"context": context, "max_act": page.max_act, "dead": page.dead, "groups": groups,
            "top_logits": page.top_logits[:8], "bottom_logits": page.bottom_logits[:5],
            "tokens_available": page.tokens_available, "output": page.output}, page


def labeling_data(session: Session, actor: Actor | None, source_ref: str, index: int, flow: dict,
                  context: str = "16") -> dict:
    data = feature_labels_data(session, actor, source_ref, index)
    data["evidence"], page = labeling_evidence(session, source_ref, index, context)
    data["stats"] = {"density": page.density, "max_act": page.max_act, "mean_act": page.mean_act,
                     "n_active": page.n_active}
    # the draft the `a` key accepts: the canonical machine draft (best-scoring among unvoted drafts)
    data["draft"] = next((lab for lab in data["labels"] if lab["method"] != "human"), None)
    data["flow"] = flow
    data["counts"] = q.label_counts(session, data["source"]["id"])
    return data
