"""Label pages and their JSON twins: a feature's labels and comments, one label with its history, the labeling
flow, the activity feed, search, feature lists, export and import.

Reads are one route per URL (page, htmx block, or JSON under /api/v1). Writes from the browser are form posts
that redirect (they work without JavaScript; htmx gets the page's block back); JSON writes use their own verbs
and need ``Authorization: Bearer <API key>``. Both call the same functions of app/services/labels.py, and every
error is raised and answered by the one handler (a stale edit: 409 with both texts).
"""

from __future__ import annotations

from typing import Annotated
from urllib.parse import quote, urlencode

from fastapi import APIRouter, Form, Request
from fastapi.responses import StreamingResponse

from app.errors import Forbidden, Invalid
from app.http.auth import ApiWriteActor, ReadActor, WriteActor
from app.http.deps import SessionDep, WindowDep
from app.http.respond import (
    API_PREFIX,
    SafeJSONResponse,
    is_fragment_request,
    page_route,
    redirect,
    respond,
    safe_next,
    show,
)
from app.http.token_html import example_markup
from app.services import labels as svc
from app.services import labels_io as io
from app.services import team
from app.services.browse import CONTEXTS
from app.services.schemas.labels import CommentCreate, LabelCreate, LabelUpdate, ListCreate, ListItemIn, VoteIn

router = APIRouter(tags=["labels"])
FormStr = Annotated[str, Form()]
FEATURE_LABELS = "labels/feature_labels.html"


def feature_labels_url(source: str, index: int) -> str:
    return f"/sources/{quote(source, safe='')}/features/{index}/labels"


def _after_write(request: Request, session, actor, source: str, index: int, next_url: str | None):
    """htmx: the feature's labels block, fresh; plain form: back to `next` or the feature's labels page."""
    if is_fragment_request(request) and not next_url:
        return respond(request, FEATURE_LABELS, svc.feature_labels_data(session, actor, source, index), "labels")
    return redirect(request, safe_next(next_url, feature_labels_url(source, index)))


# --- a feature's labels and comments --------------------------------------------------------------------------

@page_route(router, "/sources/{source}/features/{index}/labels", name="feature_labels", template=FEATURE_LABELS,
            block="labels")
def read_feature_labels(request: Request, session: SessionDep, actor: ReadActor, source: str, index: int):
    return show(request, svc.feature_labels_data(session, actor, source, index))


@router.post("/sources/{source}/features/{index}/labels", name="create_label")
def create_label(request: Request, session: SessionDep, actor: WriteActor, source: str, index: int,
                 text: FormStr = "", description: FormStr = "", tags: FormStr = "", next: FormStr = ""):
    svc.create_label(session, actor, source, index, text, description, tags)
    return _after_write(request, session, actor, source, index, next)


@router.post(API_PREFIX + "/sources/{source}/features/{index}/labels", status_code=201, name="api_create_label")
def api_create_label(session: SessionDep, actor: ApiWriteActor, source: str, index: int, body: LabelCreate):
    return svc.create_label(session, actor, source, index, body.text, body.description, body.tags, body.method)


@router.get(API_PREFIX + "/sources/{source}/features/{index}/comments", name="api_comments")
def api_read_comments(session: SessionDep, actor: ReadActor, source: str, index: int) -> dict:
    return {"data": svc.feature_labels_data(session, actor, source, index)["comments"]}


@router.post("/sources/{source}/features/{index}/comments", name="create_comment")
def create_comment(request: Request, session: SessionDep, actor: WriteActor, source: str, index: int,
                   body: FormStr = ""):
    svc.add_comment(session, actor, source, index, body)
    return _after_write(request, session, actor, source, index, None)


@router.post(API_PREFIX + "/sources/{source}/features/{index}/comments", status_code=201, name="api_create_comment")
def api_create_comment(session: SessionDep, actor: ApiWriteActor, source: str, index: int, body: CommentCreate):
    return svc.add_comment(session, actor, source, index, body.body)


@router.post("/comments/{comment_id}/delete", name="delete_comment")
def delete_comment(request: Request, session: SessionDep, actor: WriteActor, comment_id: int, next: FormStr = ""):
    svc.delete_comment(session, actor, comment_id)
    return redirect(request, safe_next(next, "/"))


@router.delete(API_PREFIX + "/comments/{comment_id}", name="api_delete_comment")
def api_delete_comment(session: SessionDep, actor: ApiWriteActor, comment_id: int):
    svc.delete_comment(session, actor, comment_id)
    return {"deleted": comment_id}


# --- one label ------------------------------------------------------------------------------------------------

@page_route(router, "/labels/{label_id}", name="label", template="labels/label.html", block="history")
def read_label(request: Request, session: SessionDep, actor: ReadActor, label_id: int):
    return show(request, svc.label_detail_data(session, actor, label_id))


@page_route(router, "/labels/{label_id}/edit", name="edit_label", template="labels/label.html", block="editor",
            methods=("POST",), api=False)
def edit_label(request: Request, session: SessionDep, actor: WriteActor, label_id: int, text: FormStr = "",
               description: FormStr = "", tags: FormStr = "", base_version: Annotated[int, Form()] = 0):
    """Save an edit made on `base_version`; a stale one shows the editor again with both texts (409)."""
    svc.edit_label(session, actor, label_id, base_version, text, description, tags)
    return redirect(request, f"/labels/{label_id}")


@router.patch(API_PREFIX + "/labels/{label_id}", name="api_edit_label",
              responses={409: {"description": "Stale base_version: body has `current` and `yours`."}})
def api_edit_label(session: SessionDep, actor: ApiWriteActor, label_id: int, body: LabelUpdate):
    return svc.edit_label(session, actor, label_id, body.base_version, body.text, body.description, body.tags)


@router.post("/labels/{label_id}/delete", name="delete_label")
def delete_label(request: Request, session: SessionDep, actor: WriteActor, label_id: int):
    label = svc.delete_label(session, actor, label_id)
    return redirect(request, feature_labels_url(label["source"], label["feature_index"]))


@router.delete(API_PREFIX + "/labels/{label_id}", name="api_delete_label")
def api_delete_label(session: SessionDep, actor: ApiWriteActor, label_id: int):
    return {"deleted": svc.delete_label(session, actor, label_id)}


@router.post("/labels/{label_id}/vote", name="vote_label")
def vote_label(request: Request, session: SessionDep, actor: WriteActor, label_id: int, value: FormStr = "",
               next: FormStr = ""):
    label = svc.vote(session, actor, label_id, value)
    return _after_write(request, session, actor, label["source"], label["feature_index"], next)


@router.put(API_PREFIX + "/labels/{label_id}/vote", name="api_vote_label")
def api_vote_label(session: SessionDep, actor: ApiWriteActor, label_id: int, body: VoteIn):
    return svc.vote(session, actor, label_id, body.value)


# --- labeling flow --------------------------------------------------------------------------------------------

def _flow_params(min_density: float | None, max_density: float | None, list_slug: str | None,
                 assigned: str | None = None, queue: str | None = None) -> dict:
    return {k: v for k, v in {"min_density": min_density, "max_density": max_density, "list": list_slug,
                              "assigned": assigned, "queue": queue}.items() if v not in (None, "")}


def _next_in_flow(session, actor, source: str, after: int, min_density, max_density, list_slug, assigned, queue):
    """(source name, next index or None) of the flow: the second-opinion queue, a person's assigned features, or
    the unlabeled features of a density range or list."""
    if queue not in (None, "", "second-opinion"):
        raise Invalid(f"queue must be second-opinion, not {queue!r}")
    if queue:
        return team.next_second_opinion(session, actor, source, after)
    return svc.next_unlabeled_index(session, source, after, min_density, max_density, list_slug,
                                    svc.assignee(session, actor, assigned))


@page_route(router, "/sources/{source}/label-next", name="label_next", template="labels/labeling_done.html",
            api=False)
def label_next(request: Request, session: SessionDep, actor: ReadActor, source: str, after: int = -1,
               min_density: float | None = None, max_density: float | None = None, list: str | None = None,
               assigned: str | None = None, queue: str | None = None):
    """The next feature of the flow after `after` (unlabeled in its range or list; assigned to a person and not
    yet decided by them; or in the second-opinion queue), or the page saying none is left."""
    name, index = _next_in_flow(session, actor, source, after, min_density, max_density, list, assigned, queue)
    params = _flow_params(min_density, max_density, list, assigned, queue)
    if index is None:
        return show(request, {"source": {"name": name}, "flow": params, "account": None})
    query = f"?{urlencode(params)}" if params else ""
    return redirect(request, f"/sources/{quote(name, safe='')}/features/{index}/labeling{query}")


@router.get(API_PREFIX + "/sources/{source}/label-next", name="api_label_next")
def api_label_next(session: SessionDep, actor: ReadActor, source: str, after: int = -1,
                   min_density: float | None = None, max_density: float | None = None, list: str | None = None,
                   assigned: str | None = None, queue: str | None = None):
    return dict(zip(("source", "index"), _next_in_flow(session, actor, source, after, min_density, max_density,
                                                       list, assigned, queue)))


def present_labeling(request: Request, data: dict) -> dict:
    """Shaded markup of the evidence (one tab stop for all of it, as on the feature page)."""
    evidence = data["evidence"]
    markup = [[example_markup(ex, evidence["max_act"], focusable=(gi, ei) == (0, 0))
               for ei, ex in enumerate(g.examples)] for gi, g in enumerate(evidence["groups"])]
    return {"markup": markup, "contexts": list(CONTEXTS)}


@page_route(router, "/sources/{source}/features/{index}/labeling", name="labeling", template="labels/labeling.html",
            block="evidence", present=present_labeling)
def read_labeling(request: Request, session: SessionDep, actor: ReadActor, source: str, index: int,
                  context: WindowDep, min_density: float | None = None, max_density: float | None = None,
                  list: str | None = None, assigned: str | None = None, queue: str | None = None):
    """One feature to label: its evidence (top examples, a sample of each interval, logits) beside the form."""
    flow = _flow_params(min_density, max_density, list, assigned, queue)
    flow_next = f"/sources/{quote(source, safe='')}/label-next?{urlencode({**flow, 'after': index})}"
    return show(request, svc.labeling_data(session, actor, source, index, {**flow, "next_url": flow_next}, context))


# --- activity, search, lists ----------------------------------------------------------------------------------

@page_route(router, "/sources/{source}/activity", name="activity", template="labels/activity.html", block="events")
def read_activity(request: Request, session: SessionDep, actor: ReadActor, source: str, before: int | None = None):
    return show(request, svc.activity_data(session, actor, source, before))


@page_route(router, "/search", name="search", template="labels/search.html", block="results")
def read_search(request: Request, session: SessionDep, actor: ReadActor, q: str = "", source: str | None = None):
    return show(request, svc.search_data(session, actor, q, source or None))


@page_route(router, "/lists", name="lists", template="labels/lists.html")
def read_lists(request: Request, session: SessionDep, actor: ReadActor):
    return show(request, svc.lists_data(session, actor))


@router.post("/lists", name="create_list")
def create_list(request: Request, session: SessionDep, actor: WriteActor, source: FormStr = "", name: FormStr = "",
                notes: FormStr = ""):
    created = svc.create_list(session, actor, source, name, notes)
    return redirect(request, f"/lists/{created['slug']}")


@router.post(API_PREFIX + "/lists", status_code=201, name="api_create_list")
def api_create_list(session: SessionDep, actor: ApiWriteActor, body: ListCreate):
    return svc.create_list(session, actor, body.source, body.name, body.notes)


@page_route(router, "/lists/{slug}", name="feature_list", template="labels/list.html", block="items")
def read_list(request: Request, session: SessionDep, actor: ReadActor, slug: str):
    return show(request, svc.list_data(session, actor, slug))


@router.post("/lists/{slug}/items", name="add_list_item")
def add_list_item(request: Request, session: SessionDep, actor: WriteActor, slug: str,
                  index: Annotated[int, Form()], note: FormStr = "", next: FormStr = ""):
    svc.add_list_item(session, actor, slug, index, note)
    return redirect(request, safe_next(next, f"/lists/{slug}"))


@router.put(API_PREFIX + "/lists/{slug}/items/{index}", name="api_add_list_item")
def api_add_list_item(session: SessionDep, actor: ApiWriteActor, slug: str, index: int, body: ListItemIn):
    svc.add_list_item(session, actor, slug, index, body.note)
    return svc.list_data(session, actor, slug)


@router.post("/lists/{slug}/items/{index}/delete", name="remove_list_item")
def remove_list_item(request: Request, session: SessionDep, actor: WriteActor, slug: str, index: int):
    svc.remove_list_item(session, actor, slug, index)
    return redirect(request, f"/lists/{slug}")


@router.delete(API_PREFIX + "/lists/{slug}/items/{index}", name="api_remove_list_item")
def api_remove_list_item(session: SessionDep, actor: ApiWriteActor, slug: str, index: int):
    svc.remove_list_item(session, actor, slug, index)
    return svc.list_data(session, actor, slug)


@router.post("/lists/{slug}/delete", name="delete_list")
def delete_list(request: Request, session: SessionDep, actor: WriteActor, slug: str):
    svc.delete_list(session, actor, slug)
    return redirect(request, "/lists")


@router.delete(API_PREFIX + "/lists/{slug}", name="api_delete_list")
def api_delete_list(session: SessionDep, actor: ApiWriteActor, slug: str):
    svc.delete_list(session, actor, slug)
    return {"deleted": slug}


# --- export / import ------------------------------------------------------------------------------------------

@router.get(API_PREFIX + "/sources/{source}/labels/export", name="api_export_labels")
def export_labels(session: SessionDep, actor: ReadActor, source: str, format: str = "jsonl"):
    """All labels of a source: `jsonl` (with revisions, votes, authors) or `neuronpedia` (explanations array)."""
    found = svc.resolve_source(session, source)
    if format == "neuronpedia":
        return SafeJSONResponse(io.export_neuronpedia(session, found.id),
                            headers={"Content-Disposition": f'attachment; filename="labels-{found.id}.neuronpedia.json"'})
    if format != "jsonl":
        raise Invalid(f"format {format!r} is not jsonl or neuronpedia")
    return StreamingResponse(io.export_jsonl(session, found.id), media_type="application/x-ndjson",
                             headers={"Content-Disposition": f'attachment; filename="labels-{found.id}.jsonl"'})


@router.post(API_PREFIX + "/labels/import", name="api_import_labels")
async def import_labels(request: Request, actor: ApiWriteActor):
    """Admin only: a JSONL body as produced by the export. 422 with line-numbered errors, nothing written."""
    if not actor.is_admin:
        raise Forbidden("Only admins import labels.")
    text = (await request.body()).decode("utf-8", errors="replace")
    with request.app.state.sessionmaker() as session:
        report = io.import_jsonl(session, text.splitlines(), actor)
    return SafeJSONResponse(report, status_code=422 if report["errors"] else 200)
