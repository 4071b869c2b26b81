"""Autolabel pages and their JSON twins: the review queue of machine drafts, the "needs review" list of
low-scoring labels, a feature's label scores, and semantic label search. Routes parse, call one function in
app/services/autolabel/review.py and answer through show(). Review writes are form posts that redirect (htmx
gets the queue block back); the JSON write takes a body.
"""

from __future__ import annotations

from typing import Annotated
from urllib.parse import quote

from fastapi import APIRouter, Form, Query, Request
from pydantic import BaseModel, Field

from app.http.auth import ApiWriteActor, ReadActor, WriteActor
from app.http.deps import SessionDep
from app.http.respond import API_PREFIX, is_fragment_request, page_route, redirect, respond, safe_next, show
from app.services.autolabel import review

router = APIRouter(tags=["autolabel"])
FormStr = Annotated[str, Form()]
PageQuery = Annotated[int, Query(alias="page", ge=1)]
REVIEW = "autolabel/review.html"


def review_url(source: str) -> str:
    return f"/sources/{quote(source, safe='')}/review"


class ReviewIn(BaseModel):
    action: str = Field(description="accept | edit | reject")
    text: str = Field("", description="the new label text (edit only)")


@page_route(router, "/sources/{source}/review", name="autolabel_review", template=REVIEW, block="queue")
def read_review_queue(request: Request, session: SessionDep, actor: ReadActor, source: str, page_: PageQuery = 1):
    return show(request, review.review_queue_data(session, actor, source, page_))


@router.post("/labels/{label_id}/review", name="autolabel_review_draft")
def review_draft(request: Request, session: SessionDep, actor: WriteActor, label_id: int, action: FormStr = "",
                 text: FormStr = "", source: FormStr = "", next: FormStr = ""):
    review.review_draft(session, actor, label_id, action, text)
    if is_fragment_request(request) and source:
        return respond(request, REVIEW, review.review_queue_data(session, actor, source), "queue")
    return redirect(request, safe_next(next, review_url(source) if source else f"/labels/{label_id}"))


@router.post(API_PREFIX + "/labels/{label_id}/review", name="api_autolabel_review_draft")
def api_review_draft(session: SessionDep, actor: ApiWriteActor, label_id: int, body: ReviewIn) -> dict:
    return review.review_draft(session, actor, label_id, body.action, body.text)


@page_route(router, "/sources/{source}/needs-review", name="autolabel_needs_review",
            template="autolabel/needs_review.html", block="rows")
def read_needs_review(request: Request, session: SessionDep, actor: ReadActor, source: str,
                      method: str = "embedding", threshold: float | None = None):
    return show(request, review.needs_review_data(session, actor, source, method, threshold))


@page_route(router, "/sources/{source}/features/{index}/scores", name="autolabel_feature_scores",
            template="autolabel/feature_scores.html")
def read_feature_scores(request: Request, session: SessionDep, actor: ReadActor, source: str, index: int):
    return show(request, review.feature_scores_data(session, actor, source, index))


@page_route(router, "/sources/{source}/label-search", name="autolabel_label_search",
            template="autolabel/label_search.html", block="results")
def read_label_search(request: Request, session: SessionDep, actor: ReadActor, source: str, q: str = ""):
    return show(request, review.semantic_search_data(session, actor, source, q))
