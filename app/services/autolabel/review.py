"""Data behind the autolabel pages, one dict per page for both its template and its JSON twin, and the review
writes. Label rows, votes and revisions go through app/labels/service.py (the labels capability's rules apply).

Review of a machine draft (a label with method auto:<name> that nobody has voted on):
- accept: the reviewer upvotes it. An upvoted label counts as labeled everywhere (labels capability rule:
  method 'human' or score > 0) and ranks above unvoted labels, so it becomes the feature's human-endorsed label.
- edit:   the reviewer's text becomes a new *human* label (description names the draft it came from), and the
  draft is downvoted so it leaves the queue and ranks below.
- reject: the reviewer downvotes it; it leaves the queue and ranks below every other label.
"""

from __future__ import annotations

from sqlalchemy.orm import Session

from app.errors import Invalid, NotFound
from app.services import labels as svc
from app.services.actor import Actor, actor_public
from app.store import autolabel as q
from app.store import labels as ql
from app.store import sources as qs

ACTIONS = ("accept", "edit", "reject")
REVIEW_EXAMPLES = 3  # top examples shown with each draft
PER_PAGE = 25
DEFAULT_THRESHOLDS = {"embedding": 0.65, "detection": 0.65, "fuzzing": 0.65}


def _source(session: Session, ref: str):
    source = qs.source_by_ref(session, ref)
    if source is None:
        raise NotFound(f"No source named {ref!r}.")
    return source


def _label_dict(session: Session, label) -> dict:
    return {"id": label.id, "feature_index": label.feature_index, "text": label.text,
            "description": label.description, "method": label.method, "version": label.version,
            "score": label.score, "created_at": label.created_at.isoformat() if label.created_at else None}


def review_queue_data(session: Session, actor: Actor | None, source_ref: str, page: int = 1) -> dict:
    source = _source(session, source_ref)
    page = max(1, int(page))
    rows, total = q.pending_drafts(session, source.id, PER_PAGE, (page - 1) * PER_PAGE)
    drafts = svc.with_scores(session, [_label_dict(session, r) for r in rows])
    evidence: dict[int, dict] = {}
    for d in drafts:  # the evidence beside each decision: the top examples, ±5 tokens around the peak
        index = d["feature_index"]
        if index not in evidence:
            full, _ = svc.labeling_evidence(session, source.name, index, "5")
            top = next((g for g in full["groups"] if g.kind == "top"), None)
            evidence[index] = {"max_act": full["max_act"], "examples": top.examples[:REVIEW_EXAMPLES] if top else []}
        d["evidence"] = evidence[index]
    return {"source": {"id": source.id, "name": source.name}, "drafts": drafts, "total": total, "page": page,
            "pages": max(1, -(-total // PER_PAGE)), "account": actor_public(actor),
            "can_write": bool(actor and actor.can_write)}


def review_draft(session: Session, actor: Actor, label_id: int, action: str, text: str = "") -> dict:
    """Apply a reviewer's decision to a machine draft; returns {"action", "draft", "label"?}."""
    if action not in ACTIONS:
        raise Invalid(f"review action {action!r} is not one of {', '.join(ACTIONS)}.")
    draft = ql.get_label(session, label_id)
    if draft is None:
        raise NotFound(f"Label {label_id} does not exist.")
    if not draft["method"].startswith(ql.AUTO_PREFIX):
        raise Invalid(f"Label {label_id} is a {draft['method']} label, not a machine draft (auto:...).")
    source = qs.source_by_ref(session, str(draft["source_id"]))
    out: dict = {"action": action}
    if action == "edit":
        if not (text or "").strip():
            raise Invalid("edit needs the new label text; type at least one visible character.")
        out["label"] = svc.create_label(session, actor, source.name, draft["feature_index"], text,
                                        f"Edited from machine draft #{label_id} ({draft['method']}): {draft['text']}",
                                        [], "human")
    out["draft"] = svc.vote(session, actor, label_id, 1 if action == "accept" else -1)
    return out


def needs_review_data(session: Session, actor: Actor | None, source_ref: str, method: str = "embedding",
                      threshold: float | None = None) -> dict:
    """Labels whose newest score of `method` is below `threshold`, worst first."""
    if method not in DEFAULT_THRESHOLDS:
        raise Invalid(f"method {method!r} is not one of {', '.join(DEFAULT_THRESHOLDS)}.")
    threshold = DEFAULT_THRESHOLDS[method] if threshold is None else float(threshold)
    if not 0 <= threshold <= 1:
        raise Invalid(f"threshold {threshold} is outside 0..1.")
    source = _source(session, source_ref)
    rows = q.low_scoring_labels(session, source.id, method, threshold)
    labels = svc.with_scores(session, [_label_dict(session, label) for label, _ in rows])
    return {"source": {"id": source.id, "name": source.name}, "method": method, "threshold": threshold,
            "methods": list(DEFAULT_THRESHOLDS), "labels": labels, "account": actor_public(actor)}


def feature_scores_data(session: Session, actor: Actor | None, source_ref: str, index: int) -> dict:
    """Every label of one feature with its newest score per method, per-example details included."""
    source = svc.resolve_feature(session, source_ref, index)
    labels = [_label_dict(session, r) for r in q.feature_label_rows(session, source.id, [index])]
    scores = q.latest_scores(session, [lab["id"] for lab in labels], with_details=True)
    for lab in labels:
        lab["scores"] = scores.get(lab["id"], {})
    labels.sort(key=lambda lab: (-lab["score"], lab["method"] != "human", lab["id"]))
    return {"source": {"id": source.id, "name": source.name}, "feature": {"index": index}, "labels": labels,
            "account": actor_public(actor)}


def semantic_search_data(session: Session, actor: Actor | None, source_ref: str, query: str,
                         limit: int = 20) -> dict:
    """Labels of a source nearest in meaning to `query` (cosine of all-MiniLM-L6-v2 embeddings)."""
    from app.ml import embed

    source = _source(session, source_ref)
    query = (query or "").strip()[:500]
    out = {"source": {"id": source.id, "name": source.name}, "q": query, "results": [],
           "unavailable": embed.available(), "account": actor_public(actor)}
    if not query or out["unavailable"]:
        return out
    rows = q.all_label_texts(session, source.id)
    if not rows:
        return out
    vectors = embed.get_embedder().embed([query] + [r[4] for r in rows])
    sims = vectors[1:] @ vectors[0]
    best = sorted(range(len(rows)), key=lambda i: -float(sims[i]))[:limit]
    out["results"] = [{"id": rows[i][0], "feature_index": rows[i][2], "method": rows[i][3], "text": rows[i][4],
                       "similarity": round(float(sims[i]), 4)} for i in best]
    return out
