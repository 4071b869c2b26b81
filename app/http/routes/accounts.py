"""Login, registration, logout, the account page (API keys), the admin account list; their JSON twins."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Form, Request

from app.errors import FeatureboardError, Forbidden
from app.http import auth, ratelimit
from app.http.auth import AccountActor, ApiAccountActor, ApiWriteActor
from app.http.deps import SessionDep
from app.http.respond import API_PREFIX, is_fragment_request, page_route, redirect, respond, safe_next, show
from app.services import accounts as svc
from app.services.schemas.labels import ApiKeyCreate

router = APIRouter(tags=["accounts"])
FormStr = Annotated[str, Form()]
REGISTRATION_CLOSED = "Registration is closed on this server; ask an admin for an account."


def _form(request: Request, next_url: str, username: str = "") -> dict:
    return {"next": safe_next(next_url, "/"), "username": username,
            "open_registration": request.app.state.settings.open_registration, "account": None}


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
    ratelimit.charge(request, "write", ("login", username))
    try:
        actor = svc.authenticate(session, username, password)
    except FeatureboardError as exc:
        raise _form_error(request, exc, next, username) from None
    response = redirect(request, safe_next(next, "/"))
    auth.set_login_cookie(request, response, actor.id)
    return response


@router.post("/logout", name="logout")
def logout(request: Request, actor: AccountActor):
    response = redirect(request, "/")
    auth.clear_login_cookie(request, response)
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
    ratelimit.charge(request, "write", ("register", request.client.host if request.client else ""))
    try:
        actor = svc.create_account(session, username, password, "labeler")
    except FeatureboardError as exc:
        raise _form_error(request, exc, next, username) from None
    response = redirect(request, safe_next(next, "/"))
    auth.set_login_cookie(request, response, actor.id)
    return response


# --- the account page and API keys ----------------------------------------------------------------------------

@page_route(router, "/account", name="account", template="accounts/account.html", block="keys")
def read_account(request: Request, session: SessionDep, actor: ApiAccountActor):
    return show(request, svc.account_data(session, actor))


@page_route(router, "/account/keys", name="create_api_key", template="accounts/account.html", block="keys",
            methods=("POST",), api=False)
def create_api_key(request: Request, session: SessionDep, actor: AccountActor, name: FormStr = ""):
    new_key = svc.create_api_key(session, actor, name)
    # The token is on this page once.
    return show(request, svc.account_data(session, actor, new_key), headers={"Cache-Control": "no-store"})


@router.post(API_PREFIX + "/account/keys", status_code=201, name="api_create_api_key")
def api_create_api_key(session: SessionDep, actor: ApiWriteActor, body: ApiKeyCreate) -> dict:
    return svc.create_api_key(session, actor, body.name)


@router.post("/account/keys/{key_id}/revoke", name="revoke_api_key")
def revoke_api_key(request: Request, session: SessionDep, actor: AccountActor, key_id: int):
    svc.revoke_api_key(session, actor, key_id)
    if is_fragment_request(request):
        return respond(request, "accounts/account.html", svc.account_data(session, actor), "keys")
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
    svc.set_role(session, actor, account_id, role)
    return redirect(request, "/admin/accounts")
