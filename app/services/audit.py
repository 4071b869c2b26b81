"""The audit log: what admins did to others' accounts and content, and imports. Readable by admins only.

Services call :func:`record` inside the transaction of the action, so the event and the action commit together.
"""

from __future__ import annotations

from sqlalchemy.orm import Session

from app.errors import Forbidden
from app.services.actor import Actor
from app.store import audit as q

PAGE_SIZE = 50
ACTIONS = {
    "role_changed": "changed a role",
    "sessions_revoked": "ended someone's sessions",
    "label_deleted": "deleted another's label",
    "comment_deleted": "deleted another's comment",
    "list_deleted": "deleted another's list",
    "list_item_removed": "removed a feature from another's list",
    "labels_imported": "imported labels",
    "features_assigned": "assigned features to someone",
    "features_unassigned": "took features back from someone",
}


def record(session: Session, actor: Actor | None, action: str, summary: str, *,
           target_account_id: int | None = None, detail: dict | None = None) -> None:
    """``actor`` None: the console (a `featureboard` command run by the operator)."""
    assert action in ACTIONS, action
    q.add_event(session, actor.id if actor else None, action, summary, target_account_id, detail)


def record_if_others(session: Session, actor: Actor, owner_id: int, action: str, summary: str,
                     detail: dict | None = None) -> None:
    """Record an admin's change to content owned by someone else; a person's own changes are not audited."""
    if actor.is_admin and actor.id != owner_id:
        record(session, actor, action, summary, target_account_id=owner_id, detail=detail)


def audit_data(session: Session, actor: Actor, before: int | None = None) -> dict:
    if not actor.is_admin:
        raise Forbidden("Only admins read the audit log.")
    events = q.list_events(session, PAGE_SIZE, before)
    return {"account": actor.public(), "events": events, "actions": ACTIONS,
            "next_before": events[-1]["id"] if len(events) == PAGE_SIZE else None}
