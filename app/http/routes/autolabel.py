"""Autolabel pages (issue 8) and their JSON twins: the review queue of machine drafts, the "needs review" list of
low-scoring labels, a feature's label scores, and semantic label search. Routes parse, call one function in
app/autolabel/review.py, render. Writes are form posts that redirect (htmx gets the queue block back).
"""

from __future__ import annotations

from typing import Annotated
from urllib.parse import quote

from fastapi import APIRouter, Form, Query, Request
from pydantic import BaseModel, Field

from app.services.autolabel import review
from app.http.auth import ApiReadActor, ApiWriteActor, ReadActor, WriteActor
from app.services.label_errors import LabelError
from app.http.labels_glue import SessionDep, api, error_page, page, redirect, safe_next

router = APIRouter(tags=["autolabel"])
FormStr = Annotated[str, Form()]
PageQuery = Annotated[int, Query(alias="page", ge=1)]


def review_url(source: str) -> str:
    return f"/sources/{quote(source, safe='')}/review"


class ReviewIn(BaseModel):
    action: str = Field(description="accept | edit | reject")
    text: str = Field("", description="the new label text (edit only)")


# --- review queue ---------------------------------------------------------------------------------------------

@router.get("/sources/{source}/review", name="autolabel_review")
def read_review_queue(request: Request, session: SessionDep, actor: ReadActor, source: str, page_: PageQuery = 1):
    return page(request, "autolabel/review.html",
                lambda: review.review_queue_data(session, actor, source, page_), block="queue")


@router.get("/api/v1/sources/{source}/review", name="api_autolabel_review", tags=["autolabel api"])
def api_review_queue(session: SessionDep, actor: ApiReadActor, source: str, page_: PageQuery = 1) -> dict:
    return api(lambda: review.review_queue_data(session, actor, source, page_))


@router.post("/labels/{label_id}/review", name="autolabel_review_draft")
def review_draft(request: Request, session: SessionDep, actor: WriteActor, label_id: int, action: FormStr = "",
                 text: FormStr = "", source: FormStr = "", next: FormStr = ""):
    try:
        review.review_draft(session, actor, label_id, action, text)
    except LabelError as exc:
        return error_page(request, exc)
    if request.headers.get("HX-Request") == "true" and source:
        return page(request, "autolabel/review.html",
                    lambda: review.review_queue_data(session, actor, source), block="queue")
    return redirect(request, safe_next(next, review_url(source) if source else f"/labels/{label_id}"))


@router.post("/api/v1/labels/{label_id}/review", name="api_autolabel_review_draft", tags=["autolabel api"])
def api_review_draft(session: SessionDep, actor: ApiWriteActor, label_id: int, body: ReviewIn) -> dict:
    return api(lambda: review.review_draft(session, actor, label_id, body.action, body.text))


# --- needs review, scores, semantic search --------------------------------------------------------------------

@router.get("/sources/{source}/needs-review", name="autolabel_needs_review")
def read_needs_review(request: Request, session: SessionDep, actor: ReadActor, source: str,
                      method: str = "embedding", threshold: float | None = None):
    return page(request, "autolabel/needs_review.html",
                lambda: review.needs_review_data(session, actor, source, method, threshold), block="rows")


@router.get("/api/v1/sources/{source}/needs-review", name="api_autolabel_needs_review", tags=["autolabel api"])
def api_needs_review(session: SessionDep, actor: ApiReadActor, source: str, method: str = "embedding",
                     threshold: float | None = None) -> dict:
    return api(lambda: review.needs_review_data(session, actor, source, method, threshold))


@router.get("/sources/{source}/features/{index}/scores", name="autolabel_feature_scores")
def read_feature_scores(request: Request, session: SessionDep, actor: ReadActor, source: str, index: int):
    return page(request, "autolabel/feature_scores.html",
                lambda: review.feature_scores_data(session, actor, source, index))


@router.get("/api/v1/sources/{source}/features/{index}/scores", name="api_autolabel_feature_scores",
            tags=["autolabel api"])
def api_feature_scores(session: SessionDep, actor: ApiReadActor, source: str, index: int) -> dict:
    return api(lambda: review.feature_scores_data(session, actor, source, index))


@router.get("/sources/{source}/label-search", name="autolabel_label_search")
def read_label_search(request: Request, session: SessionDep, actor: ReadActor, source: str, q: str = ""):
    return page(request, "autolabel/label_search.html",
                lambda: review.semantic_search_data(session, actor, source, q), block="results")


@router.get("/api/v1/sources/{source}/label-search", name="api_autolabel_label_search", tags=["autolabel api"])
def api_label_search(session: SessionDep, actor: ApiReadActor, source: str, q: str = "") -> dict:
    return api(lambda: review.semantic_search_data(session, actor, source, q))
