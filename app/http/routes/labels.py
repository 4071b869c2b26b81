"""Label pages: a feature's labels and comments, one label with its history, the labeling flow, the activity
feed, search, and feature lists. Routes parse, call one function in app/labels/service.py, render.

Writes are plain form posts that redirect (they work without JavaScript); htmx requests get the page's named
block back instead. JSON twins: app/api/labels.py.
"""

from __future__ import annotations

from typing import Annotated
from urllib.parse import quote, urlencode

from fastapi import APIRouter, Form, Request

from app.services import labels as svc
from app.http.auth import ReadActor, WriteActor
from app.services.label_errors import Conflict, LabelError
from app.http.labels_glue import SessionDep, error_page, page, redirect, safe_next

router = APIRouter(tags=["labels"])
FormStr = Annotated[str, Form()]


def feature_labels_url(source: str, index: int) -> str:
    return f"/sources/{quote(source, safe='')}/features/{index}/labels"


def _after_write(request: Request, session, actor, source: str, index: int, next_url: str | None):
    """htmx: the feature's labels block, fresh; plain form: back to `next` or the feature's labels page."""
    if request.headers.get("HX-Request") == "true" and not next_url:
        return page(request, "labels/feature_labels.html",
                    lambda: svc.feature_labels_data(session, actor, source, index), block="labels")
    return redirect(request, safe_next(next_url, feature_labels_url(source, index)))


@router.get("/sources/{source}/features/{index}/labels", name="feature_labels")
def read_feature_labels(request: Request, session: SessionDep, actor: ReadActor, source: str, index: int):
    return page(request, "labels/feature_labels.html",
                lambda: svc.feature_labels_data(session, actor, source, index), block="labels")


@router.post("/sources/{source}/features/{index}/labels", name="create_label")
def create_label(request: Request, session: SessionDep, actor: WriteActor, source: str, index: int,
                 text: FormStr = "", description: FormStr = "", tags: FormStr = "", next: FormStr = ""):
    try:
        svc.create_label(session, actor, source, index, text, description, tags)
    except LabelError as exc:
        return error_page(request, exc)
    return _after_write(request, session, actor, source, index, next)


@router.get("/labels/{label_id}", name="label")
def read_label(request: Request, session: SessionDep, actor: ReadActor, label_id: int):
    return page(request, "labels/label.html", lambda: svc.label_detail_data(session, actor, label_id),
                block="history")


@router.post("/labels/{label_id}/edit", name="edit_label")
def edit_label(request: Request, session: SessionDep, actor: WriteActor, label_id: int, text: FormStr = "",
               description: FormStr = "", tags: FormStr = "", base_version: Annotated[int, Form()] = 0):
    try:
        svc.edit_label(session, actor, label_id, base_version, text, description, tags)
    except Conflict as exc:
        conflict = exc

        def build():
            return {**svc.label_detail_data(session, actor, label_id), "conflict": conflict}
        return page(request, "labels/label.html", build, block="editor", status_code=409)
    except LabelError as exc:
        return error_page(request, exc)
    return redirect(request, f"/labels/{label_id}")


@router.post("/labels/{label_id}/delete", name="delete_label")
def delete_label(request: Request, session: SessionDep, actor: WriteActor, label_id: int):
    try:
        label = svc.delete_label(session, actor, label_id)
        source = svc.q.source_by_ref(session, str(label["source_id"]))
    except LabelError as exc:
        return error_page(request, exc)
    return redirect(request, feature_labels_url(source.name, label["feature_index"]))


@router.post("/labels/{label_id}/vote", name="vote_label")
def vote_label(request: Request, session: SessionDep, actor: WriteActor, label_id: int, value: FormStr = "",
               next: FormStr = ""):
    try:
        label = svc.vote(session, actor, label_id, value)
        source = svc.q.source_by_ref(session, str(label["source_id"]))
    except LabelError as exc:
        return error_page(request, exc)
    return _after_write(request, session, actor, source.name, label["feature_index"], next)


@router.post("/sources/{source}/features/{index}/comments", name="create_comment")
def create_comment(request: Request, session: SessionDep, actor: WriteActor, source: str, index: int,
                   body: FormStr = ""):
    try:
        svc.add_comment(session, actor, source, index, body)
    except LabelError as exc:
        return error_page(request, exc)
    return _after_write(request, session, actor, source, index, None)


@router.post("/comments/{comment_id}/delete", name="delete_comment")
def delete_comment(request: Request, session: SessionDep, actor: WriteActor, comment_id: int, next: FormStr = ""):
    try:
        svc.delete_comment(session, actor, comment_id)
    except LabelError as exc:
        return error_page(request, exc)
    return redirect(request, safe_next(next, "/"))


# --- labeling flow --------------------------------------------------------------------------------------------

def _flow_params(min_density: float | None, max_density: float | None, list_slug: str | None) -> dict:
    return {k: v for k, v in {"min_density": min_density, "max_density": max_density, "list": list_slug}.items()
            if v not in (None, "")}


@router.get("/sources/{source}/label-next", name="label_next")
def label_next(request: Request, session: SessionDep, actor: ReadActor, source: str, after: int = -1,
               min_density: float | None = None, max_density: float | None = None, list: str | None = None):
    try:
        name, index = svc.next_unlabeled_index(session, source, after, min_density, max_density, list)
    except LabelError as exc:
        return error_page(request, exc)
    params = _flow_params(min_density, max_density, list)
    if index is None:
        return page(request, "labels/labeling_done.html",
                    lambda: {"source": {"name": name}, "flow": params, "account": None})
    query = f"?{urlencode(params)}" if params else ""
    return redirect(request, f"/sources/{quote(name, safe='')}/features/{index}/labeling{query}")


@router.get("/sources/{source}/features/{index}/labeling", name="labeling")
def read_labeling(request: Request, session: SessionDep, actor: ReadActor, source: str, index: int,
                  min_density: float | None = None, max_density: float | None = None, list: str | None = None):
    flow = _flow_params(min_density, max_density, list)
    flow_next = f"/sources/{quote(source, safe='')}/label-next?{urlencode({**flow, 'after': index})}"
    return page(request, "labels/labeling.html",
                lambda: svc.labeling_data(session, actor, source, index, {**flow, "next_url": flow_next}))


# --- activity, search, lists ----------------------------------------------------------------------------------

@router.get("/sources/{source}/activity", name="activity")
def read_activity(request: Request, session: SessionDep, actor: ReadActor, source: str, before: int | None = None):
    return page(request, "labels/activity.html", lambda: svc.activity_data(session, actor, source, before),
                block="events")


@router.get("/search", name="search")
def read_search(request: Request, session: SessionDep, actor: ReadActor, q: str = "", source: str | None = None):
    return page(request, "labels/search.html", lambda: svc.search_data(session, actor, q, source or None),
                block="results")


@router.get("/lists", name="lists")
def read_lists(request: Request, session: SessionDep, actor: ReadActor):
    return page(request, "labels/lists.html", lambda: svc.lists_data(session, actor))


@router.post("/lists", name="create_list")
def create_list(request: Request, session: SessionDep, actor: WriteActor, source: FormStr = "", name: FormStr = "",
                notes: FormStr = ""):
    try:
        created = svc.create_list(session, actor, source, name, notes)
    except LabelError as exc:
        return error_page(request, exc)
    return redirect(request, f"/lists/{created['slug']}")


@router.get("/lists/{slug}", name="feature_list")
def read_list(request: Request, session: SessionDep, actor: ReadActor, slug: str):
    return page(request, "labels/list.html", lambda: svc.list_data(session, actor, slug), block="items")


@router.post("/lists/{slug}/items", name="add_list_item")
def add_list_item(request: Request, session: SessionDep, actor: WriteActor, slug: str,
                  index: Annotated[int, Form()], note: FormStr = "", next: FormStr = ""):
    try:
        svc.add_list_item(session, actor, slug, index, note)
    except LabelError as exc:
        return error_page(request, exc)
    return redirect(request, safe_next(next, f"/lists/{slug}"))


@router.post("/lists/{slug}/items/{index}/delete", name="remove_list_item")
def remove_list_item(request: Request, session: SessionDep, actor: WriteActor, slug: str, index: int):
    try:
        svc.remove_list_item(session, actor, slug, index)
    except LabelError as exc:
        return error_page(request, exc)
    return redirect(request, f"/lists/{slug}")


@router.post("/lists/{slug}/delete", name="delete_list")
def delete_list(request: Request, session: SessionDep, actor: WriteActor, slug: str):
    try:
        svc.delete_list(session, actor, slug)
    except LabelError as exc:
        return error_page(request, exc)
    return redirect(request, "/lists")
