"""SQL for steering (issue 6): the sources and feature scales the form needs, and steer_run rows.

No HTTP, no templates, no torch.
"""

from __future__ import annotations

import secrets
from datetime import datetime, timezone

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from app.store.models import Feature, Source, SteerRun

RUN_ID_BYTES = 8  # token_urlsafe(8): 11 characters, not guessable from other runs' links




def feature_max_acts(session: Session, pairs: list[tuple[str, int]]) -> dict[tuple[str, int], float]:
    """{(source name, index): max_act} for the pairs that have a precomputed feature row."""
    out: dict[tuple[str, int], float] = {}
    for name, index in set(pairs):
        row = session.execute(
            select(Feature.max_act).join(Source, Source.id == Feature.source_id)
            .where(Source.name == name, Feature.index == index)
        ).first()
        if row is not None:
            out[(name, index)] = float(row[0])
    return out


def run_public(run: SteerRun) -> dict:
    return {
        "id": run.id, "status": run.status, "model_name": run.model_name, "prompt": run.prompt,
        "method": run.method, "features": run.features, "seed": run.seed, **run.params,
        "default_text": run.default_text, "steered_text": run.steered_text, "result": run.result,
        "error": run.error, "account_id": run.account_id,
        "created_at": run.created_at.isoformat() if run.created_at else None,
        "completed_at": run.completed_at.isoformat() if run.completed_at else None,
    }


def get_run(session: Session, run_id: str) -> SteerRun | None:
    return session.get(SteerRun, run_id)


def run_by_key(session: Session, request_key: str) -> SteerRun | None:
    return session.scalars(select(SteerRun).where(SteerRun.request_key == request_key)).first()


def create_run(session: Session, *, request_key: str, model_name: str, prompt: str, method: str, features: list,
               params: dict, seed: int, account_id: int | None) -> tuple[SteerRun, bool]:
    """(run, created). An identical request (same key) returns the existing row, also under a concurrent insert."""
    existing = run_by_key(session, request_key)
    if existing is not None:
        return existing, False
    run = SteerRun(id=secrets.token_urlsafe(RUN_ID_BYTES), request_key=request_key, model_name=model_name,
                   prompt=prompt, method=method, features=features, params=params, seed=seed,
                   status="pending", account_id=account_id)
    session.add(run)
    try:
        session.commit()
    except IntegrityError:
        session.rollback()
        existing = run_by_key(session, request_key)
        if existing is None:
            raise
        return existing, False
    return run, True


def complete_run(session: Session, run_id: str, *, default_text: str, steered_text: str, result: dict) -> SteerRun:
    run = session.get(SteerRun, run_id)
    run.status, run.default_text, run.steered_text, run.result = "complete", default_text, steered_text, result
    run.error, run.completed_at = None, datetime.now(timezone.utc)
    session.commit()
    return run


def fail_run(session: Session, run_id: str, error: str) -> None:
    run = session.get(SteerRun, run_id)
    if run is not None:
        run.status, run.error = "failed", error[:2000]
        session.commit()


def recent_runs(session: Session, model_name: str | None, limit: int = 10) -> list[dict]:
    query = select(SteerRun).where(SteerRun.status == "complete").order_by(SteerRun.created_at.desc()).limit(limit)
    if model_name is not None:
        query = query.where(SteerRun.model_name == model_name)
    return [{"id": r.id, "prompt": r.prompt, "method": r.method, "features": r.features,
             "created_at": r.created_at.isoformat()} for r in session.scalars(query)]
