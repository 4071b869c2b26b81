"""SQL for accounts and API keys. No HTTP, no templates."""

from __future__ import annotations

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from app.store.models import Account, ApiKey, utcnow


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
    return [{"id": k.id, "name": k.name, "prefix": k.prefix, "created_at": k.created_at.isoformat(),
             "revoked_at": k.revoked_at.isoformat() if k.revoked_at else None} for k in rows]


def revoke_api_key(session: Session, account_id: int, key_id: int) -> bool:
    stmt = (update(ApiKey).where(ApiKey.id == key_id, ApiKey.account_id == account_id, ApiKey.revoked_at.is_(None))
            .values(revoked_at=utcnow()))
    return session.execute(stmt).rowcount == 1


def account_for_api_key(session: Session, key_hash: str) -> Account | None:
    stmt = (select(Account).join(ApiKey, ApiKey.account_id == Account.id)
            .where(ApiKey.key_hash == key_hash, ApiKey.revoked_at.is_(None), Account.is_active.is_(True)))
    return session.scalar(stmt)
