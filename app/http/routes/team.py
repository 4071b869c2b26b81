"""Labeling as a team: the second-opinion queue (features where people disagree) and assigning features to
people. Routes parse, call app/services/team.py and answer through show() (page or JSON twin); the assignment
write is a form post that redirects, with a JSON twin that takes a body."""

from __future__ import annotations

from typing import Annotated
from urllib.parse import quote

from fastapi import APIRouter, Form, Request
from pydantic import BaseModel, Field

from app.http.auth import ApiWriteActor, ReadActor, WriteActor
from app.http.deps import SessionDep
from app.http.respond import API_PREFIX, page_route, redirect, show
from app.services import team

router = APIRouter(tags=["labels"])
FormStr = Annotated[str, Form()]


class AssignmentIn(BaseModel):
    account: str = Field(description="username of the person the features go to")
    features: str = Field(description="indices and ranges, e.g. 0-99,120")


@page_route(router, "/sources/{source}/second-opinion", name="second_opinion", template="labels/second_opinion.html")
def read_second_opinion(request: Request, session: SessionDep, actor: ReadActor, source: str):
    """Features where two people back different labels, or one person's label is another's down vote."""
    return show(request, team.second_opinion_data(session, actor, source))


@router.post("/sources/{source}/assignments", name="create_assignment")
def create_assignment(request: Request, session: SessionDep, actor: WriteActor, source: str,
                      account: FormStr = "", features: FormStr = ""):
    team.assign_features(session, actor, source, account, features)
    return redirect(request, f"/sources/{quote(source, safe='')}#team")


@router.post(API_PREFIX + "/sources/{source}/assignments", status_code=201, name="api_create_assignment")
def api_create_assignment(session: SessionDep, actor: ApiWriteActor, source: str, body: AssignmentIn) -> dict:
    return team.assign_features(session, actor, source, body.account, body.features)


@router.post("/sources/{source}/assignments/delete", name="delete_assignments")
def delete_assignments(request: Request, session: SessionDep, actor: WriteActor, source: str,
                       account: FormStr = ""):
    team.unassign_features(session, actor, source, account)
    return redirect(request, f"/sources/{quote(source, safe='')}#team")


@router.delete(API_PREFIX + "/sources/{source}/assignments/{account}", name="api_delete_assignments")
def api_delete_assignments(session: SessionDep, actor: ApiWriteActor, source: str, account: str) -> dict:
    return team.unassign_features(session, actor, source, account)
