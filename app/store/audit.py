"""SQL for the audit log of admin actions. No HTTP, no templates."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session, aliased

from app.store.accounts import as_utc
from app.store.models import Account, AuditEvent, utcnow


def add_event(session: Session, actor_id: int | None, action: str, summary: str,
              target_account_id: int | None = None, detail: dict | None = None) -> None:
    """Queue one event in the caller's transaction: it is written with the action it records, or not at all."""
    session.add(AuditEvent(created_at=utcnow(), actor_id=actor_id, action=action, summary=summary[:300],
                           target_account_id=target_account_id, detail=detail or {}))


def list_events(session: Session, limit: int, before: int | None = None) -> list[dict]:
    """Newest first; ``before`` is the id of the last event of the previous page."""
    actor, target = aliased(Account), aliased(Account)
    stmt = (select(AuditEvent, actor.username, target.username)
            .outerjoin(actor, actor.id == AuditEvent.actor_id)
            .outerjoin(target, target.id == AuditEvent.target_account_id)
            .order_by(AuditEvent.id.desc()).limit(limit))
    if before is not None:
        stmt = stmt.where(AuditEvent.id < before)
    return [{"id": e.id, "created_at": as_utc(e.created_at).isoformat(), "action": e.action, "summary": e.summary,
             "actor_id": e.actor_id, "actor": actor_name, "target_account_id": e.target_account_id,
             "target": target_name, "detail": e.detail or {}}
            for e, actor_name, target_name in session.execute(stmt)]
