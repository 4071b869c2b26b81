"""Introspection routes: /-/health, /-/versions.json, /-/settings.json."""

from __future__ import annotations

from fastapi import APIRouter

from app.http.deps import CtxDep
from app.services import meta

router = APIRouter(tags=["meta"])


@router.get("/-/health", name="health")
def read_health(ctx: CtxDep) -> dict:
    return meta.health_data(ctx)


@router.get("/-/versions.json", name="versions")
def read_versions() -> dict:
    return meta.versions_data()


@router.get("/-/settings.json", name="settings")
def read_settings(ctx: CtxDep) -> dict:
    return meta.settings_data(ctx)
