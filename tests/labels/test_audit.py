"""The audit log: admins' changes to others' content and accounts, and imports; read by admins only."""

from __future__ import annotations

import json

from tests.labels.helpers import soup


def _content_of(lab, name: str) -> dict:
    api = lab.api(name)
    label = api.post(f"/api/v1{lab.feature_url(1)}/labels", json={"text": f"{name}'s label"}).json()
    comment = api.post(f"/api/v1{lab.feature_url(1)}/comments", json={"body": f"{name}'s comment"}).json()
    fl = api.post("/api/v1/lists", json={"source": lab.source, "name": f"{name}'s list"}).json()
    assert api.put(f"/api/v1/lists/{fl['slug']}/items/2", json={}).status_code == 200
    return {"label": label["id"], "comment": comment["id"], "list": fl["slug"]}


def _delete_all(api, ids: dict) -> None:
    assert api.delete(f"/api/v1/labels/{ids['label']}").status_code == 200
    assert api.delete(f"/api/v1/comments/{ids['comment']}").status_code in (200, 204)
    assert api.delete(f"/api/v1/lists/{ids['list']}/items/2").status_code in (200, 204)
    assert api.delete(f"/api/v1/lists/{ids['list']}").status_code in (200, 204)


def test_admin_deletions_of_others_content_are_audited_own_are_not(any_lab):
    lab = any_lab
    lab.user("root", role="admin")
    lab.user("ada")
    _delete_all(lab.api("root"), _content_of(lab, "ada"))
    _delete_all(lab.api("ada"), _content_of(lab, "ada"))  # her own: not an admin action
    _delete_all(lab.api("root"), _content_of(lab, "root"))  # the admin's own: not audited either
    events = lab.api("root").get("/api/v1/admin/audit").json()["events"]
    assert [e["action"] for e in events] == ["list_deleted", "list_item_removed", "comment_deleted",
                                             "label_deleted"]
    assert {(e["actor"], e["target"]) for e in events} == {("root", "ada")}
    assert events[3]["detail"]["text"] == "ada's label" and events[2]["detail"]["body"] == "ada's comment"
    page = soup(lab.browser("root").get("/admin/audit"))
    assert [tr["data-action"] for tr in page.select("tr.audit-event")] == [e["action"] for e in events]


def test_imports_are_audited_from_the_api_and_the_console(lab, tmp_path):
    from app.cli import main

    lab.user("root", role="admin")
    lab.user("ada")
    lab.api("ada").post(f"/api/v1{lab.feature_url(1)}/labels", json={"text": "to export"})
    export = lab.api("root").get(f"/api/v1/sources/{lab.source}/labels/export").text
    line = json.loads(export.splitlines()[0]) | {"uid": "imported-1"}
    r = lab.api("root").post("/api/v1/labels/import", content=json.dumps(line) + "\n")
    assert r.status_code == 200 and r.json()["labels_added"] == 1
    dump = tmp_path / "labels.jsonl"
    dump.write_text(json.dumps(line | {"uid": "imported-2"}) + "\n")
    url = str(lab.app.state.engine.url.render_as_string(hide_password=False))
    assert main(["labels", "import", str(dump), "--database-url", url]) == 0
    events = lab.api("root").get("/api/v1/admin/audit").json()["events"]
    assert [(e["action"], e["actor"]) for e in events] == [("labels_imported", None), ("labels_imported", "root")]
    assert events[1]["detail"]["labels_added"] == 1
    assert "console" in soup(lab.browser("root").get("/admin/audit")).select("tr.audit-event td")[1].get_text()


def test_only_admins_read_the_audit_log(lab):
    lab.user("ada")
    assert lab.api("ada").get("/api/v1/admin/audit").status_code == 403
    assert lab.browser("ada").get("/admin/audit").status_code == 403
    r = lab.anon.get("/admin/audit", follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"].startswith("/login")
