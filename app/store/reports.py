"""SQL for steering report cards (steer_report rows). No HTTP, no torch."""

from __future__ import annotations

import secrets

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from app.store.models import SteerReport

REPORT_ID_BYTES = 8


def report_public(row: SteerReport) -> dict:
    return {"id": row.id, "model_name": row.model_name, "request": row.request, "result": row.result,
            "account_id": row.account_id, "created_at": row.created_at.isoformat()}


def get_report(session: Session, report_id: str) -> dict | None:
    row = session.get(SteerReport, report_id)
    return report_public(row) if row is not None else None


def report_by_key(session: Session, request_key: str) -> dict | None:
    row = session.scalars(select(SteerReport).where(SteerReport.request_key == request_key)).first()
    return report_public(row) if row is not None else None


def save_report(session: Session, *, request_key: str, model_name: str, request: dict, result: dict,
                account_id: int | None) -> dict:
    """Insert the report; an identical one saved meanwhile (same key) is returned instead."""
    row = SteerReport(id=secrets.token_urlsafe(REPORT_ID_BYTES), request_key=request_key, model_name=model_name,
                      request=request, result=result, account_id=account_id)
    session.add(row)
    try:
        session.commit()
    except IntegrityError:
        session.rollback()
        found = report_by_key(session, request_key)
        if found is None:
            raise
        return found
    return report_public(row)


def recent_reports(session: Session, limit: int = 10) -> list[dict]:
    rows = session.scalars(select(SteerReport).order_by(SteerReport.created_at.desc()).limit(limit))
    return [{"id": r.id, "features": r.request.get("features", []), "method": r.request.get("method"),
             "created_at": r.created_at.isoformat()} for r in rows]
