"""Pydantic bodies of the JSON API's label and account writes."""

from __future__ import annotations

from pydantic import BaseModel, Field


class LabelCreate(BaseModel):
    text: str
    description: str = ""
    tags: list[str] = Field(default_factory=list)
    method: str = "human"


class LabelUpdate(BaseModel):
    base_version: int = Field(ge=1, description="The version the edit was made on; a stale one gets 409.")
    text: str
    description: str = ""
    tags: list[str] = Field(default_factory=list)


class VoteIn(BaseModel):
    value: int = Field(description="1 up, -1 down, 0 clears the vote.")


class CommentCreate(BaseModel):
    body: str


class ListCreate(BaseModel):
    source: str
    name: str
    notes: str = ""


class ListItemIn(BaseModel):
    note: str = ""


class ApiKeyCreate(BaseModel):
    name: str = "script"
