"""SQL for accounts, API keys and login sessions. No HTTP, no templates."""

from __future__ import annotations

from datetime import datetime, timezone

from sqlalchemy import delete, func, select, update
from sqlalchemy.orm import Session

from app.store.models import Account, ApiKey, LoginSession, utcnow


def as_utc(value: datetime | None) -> datetime | None:
    """SQLite hands back naive datetimes (stored as UTC); PostgreSQL aware ones. Both become aware UTC."""
    if value is None or value.tzinfo is not None:
        return value
    return value.replace(tzinfo=timezone.utc)


def _iso(value: datetime | None) -> str | None:
    return as_utc(value).isoformat() if value else None


def account_public(a: Account) -> dict:
    return {"id": a.id, "username": a.username, "role": a.role, "is_active": a.is_active,
            "created_at": a.created_at.isoformat() if a.created_at else None}


def get_account(session: Session, account_id: int) -> Account | None:
    return session.get(Account, account_id)


def get_account_by_username(session: Session, username: str) -> Account | None:
    return session.scalar(select(Account).where(Account.username == username))


def create_account(session: Session, username: str, password_hash: str | None, role: str) -> Account:
    account = Account(username=username, password_hash=password_hash, role=role, is_active=True, created_at=utcnow())
    session.add(account)
    session.flush()
    return account


def list_accounts(session: Session) -> list[dict]:
    return [account_public(a) for a in session.scalars(select(Account).order_by(Account.id))]


def count_accounts(session: Session) -> int:
    return session.scalar(select(func.count()).select_from(Account)) or 0


def set_role(session: Session, account_id: int, role: str) -> bool:
    return session.execute(update(Account).where(Account.id == account_id).values(role=role)).rowcount == 1


def set_password_hash(session: Session, account_id: int, password_hash: str) -> bool:
    return session.execute(update(Account).where(Account.id == account_id)
                           .values(password_hash=password_hash)).rowcount == 1


def ensure_accounts(session: Session, usernames: set[str]) -> tuple[dict[str, int], int]:
    """Ids of the named accounts, creating password-less labeler accounts for unknown names (import of authors).
    Returns ({username: id}, number created)."""
    ids = {a.username: a.id for a in session.scalars(select(Account).where(Account.username.in_(usernames)))}
    created = 0
    for name in sorted(usernames - ids.keys()):
        ids[name] = create_account(session, name, None, "labeler").id
        created += 1
    return ids, created


def usernames_by_id(session: Session, ids: set[int]) -> dict[int, str]:
    if not ids:
        return {}
    return dict(session.execute(select(Account.id, Account.username).where(Account.id.in_(ids))).all())


def create_api_key(session: Session, account_id: int, name: str, prefix: str, key_hash: str) -> ApiKey:
    key = ApiKey(account_id=account_id, name=name, prefix=prefix, key_hash=key_hash, created_at=utcnow())
    session.add(key)
    session.flush()
    return key


def list_api_keys(session: Session, account_id: int) -> list[dict]:
    rows = session.scalars(select(ApiKey).where(ApiKey.account_id == account_id).order_by(ApiKey.id))
    return [{"id": k.id, "name": k.name, "prefix": k.prefix, "created_at": _iso(k.created_at),
             "last_used_at": _iso(k.last_used_at), "revoked_at": _iso(k.revoked_at)} for k in rows]


def revoke_api_key(session: Session, account_id: int, key_id: int) -> bool:
    stmt = (update(ApiKey).where(ApiKey.id == key_id, ApiKey.account_id == account_id, ApiKey.revoked_at.is_(None))
            .values(revoked_at=utcnow()))
    return session.execute(stmt).rowcount == 1


def account_for_api_key(session: Session, key_hash: str) -> tuple[Account, ApiKey] | None:
    stmt = (select(Account, ApiKey).join(ApiKey, ApiKey.account_id == Account.id)
            .where(ApiKey.key_hash == key_hash, ApiKey.revoked_at.is_(None), Account.is_active.is_(True)))
    row = session.execute(stmt).first()
    return (row[0], row[1]) if row else None


def touch_api_key(session: Session, key_id: int, now: datetime) -> None:
    session.execute(update(ApiKey).where(ApiKey.id == key_id).values(last_used_at=now))


# --- login sessions ---------------------------------------------------------------------------------------------

def create_session(session: Session, account_id: int, token_hash: str, now: datetime, expires_at: datetime,
                   user_agent: str) -> LoginSession:
    row = LoginSession(token_hash=token_hash, account_id=account_id, created_at=now, expires_at=expires_at,
                       last_seen_at=now, user_agent=user_agent)
    session.add(row)
    session.flush()
    return row


def session_account(session: Session, token_hash: str, now: datetime) -> tuple[Account, LoginSession] | None:
    """The active account of an unexpired session, with the session row; one indexed lookup."""
    stmt = (select(Account, LoginSession).join(LoginSession, LoginSession.account_id == Account.id)
            .where(LoginSession.token_hash == token_hash, LoginSession.expires_at > now,
                   Account.is_active.is_(True)))
    row = session.execute(stmt).first()
    return (row[0], row[1]) if row else None


def touch_session(session: Session, session_id: int, now: datetime) -> None:
    session.execute(update(LoginSession).where(LoginSession.id == session_id).values(last_seen_at=now))


def delete_session(session: Session, token_hash: str) -> bool:
    return session.execute(delete(LoginSession).where(LoginSession.token_hash == token_hash)).rowcount == 1


def delete_sessions(session: Session, account_id: int) -> int:
    return session.execute(delete(LoginSession).where(LoginSession.account_id == account_id)).rowcount


def delete_expired_sessions(session: Session, account_id: int, now: datetime) -> int:
    stmt = delete(LoginSession).where(LoginSession.account_id == account_id, LoginSession.expires_at <= now)
    return session.execute(stmt).rowcount


def list_sessions(session: Session, account_id: int, now: datetime) -> list[dict]:
    rows = session.scalars(select(LoginSession).where(LoginSession.account_id == account_id,
                                                      LoginSession.expires_at > now).order_by(LoginSession.id))
    return [{"id": r.id, "token_hash": r.token_hash, "created_at": _iso(r.created_at),
             "last_seen_at": _iso(r.last_seen_at), "expires_at": _iso(r.expires_at), "user_agent": r.user_agent}
            for r in rows]


def count_sessions(session: Session, account_ids: list[int], now: datetime) -> dict[int, int]:
    if not account_ids:
        return {}
    stmt = (select(LoginSession.account_id, func.count()).where(LoginSession.account_id.in_(account_ids),
                                                                LoginSession.expires_at > now)
            .group_by(LoginSession.account_id))
    return dict(session.execute(stmt).all())
