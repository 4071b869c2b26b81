"""Export -> fresh database -> import gives the same labels; import validates, reports line numbers, is idempotent."""

from __future__ import annotations

import json

from app.cli import accounts as cli
from app.services import labels_io as io


def _seed(lab):
    for name in ("ada", "bob"):
        lab.user(name)
    ada, bob = lab.api("ada"), lab.api("bob")
    first = ada.post(f"/api/v1{lab.feature_url(1)}/labels", json={"text": "<b>bold</b> & co", "tags": ["t1"],
                                                                   "description": "multi\nline"}).json()
    ada.patch(f"/api/v1/labels/{first['id']}", json={"base_version": 1, "text": "edited \x07 text", "tags": ["t2"]})
    second = bob.post(f"/api/v1{lab.feature_url(2)}/labels", json={"text": "draft", "method": "auto:offline"}).json()
    bob.put(f"/api/v1/labels/{first['id']}/vote", json={"value": 1})
    ada.put(f"/api/v1/labels/{second['id']}/vote", json={"value": -1})


def _labels_view(lab) -> list[dict]:
    with lab.session() as s:
        lines = [json.loads(line) for line in io.export_jsonl(s)]
    for line in lines:
        line["votes"] = sorted((v["account"], v["value"]) for v in line["votes"])
    return sorted(lines, key=lambda d: d["uid"])


def test_export_fresh_database_import_same_labels_and_idempotent(make_lab, tmp_path, capsys):
    origin = _seed_lab = make_lab()
    _seed(_seed_lab)
    exported = tmp_path / "labels.jsonl"
    db_url = origin.app.state.settings.resolved_database_url
    assert cli.labels_io_main(_args(labels_command="export", source=None, format="jsonl", output=exported,
                                    database_url=db_url)) == 0
    target = make_lab()  # fresh database, same source name, no accounts
    target_url = target.app.state.settings.resolved_database_url
    assert cli.labels_io_main(_args(labels_command="import", file=exported, database_url=target_url)) == 0
    assert "imported 2 labels, 3 revisions, 2 votes, 0 assignments; created 2 accounts" in capsys.readouterr().out
    assert _labels_view(target) == _labels_view(origin)
    assert target.anon.get(f"/api/v1{target.feature_url(1)}/labels").json()["canonical"]["text"] == "edited \x07 text"
    assert cli.labels_io_main(_args(labels_command="import", file=exported, database_url=target_url)) == 0
    assert "imported 0 labels, 0 revisions, 0 votes, 0 assignments; created 0 accounts" in capsys.readouterr().out
    assert _labels_view(target) == _labels_view(origin)
    # imported authors exist but cannot log in
    assert target.client().post("/login", data={"username": "ada", "password": ""}).status_code in (401, 403)


def test_import_reports_every_bad_line_and_writes_nothing(lab):
    lab.user("ada")
    lab.api("ada").post(f"/api/v1{lab.feature_url(1)}/labels", json={"text": "good"})
    with lab.session() as s:
        good = next(io.export_jsonl(s))
    good_other = json.loads(good) | {"uid": "another-uid"}
    lines = [
        json.dumps(good_other),
        "{not json",
        json.dumps(json.loads(good) | {"uid": "u3", "source": "missing-source"}),
        json.dumps(json.loads(good) | {"uid": "u4", "feature_index": 999}),
        json.dumps(json.loads(good) | {"uid": "u5", "votes": [{"account": "x", "value": 3, "created_at": "2024-01-01T00:00:00"}]}),
        "",
        json.dumps(json.loads(good) | {"uid": "u7", "text": "nul\x00"}),
        json.dumps(good_other),
    ]
    with lab.session() as s:
        report = io.import_jsonl(s, lines)
    errors = report["errors"]
    assert [e.split(":")[0] for e in errors] == ["line 2", "line 5", "line 7", "line 8", "line 3", "line 4"]
    assert "missing-source" in errors[4] and "no feature 999" in errors[5] and "already appeared on line 1" in errors[3]
    assert "vote value 3" in errors[1] and "NUL" in errors[2]
    r = lab.api("ada").get(f"/api/v1{lab.feature_url(1)}/labels").json()
    assert len(r["labels"]) == 1, "nothing written when any line is bad"


def test_neuronpedia_export(lab):
    _seed(lab)
    data = lab.anon.get(f"/api/v1/sources/{lab.source}/labels/export", params={"format": "neuronpedia"}).json()
    assert {(d["index"], d["description"], d["typeName"], d["explanationModelName"]) for d in data} == {
        ("1", "edited \x07 text", "human", ""), ("2", "draft", "auto:offline", "offline")}
    assert {d["modelId"] for d in data} == {"tiny-model"} and {d["layer"] for d in data} == {"0-res"}
    r = lab.anon.get(f"/api/v1/sources/{lab.source}/labels/export")
    assert r.headers["content-type"].startswith("application/x-ndjson") and len(r.text.splitlines()) == 2


def test_users_cli_creates_admin(lab, monkeypatch, capsys):
    import io as stdio

    url = lab.app.state.settings.resolved_database_url
    monkeypatch.setattr("sys.stdin", stdio.StringIO("s3cret-password\n"))
    assert cli.users_main(_args(users_command="create", username="boss", admin=True, role="labeler",
                                password_stdin=True, database_url=url)) == 0
    assert "created admin account 'boss'" in capsys.readouterr().out
    assert lab.browser("boss", password="s3cret-password").get("/admin/accounts").status_code == 200


def _args(**values):
    import argparse

    values.setdefault("data_dir", None)
    return argparse.Namespace(**values)
