"""Every SQL read and write used by pages and the API. No HTTP, no templates, no torch."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from app.store.models import Source


def source_summary(s: Source) -> dict:
    return {
        "name": s.name, "model_name": s.model_name, "hook_name": s.hook_name, "architecture": s.architecture,
        "d_in": s.d_in, "d_sae": s.d_sae, "status": s.status, "n_tokens": s.n_tokens, "health": s.health or {},
        "corpus": s.corpus or {},
    }


def list_source_summaries(session: Session) -> list[dict]:
    return [source_summary(s) for s in session.scalars(select(Source).order_by(Source.id))]


def sae_paths(session: Session) -> tuple[str | None, dict[str, str]]:
    """(model name, {source name: SAE path}) over complete sources that share the first source's model."""
    rows = list(session.scalars(select(Source).where(Source.status == "complete").order_by(Source.id)))
    if not rows:
        return None, {}
    model = rows[0].model_name
    return model, {s.name: s.sae_path for s in rows if s.model_name == model}
