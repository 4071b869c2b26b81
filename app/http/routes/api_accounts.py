"""JSON twins of the account pages: who am I, my API keys (create needs a key or a CSRF-checked login), roles."""

from __future__ import annotations

from fastapi import APIRouter, HTTPException, Request

from app.services import accounts as svc
from app.http.auth import ApiReadActor, ApiWriteActor
from app.http.labels_glue import SessionDep, api
from app.services.schemas.labels import ApiKeyCreate

router = APIRouter(prefix="/api/v1", tags=["accounts api"])


def _need(actor):
    if actor is None:
        raise HTTPException(401, "Send 'Authorization: Bearer fbk_...' (create a key on /account) or log in.",
                            headers={"WWW-Authenticate": "Bearer"})
    return actor


@router.get("/account", name="api_account")
def read_account(session: SessionDep, actor: ApiReadActor) -> dict:
    return svc.account_data(session, _need(actor))


@router.post("/account/keys", status_code=201, name="api_create_api_key")
def create_api_key(session: SessionDep, actor: ApiWriteActor, body: ApiKeyCreate) -> dict:
    return api(lambda: svc.create_api_key(session, actor, body.name))


@router.delete("/account/keys/{key_id}", name="api_revoke_api_key")
def revoke_api_key(session: SessionDep, actor: ApiWriteActor, key_id: int) -> dict:
    return api(lambda: svc.revoke_api_key(session, actor, key_id) or {"revoked": key_id})


@router.get("/admin/accounts", name="api_admin_accounts")
def read_admin_accounts(request: Request, session: SessionDep, actor: ApiReadActor) -> dict:
    return api(lambda: svc.admin_data(session, _need(actor)))
