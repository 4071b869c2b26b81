"""Account logic: registration, login, roles, passwords, API keys. Passwords only pass through hash/verify;
never logged. Changing a password or a role ends the account's sessions (app/services/sessions.py); what an
admin does to another account is written to the audit log."""

from __future__ import annotations

from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from app.errors import Forbidden, Invalid, NotFound, WrongCredentials
from app.services import audit, passwords, sessions
from app.services import validate as v
from app.services.actor import Actor
from app.store import accounts as q
from app.store.models import ROLES, utcnow


def create_account(session: Session, username: str, password: str | None, role: str = "labeler") -> Actor:
    username = v.username_field(username)
    if role not in ROLES:
        raise Invalid(f"role {role!r} is not one of {', '.join(ROLES)}.")
    password_hash = passwords.hash_password(v.password_field(password, username)) if password is not None else None
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


def actor_by_api_key(session: Session, token: str) -> Actor | None:
    """The active account owning this unrevoked API key, or None. Records the key's last use at most once per
    sessions.TOUCH_EVERY, so a busy script does not turn every read into a write."""
    found = q.account_for_api_key(session, passwords.token_hash(token))
    if found is None:
        return None
    account, key = found
    now = utcnow()
    if key.last_used_at is None or now - q.as_utc(key.last_used_at) >= sessions.TOUCH_EVERY:
        q.touch_api_key(session, key.id, now)
        session.commit()
    return _actor(account)


def authenticate(session: Session, username: str, password: str) -> Actor:
    """The account, or WrongCredentials (the same answer, in the same time, whether or not the name exists)."""
    account = q.get_account_by_username(session, username or "")
    ok = passwords.verify_password(password or "", account.password_hash if account else None)
    if not ok or account is None or not account.is_active:
        raise WrongCredentials("Wrong username or password.")
    return Actor(account.id, account.username, account.role)


def _change_role(session: Session, actor: Actor | None, account, role: str) -> None:
    """Set the role, end the account's sessions (a demoted person's open browsers lose the old rights at once,
    a promoted one logs in again) and audit it, in one transaction."""
    if role not in ROLES:
        raise Invalid(f"role {role!r} is not one of {', '.join(ROLES)}.")
    old = account.role
    q.set_role(session, account.id, role)
    ended = sessions.end_sessions(session, account.id)
    audit.record(session, actor, "role_changed", f"{account.username}: {old} -> {role}",
                 target_account_id=account.id, detail={"from": old, "to": role, "sessions_ended": ended})
    session.commit()


def set_role(session: Session, actor: Actor, account_id: int, role: str) -> None:
    if not actor.is_admin:
        raise Forbidden("Only admins change roles.")
    account = q.get_account(session, account_id)
    if account is None:
        raise NotFound(f"Account {account_id} does not exist.")
    _change_role(session, actor, account, role)


def end_sessions_of(session: Session, actor: Actor, account_id: int) -> int:
    """"Log out everywhere" for oneself, or an admin ending another account's sessions (audited)."""
    if actor.id != account_id and not actor.is_admin:
        raise Forbidden("Only admins end other accounts' sessions.")
    account = q.get_account(session, account_id)
    if account is None:
        raise NotFound(f"Account {account_id} does not exist.")
    ended = sessions.end_sessions(session, account_id)
    if actor.id != account_id:
        audit.record(session, actor, "sessions_revoked", f"{account.username}: {ended} sessions ended",
                     target_account_id=account_id, detail={"sessions_ended": ended})
    session.commit()
    return ended


def change_password(session: Session, actor: Actor, current: str, new: str) -> None:
    """Check the current password, set the new one and end every session of the account (the caller starts a
    fresh one for the browser that asked)."""
    account = q.get_account(session, actor.id)
    if account is None or not passwords.verify_password(current or "", account.password_hash):
        raise Invalid("The current password is wrong; nothing was changed.")
    q.set_password_hash(session, account.id, passwords.hash_password(v.password_field(new, account.username)))
    sessions.end_sessions(session, account.id)
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


def account_data(session: Session, actor: Actor, new_key: dict | None = None, current_session: str | None = None,
                 notice: str | None = None) -> dict:
    return {"account": actor.public(), "api_keys": q.list_api_keys(session, actor.id), "new_key": new_key,
            "sessions": sessions.sessions_list(session, actor.id, current_session),
            "password_policy": v.PASSWORD_POLICY, "notice": notice}


def admin_data(session: Session, actor: Actor) -> dict:
    if not actor.is_admin:
        raise Forbidden("Only admins see the account list.")
    accounts = q.list_accounts(session)
    counts = sessions.session_counts(session, [a["id"] for a in accounts])
    for a in accounts:
        a["sessions"] = counts.get(a["id"], 0)
    return {"account": actor.public(), "accounts": accounts, "roles": list(ROLES)}


# --- the `featureboard users` command (an operator at the console, not an account) -----------------------------

def list_accounts(session: Session) -> list[dict]:
    return q.list_accounts(session)


def _by_name(session: Session, username: str):
    account = q.get_account_by_username(session, username)
    if account is None:
        raise NotFound(f"There is no account named {username!r}.")
    return account


def set_role_by_name(session: Session, username: str, role: str) -> None:
    _change_role(session, None, _by_name(session, username), role)


def set_password_by_name(session: Session, username: str, password: str) -> None:
    """Set a password from the console; every session of the account ends."""
    account = _by_name(session, username)
    q.set_password_hash(session, account.id, passwords.hash_password(v.password_field(password, username)))
    sessions.end_sessions(session, account.id)
    session.commit()
