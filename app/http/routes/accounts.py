"""Login, registration, logout, the account page (sessions, password, API keys), the admin account list and
audit log; their JSON twins.

Login and registration are counted per address and per typed name (FEATUREBOARD_LOGIN_RATE_LIMIT) before the
password is looked at, and the refusal reads the same whether or not the name exists."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Form, Request

from app.errors import FeatureboardError, Forbidden
from app.http import auth, ratelimit
from app.http.auth import AccountActor, ApiAccountActor, ApiWriteActor
from app.http.deps import SessionDep
from app.http.respond import API_PREFIX, is_fragment_request, page_route, redirect, respond, safe_next, show
from app.services import accounts as svc
from app.services import audit
from app.services.schemas.labels import ApiKeyCreate
from app.services.validate import PASSWORD_POLICY

router = APIRouter(tags=["accounts"])
FormStr = Annotated[str, Form()]
REGISTRATION_CLOSED = "Registration is closed on this server; ask an admin for an account."
DONE = {"password": "Password changed. Every other browser logged in as you was logged out."}


def _form(request: Request, next_url: str, username: str = "") -> dict:
    return {"next": safe_next(next_url, "/"), "username": username[:64], "password_policy": PASSWORD_POLICY,
            "open_registration": request.app.state.settings.open_registration, "account": None}


def _charge_attempt(request: Request, kind: str, username: str) -> None:
    """One login or registration attempt against both the address's and the name's count."""
    ratelimit.charge(request, kind, ("address", ratelimit.client_address(request)))
    ratelimit.charge(request, kind, ratelimit.name_key(username))


def _form_error(request: Request, exc: FeatureboardError, next_url: str, username: str) -> FeatureboardError:
    """The login or registration form again, with the message and the username as typed."""
    exc.page = _form(request, next_url, username)
    return exc


@page_route(router, "/login", name="login_form", template="accounts/login.html", api=False)
def read_login(request: Request, next: str = "/"):
    return show(request, _form(request, next))


@page_route(router, "/login", name="login", template="accounts/login.html", methods=("POST",), api=False)
def login(request: Request, session: SessionDep, _csrf: Annotated[None, Depends(auth.verify_csrf)],
          username: FormStr = "", password: FormStr = "", next: FormStr = "/"):
    try:
        _charge_attempt(request, "login", username)
        actor = svc.authenticate(session, username, password)
    except FeatureboardError as exc:
        raise _form_error(request, exc, next, username) from None
    response = redirect(request, safe_next(next, "/"))
    auth.set_login_cookie(request, response, actor.id)
    return response


@router.post("/logout", name="logout")
def logout(request: Request, actor: AccountActor):
    response = redirect(request, "/")
    auth.end_login(request, response)
    return response


@page_route(router, "/register", name="register_form", template="accounts/register.html", api=False)
def read_register(request: Request, next: str = "/"):
    if not request.app.state.settings.open_registration:
        raise Forbidden(REGISTRATION_CLOSED)
    return show(request, _form(request, next))


@page_route(router, "/register", name="register", template="accounts/register.html", methods=("POST",), api=False)
def register(request: Request, session: SessionDep, _csrf: Annotated[None, Depends(auth.verify_csrf)],
             username: FormStr = "", password: FormStr = "", next: FormStr = "/"):
    if not request.app.state.settings.open_registration:
        raise Forbidden(REGISTRATION_CLOSED)
    try:
        _charge_attempt(request, "register", username)
        actor = svc.create_account(session, username, password, "labeler")
    except FeatureboardError as exc:
        raise _form_error(request, exc, next, username) from None
    response = redirect(request, safe_next(next, "/"))
    auth.set_login_cookie(request, response, actor.id)
    return response


# --- the account page and API keys ----------------------------------------------------------------------------

def _account_page(request: Request, session, actor, **kw) -> dict:
    return svc.account_data(session, actor, current_session=auth.session_token(request), **kw)


@page_route(router, "/account", name="account", template="accounts/account.html", block="keys")
def read_account(request: Request, session: SessionDep, actor: ApiAccountActor, done: str = ""):
    return show(request, _account_page(request, session, actor, notice=DONE.get(done)))


@page_route(router, "/account/keys", name="create_api_key", template="accounts/account.html", block="keys",
            methods=("POST",), api=False)
def create_api_key(request: Request, session: SessionDep, actor: AccountActor, name: FormStr = ""):
    new_key = svc.create_api_key(session, actor, name)
    # The token is on this page once.
    return show(request, _account_page(request, session, actor, new_key=new_key),
                headers={"Cache-Control": "no-store"})


@page_route(router, "/account/password", name="change_password", template="accounts/account.html",
            methods=("POST",), api=False)
def change_password(request: Request, session: SessionDep, actor: AccountActor, current_password: FormStr = "",
                    new_password: FormStr = ""):
    """Every session of the account ends (a thief's copy of a cookie too); this browser gets a new one."""
    try:
        ratelimit.charge(request, "login", ratelimit.name_key(actor.username))
        svc.change_password(session, actor, current_password, new_password)
    except FeatureboardError as exc:
        exc.page = _account_page(request, session, actor)
        raise
    response = redirect(request, "/account?done=password")
    auth.set_login_cookie(request, response, actor.id)
    return response


@router.post("/account/sessions/end", name="end_my_sessions")
def end_my_sessions(request: Request, session: SessionDep, actor: AccountActor):
    """Log out everywhere: every browser logged in as this account, this one included."""
    svc.end_sessions_of(session, actor, actor.id)
    response = redirect(request, "/login")
    auth.clear_login_cookie(request, response)
    return response


@router.post(API_PREFIX + "/account/keys", status_code=201, name="api_create_api_key")
def api_create_api_key(session: SessionDep, actor: ApiWriteActor, body: ApiKeyCreate) -> dict:
    return svc.create_api_key(session, actor, body.name)


@router.post("/account/keys/{key_id}/revoke", name="revoke_api_key")
def revoke_api_key(request: Request, session: SessionDep, actor: AccountActor, key_id: int):
    svc.revoke_api_key(session, actor, key_id)
    if is_fragment_request(request):
        return respond(request, "accounts/account.html", _account_page(request, session, actor), "keys")
    return redirect(request, "/account")


@router.delete(API_PREFIX + "/account/keys/{key_id}", name="api_revoke_api_key")
def api_revoke_api_key(session: SessionDep, actor: ApiWriteActor, key_id: int) -> dict:
    svc.revoke_api_key(session, actor, key_id)
    return {"revoked": key_id}


# --- admin ------------------------------------------------------------------------------------------------------

@page_route(router, "/admin/accounts", name="admin_accounts", template="accounts/admin.html")
def read_admin_accounts(request: Request, session: SessionDep, actor: ApiAccountActor):
    return show(request, svc.admin_data(session, actor))


@router.post("/admin/accounts/{account_id}/role", name="set_role")
def set_role(request: Request, session: SessionDep, actor: AccountActor, account_id: int, role: FormStr = ""):
    """Also ends that account's sessions, so a demotion takes effect in its open browsers at once."""
    svc.set_role(session, actor, account_id, role)
    return redirect(request, "/admin/accounts")


@router.post("/admin/accounts/{account_id}/sessions/end", name="end_sessions")
def end_sessions(request: Request, session: SessionDep, actor: AccountActor, account_id: int):
    svc.end_sessions_of(session, actor, account_id)
    return redirect(request, "/admin/accounts")


@page_route(router, "/admin/audit", name="admin_audit", template="accounts/audit.html", block="events")
def read_audit(request: Request, session: SessionDep, actor: ApiAccountActor, before: int | None = None):
    """Admin actions, newest first: role changes, deletions of others' content, imports, ended sessions."""
    return show(request, audit.audit_data(session, actor, before))
