"""Login, registration, logout, the account page (API keys) and the admin account list.

JSON twins live in app/api/accounts.py and use the same data functions.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Form, HTTPException, Request

from app.services import accounts as svc
from app.http import auth
from app.http.auth import AccountActor, OptionalActor
from app.services.label_errors import LabelError
from app.http.labels_glue import SessionDep, error_page, page, redirect, safe_next
from app.http.respond import render

router = APIRouter(tags=["accounts"])


def _form_page(request: Request, template: str, next_url: str, error: str | None = None, username: str = "",
               status_code: int = 200):
    settings = request.app.state.settings
    data = {"next": safe_next(next_url, "/"), "error": error, "username": username,
            "open_registration": settings.open_registration, "account": None}
    return page(request, template, lambda: data, status_code=status_code)


@router.get("/login", name="login_form")
def read_login(request: Request, next: str = "/"):
    return _form_page(request, "accounts/login.html", next)


@router.post("/login", name="login", dependencies=[Depends(auth.verify_csrf)])
def login(request: Request, session: SessionDep, username: Annotated[str, Form()] = "",
          password: Annotated[str, Form()] = "", next: Annotated[str, Form()] = "/"):
    auth.rate_limit(request, None, key=("login", username))
    actor = svc.authenticate(session, username, password)
    if actor is None:
        return _form_page(request, "accounts/login.html", next, "Wrong username or password.", username, 401)
    response = redirect(request, safe_next(next, "/"))
    auth.set_login_cookie(request, response, actor.id)
    return response


@router.post("/logout", name="logout")
def logout(request: Request, actor: AccountActor):
    response = redirect(request, "/")
    auth.clear_login_cookie(request, response)
    return response


@router.get("/register", name="register_form")
def read_register(request: Request, next: str = "/"):
    if not request.app.state.settings.open_registration:
        raise HTTPException(403, "Registration is closed on this server; ask an admin for an account.")
    return _form_page(request, "accounts/register.html", next)


@router.post("/register", name="register", dependencies=[Depends(auth.verify_csrf)])
def register(request: Request, session: SessionDep, username: Annotated[str, Form()] = "",
             password: Annotated[str, Form()] = "", next: Annotated[str, Form()] = "/"):
    if not request.app.state.settings.open_registration:
        raise HTTPException(403, "Registration is closed on this server; ask an admin for an account.")
    auth.rate_limit(request, None, key=("register", request.client.host if request.client else ""))
    try:
        actor = svc.create_account(session, username, password, "labeler")
    except LabelError as exc:
        return _form_page(request, "accounts/register.html", next, exc.message, username, exc.status)
    response = redirect(request, safe_next(next, "/"))
    auth.set_login_cookie(request, response, actor.id)
    return response


@router.get("/account", name="account")
def read_account(request: Request, session: SessionDep, actor: OptionalActor):
    if actor is None:
        return redirect(request, "/login?next=/account")
    return page(request, "accounts/account.html", lambda: svc.account_data(session, actor), block="keys")


@router.post("/account/keys", name="create_api_key")
def create_api_key(request: Request, session: SessionDep, actor: AccountActor, name: Annotated[str, Form()] = ""):
    def build():
        new_key = svc.create_api_key(session, actor, name)
        return svc.account_data(session, actor, new_key)

    response = page(request, "accounts/account.html", build, block="keys")
    response.headers["Cache-Control"] = "no-store"  # the token is on this page once
    return response


@router.post("/account/keys/{key_id}/revoke", name="revoke_api_key")
def revoke_api_key(request: Request, session: SessionDep, actor: AccountActor, key_id: int):
    try:
        svc.revoke_api_key(session, actor, key_id)
    except LabelError as exc:
        return error_page(request, exc)
    if request.headers.get("HX-Request") == "true":
        return render(request, "accounts/account.html", svc.account_data(session, actor), block="keys")
    return redirect(request, "/account")


@router.get("/admin/accounts", name="admin_accounts")
def read_admin_accounts(request: Request, session: SessionDep, actor: OptionalActor):
    if actor is None:
        return redirect(request, "/login?next=/admin/accounts")
    return page(request, "accounts/admin.html", lambda: svc.admin_data(session, actor))


@router.post("/admin/accounts/{account_id}/role", name="set_role")
def set_role(request: Request, session: SessionDep, actor: AccountActor, account_id: int,
             role: Annotated[str, Form()] = ""):
    try:
        svc.set_role(session, actor, account_id, role)
    except LabelError as exc:
        return error_page(request, exc)
    return redirect(request, "/admin/accounts")
