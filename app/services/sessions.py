"""Server-side login sessions: a cookie is good only while its row exists.

Why a session table rather than a per-account session version: logout must end *this* cookie and no other,
the account page lists the browsers logged in, and an admin can end one person's sessions; a version number
can only end all of them at once. The cost is the same single indexed lookup per request that finding the
account already took. The cookie carries a random token (signed with the secret key, so a forged or garbled
cookie is refused before any query); the table keeps only its SHA-256.

Sessions end at logout, "log out everywhere", a password change, a role change, an admin's "end sessions",
or 14 days after login (absolute: an active session is not extended).
"""

from __future__ import annotations

import secrets
from datetime import timedelta

from sqlalchemy.orm import Session

from app.services.actor import Actor
from app.services.passwords import token_hash
from app.store import accounts as q
from app.store.models import utcnow

SESSION_TTL = timedelta(days=14)
# last_seen_at (and an API key's last_used_at) is written at most this often, not on every request.
TOUCH_EVERY = timedelta(minutes=1)
MAX_USER_AGENT = 200


def start_session(session: Session, account_id: int, user_agent: str = "") -> str:
    """A new session for the account; returns the token for the cookie (never stored)."""
    now = utcnow()
    token = secrets.token_urlsafe(32)
    q.delete_expired_sessions(session, account_id, now)
    clean_agent = "".join(ch for ch in user_agent if ch.isprintable())[:MAX_USER_AGENT]
    q.create_session(session, account_id, token_hash(token), now, now + SESSION_TTL, clean_agent)
    session.commit()
    return token


def actor_by_session(session: Session, token: str) -> Actor | None:
    """The account of a live session token, or None (unknown, ended, expired, or the account is inactive)."""
    now = utcnow()
    found = q.session_account(session, token_hash(token), now)
    if found is None:
        return None
    account, row = found
    if now - q.as_utc(row.last_seen_at) >= TOUCH_EVERY:
        q.touch_session(session, row.id, now)
        session.commit()
    return Actor(account.id, account.username, account.role)


def end_session(session: Session, token: str) -> None:
    q.delete_session(session, token_hash(token))
    session.commit()


def end_sessions(session: Session, account_id: int) -> int:
    """End every session of the account, in the caller's transaction; returns how many there were."""
    return q.delete_sessions(session, account_id)


def sessions_list(session: Session, account_id: int, current_token: str | None = None) -> list[dict]:
    current = token_hash(current_token) if current_token else None
    rows = q.list_sessions(session, account_id, utcnow())
    return [{**{k: v for k, v in r.items() if k != "token_hash"}, "current": r["token_hash"] == current}
            for r in rows]


def session_counts(session: Session, account_ids: list[int]) -> dict[int, int]:
    return q.count_sessions(session, account_ids, utcnow())
