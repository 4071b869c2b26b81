"""JSON twins of the label pages under /api/v1, built by the same data functions (app/labels/service.py).

Reads follow `anonymous_read`; every write needs `Authorization: Bearer <API key>`.
"""

from __future__ import annotations


from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, StreamingResponse

from app.services import labels_io as io
from app.services import labels as svc
from app.http.auth import ApiReadActor, ApiWriteActor
from app.http.labels_glue import SessionDep, api
from app.services.schemas.labels import CommentCreate, LabelCreate, LabelUpdate, ListCreate, ListItemIn, VoteIn

router = APIRouter(prefix="/api/v1", tags=["labels api"])


@router.get("/sources/{source}/features/{index}/labels", name="api_feature_labels")
def read_feature_labels(session: SessionDep, actor: ApiReadActor, source: str, index: int) -> dict:
    return api(lambda: svc.feature_labels_data(session, actor, source, index))


@router.post("/sources/{source}/features/{index}/labels", status_code=201, name="api_create_label")
def create_label(session: SessionDep, actor: ApiWriteActor, source: str, index: int, body: LabelCreate):
    return api(lambda: svc.create_label(session, actor, source, index, body.text, body.description, body.tags,
                                        body.method))


@router.get("/labels/{label_id}", name="api_label")
def read_label(session: SessionDep, actor: ApiReadActor, label_id: int) -> dict:
    return api(lambda: svc.label_detail_data(session, actor, label_id))


@router.patch("/labels/{label_id}", name="api_edit_label",
              responses={409: {"description": "Stale base_version: body has `current` and `yours`."}})
def edit_label(session: SessionDep, actor: ApiWriteActor, label_id: int, body: LabelUpdate):
    return api(lambda: svc.edit_label(session, actor, label_id, body.base_version, body.text, body.description,
                                      body.tags))


@router.delete("/labels/{label_id}", name="api_delete_label")
def delete_label(session: SessionDep, actor: ApiWriteActor, label_id: int):
    return api(lambda: {"deleted": svc.delete_label(session, actor, label_id)})


@router.put("/labels/{label_id}/vote", name="api_vote_label")
def vote_label(session: SessionDep, actor: ApiWriteActor, label_id: int, body: VoteIn):
    return api(lambda: svc.vote(session, actor, label_id, body.value))


@router.get("/sources/{source}/features/{index}/comments", name="api_comments")
def read_comments(session: SessionDep, actor: ApiReadActor, source: str, index: int) -> dict:
    return api(lambda: {"data": svc.feature_labels_data(session, actor, source, index)["comments"]})


@router.post("/sources/{source}/features/{index}/comments", status_code=201, name="api_create_comment")
def create_comment(session: SessionDep, actor: ApiWriteActor, source: str, index: int, body: CommentCreate):
    return api(lambda: svc.add_comment(session, actor, source, index, body.body))


@router.delete("/comments/{comment_id}", name="api_delete_comment")
def delete_comment(session: SessionDep, actor: ApiWriteActor, comment_id: int):
    return api(lambda: svc.delete_comment(session, actor, comment_id) or {"deleted": comment_id})


@router.get("/sources/{source}/label-next", name="api_label_next")
def label_next(session: SessionDep, actor: ApiReadActor, source: str, after: int = -1,
               min_density: float | None = None, max_density: float | None = None, list: str | None = None):
    return api(lambda: dict(zip(("source", "index"),
                                svc.next_unlabeled_index(session, source, after, min_density, max_density, list))))


@router.get("/sources/{source}/features/{index}/labeling", name="api_labeling")
def read_labeling(session: SessionDep, actor: ApiReadActor, source: str, index: int) -> dict:
    return api(lambda: svc.labeling_data(session, actor, source, index, {}))


@router.get("/sources/{source}/activity", name="api_activity")
def read_activity(session: SessionDep, actor: ApiReadActor, source: str, before: int | None = None) -> dict:
    return api(lambda: svc.activity_data(session, actor, source, before))


@router.get("/search", name="api_search")
def read_search(session: SessionDep, actor: ApiReadActor, q: str = "", source: str | None = None) -> dict:
    return api(lambda: svc.search_data(session, actor, q, source or None))


@router.get("/lists", name="api_lists")
def read_lists(session: SessionDep, actor: ApiReadActor) -> dict:
    return api(lambda: svc.lists_data(session, actor))


@router.post("/lists", status_code=201, name="api_create_list")
def create_list(session: SessionDep, actor: ApiWriteActor, body: ListCreate):
    return api(lambda: svc.create_list(session, actor, body.source, body.name, body.notes))


@router.get("/lists/{slug}", name="api_feature_list")
def read_list(session: SessionDep, actor: ApiReadActor, slug: str) -> dict:
    return api(lambda: svc.list_data(session, actor, slug))


@router.put("/lists/{slug}/items/{index}", name="api_add_list_item")
def add_list_item(session: SessionDep, actor: ApiWriteActor, slug: str, index: int, body: ListItemIn):
    return api(lambda: svc.add_list_item(session, actor, slug, index, body.note) or svc.list_data(session, actor, slug))


@router.delete("/lists/{slug}/items/{index}", name="api_remove_list_item")
def remove_list_item(session: SessionDep, actor: ApiWriteActor, slug: str, index: int):
    return api(lambda: svc.remove_list_item(session, actor, slug, index) or svc.list_data(session, actor, slug))


@router.delete("/lists/{slug}", name="api_delete_list")
def delete_list(session: SessionDep, actor: ApiWriteActor, slug: str):
    return api(lambda: svc.delete_list(session, actor, slug) or {"deleted": slug})


@router.get("/sources/{source}/labels/export", name="api_export_labels")
def export_labels(request: Request, session: SessionDep, actor: ApiReadActor, source: str, format: str = "jsonl"):
    """All labels of a source: `jsonl` (with revisions, votes, authors) or `neuronpedia` (explanations array)."""
    found = api(lambda: svc.resolve_source(session, source))
    if format == "neuronpedia":
        return JSONResponse(io.export_neuronpedia(session, found.id),
                            headers={"Content-Disposition": f'attachment; filename="labels-{found.id}.neuronpedia.json"'})
    if format != "jsonl":
        return JSONResponse({"detail": f"format {format!r} is not jsonl or neuronpedia"}, status_code=422)
    return StreamingResponse(io.export_jsonl(session, found.id), media_type="application/x-ndjson",
                             headers={"Content-Disposition": f'attachment; filename="labels-{found.id}.jsonl"'})


@router.post("/labels/import", name="api_import_labels")
async def import_labels(request: Request, actor: ApiWriteActor):
    """Admin only: a JSONL body as produced by the export. 422 with line-numbered errors, nothing written."""
    if not actor.is_admin:
        return JSONResponse({"detail": "Only admins import labels."}, status_code=403)
    text = (await request.body()).decode("utf-8", errors="replace")
    with request.app.state.sessionmaker() as session:
        report = io.import_jsonl(session, text.splitlines())
    return JSONResponse(report, status_code=422 if report["errors"] else 200)


