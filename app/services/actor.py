"""Who is acting: an account with a role. Built by app/http/auth.py from a cookie or an API key; the services
decide what each role may do."""

from __future__ import annotations

from dataclasses import dataclass

from app.store.models import ROLES  # noqa: F401 - one list, the database checks it too


@dataclass(frozen=True)
class Actor:
    id: int
    username: str
    role: str

    @property
    def is_admin(self) -> bool:
        return self.role == "admin"

    @property
    def can_write(self) -> bool:
        return self.role in ("admin", "labeler")

    def public(self) -> dict:
        return {"id": self.id, "username": self.username, "role": self.role}


def actor_public(actor: Actor | None) -> dict | None:
    return actor.public() if actor else None
