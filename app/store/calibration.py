"""SQL for calibrated steering strengths (steer_calibration rows). No HTTP, no torch."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from app.store.models import Source, SteerCalibration, utcnow


def calibration_public(row: SteerCalibration, source_name: str) -> dict:
    return {"source": source_name, "feature": row.feature_index, "method": row.method, "model_name": row.model_name,
            "budget": row.budget, "strength": row.strength, "created_at": row.created_at.isoformat(),
            **{k: v for k, v in row.result.items() if k not in ("feature", "method", "budget", "strength")}}


def get_calibrations(session: Session, pairs: list[tuple[str, int]], method: str = "additive") -> dict:
    """{(source name, index): public dict} for the pairs that have a stored calibration."""
    out = {}
    for name, index in set(pairs):
        found = session.execute(
            select(SteerCalibration).join(Source, Source.id == SteerCalibration.source_id)
            .where(Source.name == name, SteerCalibration.feature_index == index, SteerCalibration.method == method)
        ).scalars().first()
        if found is not None:
            out[(name, index)] = calibration_public(found, name)
    return out


def put_calibration(session: Session, source_name: str, index: int, *, method: str, model_name: str,
                    budget: float, strength: float | None, result: dict) -> dict:
    """Insert or replace the calibration of one feature; returns it as :func:`calibration_public`."""
    source = session.scalars(select(Source).where(Source.name == source_name)).one()
    row = session.get(SteerCalibration, (source.id, index, method))
    if row is None:
        row = SteerCalibration(source_id=source.id, feature_index=index, method=method)
        session.add(row)
    row.model_name, row.budget, row.strength, row.result = model_name, budget, strength, result
    row.created_at = utcnow()
    session.commit()
    return calibration_public(row, source_name)
