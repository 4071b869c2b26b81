"""SQL for sources: the one place that looks a source up (by name, by name-or-id) or lists them."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from app.store.models import Source


def source_by_name(session: Session, name: str) -> Source | None:
    return session.scalars(select(Source).where(Source.name == name)).first()


def source_by_ref(session: Session, ref: str) -> Source | None:
    """A source by name, or by numeric id when no source has that name."""
    found = source_by_name(session, ref)
    if found is None and ref.isdigit():
        found = session.get(Source, int(ref))
    return found


def source_names(session: Session) -> list[str]:
    return list(session.scalars(select(Source.name).order_by(Source.id)))


def list_sources(session: Session) -> list[Source]:
    return list(session.scalars(select(Source).order_by(Source.id)))


def source_summary(s: Source) -> dict:
    return {
        "id": s.id, "name": s.name, "model_name": s.model_name, "hook_name": s.hook_name,
        "architecture": s.architecture, "d_in": s.d_in, "d_sae": s.d_sae, "status": s.status,
        "n_tokens": s.n_tokens, "health": s.health or {}, "corpus": s.corpus or {}, "cfg": s.cfg or {},
    }


def list_source_summaries(session: Session) -> list[dict]:
    return [source_summary(s) for s in list_sources(session)]


def sae_paths(session: Session) -> tuple[str | None, dict[str, str]]:
    """(model name, {source name: SAE path}) over complete sources that share the first source's model."""
    rows = list(session.scalars(select(Source).where(Source.status == "complete").order_by(Source.id)))
    if not rows:
        return None, {}
    model = rows[0].model_name
    return model, {s.name: s.sae_path for s in rows if s.model_name == model}
