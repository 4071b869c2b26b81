"""Account logic: registration, login, roles, API keys. Passwords only pass through hash/verify; never logged."""

from __future__ import annotations

from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from app.errors import Forbidden, Invalid, NotFound, WrongCredentials
from app.services import passwords
from app.services import validate as v
from app.services.actor import Actor
from app.store import accounts as q
from app.store.models import ROLES


def create_account(session: Session, username: str, password: str | None, role: str = "labeler") -> Actor:
    username = v.username_field(username)
    if role not in ROLES:
        raise Invalid(f"role {role!r} is not one of {', '.join(ROLES)}.")
    password_hash = passwords.hash_password(v.password_field(password)) if password is not None else None
    if q.get_account_by_username(session, username) is not None:
        raise Invalid(f"username {username!r} is taken; choose another.")
    try:
        account = q.create_account(session, username, password_hash, role)
        session.commit()
    except IntegrityError:
        session.rollback()
        raise Invalid(f"username {username!r} is taken; choose another.") from None
    return Actor(account.id, account.username, account.role)


def _actor(account) -> Actor | None:
    if account is None or not account.is_active:
        return None
    return Actor(account.id, account.username, account.role)


def actor_by_id(session: Session, account_id: int) -> Actor | None:
    """The active account with this id (a session cookie's), or None."""
    return _actor(q.get_account(session, account_id))


def actor_by_api_key(session: Session, token: str) -> Actor | None:
    """The active account owning this unrevoked API key, or None."""
    return _actor(q.account_for_api_key(session, passwords.api_key_hash(token)))


def authenticate(session: Session, username: str, password: str) -> Actor:
    """The account, or WrongCredentials (the same answer, in the same time, whether or not the name exists)."""
    account = q.get_account_by_username(session, username or "")
    ok = passwords.verify_password(password or "", account.password_hash if account else None)
    if not ok or account is None or not account.is_active:
        raise WrongCredentials("Wrong username or password.")
    return Actor(account.id, account.username, account.role)


def set_role(session: Session, actor: Actor, account_id: int, role: str) -> None:
    if not actor.is_admin:
        raise Forbidden("Only admins change roles.")
    if role not in ROLES:
        raise Invalid(f"role {role!r} is not one of {', '.join(ROLES)}.")
    if not q.set_role(session, account_id, role):
        raise NotFound(f"Account {account_id} does not exist.")
    session.commit()


def create_api_key(session: Session, actor: Actor, name: str) -> dict:
    """A new key for the actor. The token is in the result once and never stored."""
    name = v.text_field(name or "script", "key name", 100, required=True)
    token, prefix, key_hash = passwords.new_api_key()
    key = q.create_api_key(session, actor.id, name, prefix, key_hash)
    session.commit()
    return {"id": key.id, "name": name, "prefix": prefix, "token": token}


def revoke_api_key(session: Session, actor: Actor, key_id: int) -> None:
    if not q.revoke_api_key(session, actor.id, key_id):
        raise NotFound(f"You have no active API key {key_id}.")
    session.commit()


def account_data(session: Session, actor: Actor, new_key: dict | None = None) -> dict:
    return {"account": actor.public(), "api_keys": q.list_api_keys(session, actor.id), "new_key": new_key}


def admin_data(session: Session, actor: Actor) -> dict:
    if not actor.is_admin:
        raise Forbidden("Only admins see the account list.")
    return {"account": actor.public(), "accounts": q.list_accounts(session), "roles": list(ROLES)}


# --- the `featureboard users` command (an operator at the console, not an account) -----------------------------

def list_accounts(session: Session) -> list[dict]:
    return q.list_accounts(session)


def _by_name(session: Session, username: str):
    account = q.get_account_by_username(session, username)
    if account is None:
        raise NotFound(f"There is no account named {username!r}.")
    return account


def set_role_by_name(session: Session, username: str, role: str) -> None:
    if role not in ROLES:
        raise Invalid(f"role {role!r} is not one of {', '.join(ROLES)}.")
    q.set_role(session, _by_name(session, username).id, role)
    session.commit()


def set_password_by_name(session: Session, username: str, password: str) -> None:
    account = _by_name(session, username)
    q.set_password_hash(session, account.id, passwords.hash_password(v.password_field(password)))
    session.commit()
