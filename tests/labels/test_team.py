"""Labeling as a team: the evidence on the labeling page, the second-opinion queue, assignments, per-person
progress, and which draft is canonical."""

from __future__ import annotations

import pytest

from app.store import autolabel as qa
from app.store.labels import canonical_labels
from tests.labels.helpers import soup


def _label(api, lab, index, text):
    r = api.post(f"/api/v1{lab.feature_url(index)}/labels", json={"text": text})
    assert r.status_code == 201, r.text
    return r.json()


def _vote(api, label_id, value):
    r = api.put(f"/api/v1/labels/{label_id}/vote", json={"value": value})
    assert r.status_code == 200, r.text


def test_labeling_page_shows_the_evidence_beside_the_form(lab):
    lab.user("ada")
    c = lab.browser("ada")
    page = soup(c.get(f"{lab.feature_url(3)}/labeling"))
    evidence = page.select_one(".labeling-layout .labeling-evidence section#evidence")
    groups = evidence.select(".example-group")
    assert groups[0]["data-kind"] == "top" and 1 <= len(groups[0].select("li.example")) <= 8
    assert all(len(g.select("li.example")) <= 2 for g in groups[1:]) and len(groups) > 1
    assert evidence.select(".ex span.pk")  # the peak is marked in every shown example
    assert len(evidence.select(".ex span.pk")) == len(evidence.select("li.example"))
    assert [a.get_text() for a in evidence.select(".context-toggle a")] == ["±5", "±16", "full"]
    decide = page.select_one(".labeling-layout aside.labeling-decide")
    assert decide.select_one("form#label-form input#label-text") is not None
    assert decide.select_one(".logits.compact .logit-list.pos code.tok-chip") is not None
    # the toggle swaps the evidence block only, and keeps the flow's parameters
    frag = c.get(f"{lab.feature_url(3)}/labeling?context=5&min_density=0.02", headers={"HX-Request": "true"})
    block = soup(frag)
    assert block.select_one("html") is None and block.select_one("section#evidence")["data-context"] == "5"
    assert "min_density=0.02" in block.select_one('.context-toggle a[data-context="full"]')["href"]
    twin = lab.anon.get(f"/api/v1{lab.feature_url(3)}/labeling").json()
    assert twin["evidence"]["groups"][0]["kind"] == "top" and twin["evidence"]["groups"][0]["examples"][0]["tokens"]


def test_reject_downvotes_the_draft_and_moves_on(lab):
    lab.user("ada")
    with lab.session() as s:
        system = qa.system_account_id(s)
        from app.store.labels import insert_label

        draft = insert_label(s, 1, 2, system, "a machine draft", "", ["auto"], "auto:input")
        s.commit()
        draft_id = draft.id
    c = lab.browser("ada")
    page = soup(c.get(f"{lab.feature_url(2)}/labeling"))
    form = page.select_one("form#reject")
    assert form["action"] == f"/labels/{draft_id}/vote" and form.select_one('input[name="value"]')["value"] == "-1"
    r = c.post(form["action"], data={"value": "-1", "next": form.select_one('input[name="next"]')["value"],
                                     "csrf_token": c.csrf})
    assert r.status_code == 200 and r.url.path.endswith("/labeling") and "/features/3/" in r.url.path
    assert lab.anon.get(f"/api/v1/labels/{draft_id}").json()["label"]["score"] == -1


def test_the_best_scoring_unvoted_draft_is_canonical_and_a_person_outranks_it(lab):
    lab.user("ada")
    with lab.session() as s:
        from app.store.labels import insert_label

        system = qa.system_account_id(s)
        low = insert_label(s, 1, 4, system, "output draft", "", ["auto"], "auto:output")
        high = insert_label(s, 1, 4, system, "input draft", "", ["auto"], "auto:input")
        s.commit()
        assert canonical_labels(s, 1, [4]) == {4: "input draft"}  # unscored: the newest
        qa.insert_label_score(s, low.id, 1, "embedding", 0.9, {}, [], ci=(0.8, 0.95))
        qa.insert_label_score(s, high.id, 1, "embedding", 0.6, {}, [], ci=(0.5, 0.7))
        s.commit()
        assert canonical_labels(s, 1, [4]) == {4: "output draft"}  # scored: the best one
    row = lab.anon.get(f"/api/v1{lab.feature_url(4)}/labels").json()["labels"][0]
    assert row["text"] == "output draft" and row["scores"]["embedding"]["ci_low"] == 0.8
    page = soup(lab.anon.get(f"{lab.feature_url(4)}/labels"))
    assert page.select_one("article.label-card.canonical .al-score .ci").get_text() == "[0.80–0.95]"
    _label(lab.api("ada"), lab, 4, "what ada says")
    with lab.session() as s:
        assert canonical_labels(s, 1, [4]) == {4: "what ada says"}


def test_an_edited_draft_loses_its_old_score_for_ranking(lab):
    lab.user("root", role="admin")
    with lab.session() as s:
        from app.store.labels import insert_label

        system = qa.system_account_id(s)
        a = insert_label(s, 1, 5, system, "draft a", "", ["auto"], "auto:output")
        b = insert_label(s, 1, 5, system, "draft b", "", ["auto"], "auto:input")
        s.commit()
        qa.insert_label_score(s, a.id, 1, "embedding", 0.9, {}, [])
        qa.insert_label_score(s, b.id, 1, "embedding", 0.6, {}, [])
        s.commit()
        a_id = a.id
    r = lab.api("root").patch(f"/api/v1/labels/{a_id}", json={"base_version": 1, "text": "draft a, edited"})
    assert r.status_code == 200, r.text
    with lab.session() as s:
        assert canonical_labels(s, 1, [5]) == {5: "draft b"}


def test_two_people_disagreeing_put_the_feature_in_the_second_opinion_queue(any_lab):
    lab = any_lab
    for name in ("ada", "bob", "cy"):
        lab.user(name)
    ada, bob = lab.api("ada"), lab.api("bob")
    first = _label(ada, lab, 2, "dates in March")
    _label(bob, lab, 2, "spring months")  # different labels backed by different people
    _label(ada, lab, 3, "dog names")
    _vote(bob, _label(bob, lab, 3, "Dog names ")["id"], 1)  # same text (case, spaces): agreement
    other = _label(ada, lab, 5, "rivers")
    _vote(bob, other["id"], -1)  # split votes
    _vote(ada, first["id"], 1)
    data = lab.anon.get(f"/api/v1/sources/{lab.source}/second-opinion").json()
    assert [it["index"] for it in data["items"]] == [2, 5]
    assert data["items"][0]["reason"] == "different labels" and data["items"][1]["reason"] == "split votes"
    backers = {lab_["text"]: lab_["backers"] for lab_ in data["items"][0]["labels"]}
    assert backers == {"dates in March": ["ada"], "spring months": ["bob"]}
    page = soup(lab.anon.get(f"/sources/{lab.source}/second-opinion"))
    assert [int(tr["data-index"]) for tr in page.select("tr.disagreement")] == [2, 5]
    assert page.select_one('link[rel="alternate"]')["href"] == f"/api/v1/sources/{lab.source}/second-opinion"
    # the flow over the queue skips features the asking person already has an opinion on
    c = lab.browser("cy")
    r = c.get(f"/sources/{lab.source}/label-next?queue=second-opinion")
    assert r.url.path == f"/sources/{lab.source}/features/2/labeling" and "queue=second-opinion" in str(r.url)
    assert lab.api("ada").get(f"/api/v1/sources/{lab.source}/label-next?queue=second-opinion").json()["index"] is None
    assert lab.anon.get(f"/api/v1/sources/{lab.source}/label-next?queue=nope").status_code == 422


def test_assigned_features_form_a_flow_and_the_source_page_shows_progress(lab):
    lab.user("root", role="admin")
    lab.user("ada")
    root = lab.browser("root")
    r = root.post(f"/sources/{lab.source}/assignments", data={"account": "ada", "features": "2-4,6",
                                                              "csrf_token": root.csrf})
    assert r.status_code == 200 and r.url.path == f"/sources/{lab.source}"
    assert lab.api("ada").post(f"/api/v1/sources/{lab.source}/assignments",
                               json={"account": "ada", "features": "1"}).status_code == 403
    bad = lab.api("root").post(f"/api/v1/sources/{lab.source}/assignments", json={"account": "ada", "features": "2-99"})
    assert bad.status_code == 422 and "2-99" in bad.json()["detail"]
    unknown = lab.api("root").post(f"/api/v1/sources/{lab.source}/assignments", json={"account": "zed", "features": "1"})
    assert unknown.status_code == 404 and "zed" in unknown.json()["detail"]
    ada = lab.api("ada")
    assert ada.get(f"/api/v1/sources/{lab.source}/label-next?assigned=me").json()["index"] == 2
    _label(ada, lab, 2, "mine")
    _label(lab.api("root"), lab, 3, "someone else's label does not decide it for ada")
    assert ada.get(f"/api/v1/sources/{lab.source}/label-next?assigned=me&after=2").json()["index"] == 3
    assert ada.get(f"/api/v1/sources/{lab.source}/label-next?assigned=ada&after=4").json()["index"] == 6
    assert lab.anon.get(f"/api/v1/sources/{lab.source}/label-next?assigned=me").status_code == 403
    page = soup(root.get(f"/sources/{lab.source}"))
    rows = {tr.select("td")[0].get_text(): [td.get_text(" ", strip=True) for td in tr.select("td")[1:]]
            for tr in page.select("#team table.team-progress tbody tr")}
    assert rows["ada"][:3] == ["1", "0", "1"] and rows["ada"][3].startswith("1 of 4")
    assert rows["root"][:3] == ["1", "0", "1"] and rows["root"][3] == "—"
    assert page.select_one("#team form.assign") is not None
    assert soup(lab.anon.get(f"/sources/{lab.source}")).select_one("#team form.assign") is None
    assert lab.api("root").delete(f"/api/v1/sources/{lab.source}/assignments/ada").json()["removed"] == 4


@pytest.mark.parametrize("spec", ["x", "3-1", "-2", ""])
def test_bad_feature_specs_name_the_problem(lab, spec):
    lab.user("root", role="admin")
    r = lab.api("root").post(f"/api/v1/sources/{lab.source}/assignments", json={"account": "root", "features": spec})
    assert r.status_code == 422 and "features" in r.json()["detail"]


def test_the_source_table_names_what_it_shows(lab):
    data = lab.anon.get(f"/api/v1/sources/{lab.source}/features").json()["data"]
    alive = [row for row in data if not row["dead"]]
    assert alive and all(row["fires_on"] and row["promotes"] for row in alive)
    assert all(row["fires_on"] == [] for row in data if row["dead"])
    heads = [th.get_text(strip=True) for th in soup(lab.anon.get(f"/sources/{lab.source}")).select("table.features th")]
    assert "Fires on" in heads and "Promotes" in heads and "Top tokens" not in heads


def test_export_and_import_carry_votes_and_assignments(make_lab):
    import json

    first = make_lab()
    first.user("root", role="admin")
    first.user("ada")
    label = _label(first.api("ada"), first, 2, "dates")
    _vote(first.api("root"), label["id"], -1)
    first.api("root").post(f"/api/v1/sources/{first.source}/assignments", json={"account": "ada", "features": "2-3"})
    body = first.anon.get(f"/api/v1/sources/{first.source}/labels/export").text
    lines = [json.loads(x) for x in body.splitlines()]
    assert [x["assignment"]["feature_index"] for x in lines if "assignment" in x] == [2, 3]
    assert [v["value"] for v in lines[0]["votes"]] == [-1] and lines[0]["text"] == "dates"

    second = make_lab()
    second.user("root", role="admin")
    bad = second.api("root").post("/api/v1/labels/import", content='{"assignment": {"source": "lab-sae"}}\n')
    assert bad.status_code == 422 and "line 1: assignment" in bad.json()["errors"][0]
    report = second.api("root").post("/api/v1/labels/import", content=body).json()
    assert (report["labels_added"], report["votes_added"], report["assignments_added"]) == (1, 1, 2)
    assert second.api("root").post("/api/v1/labels/import", content=body).json()["assignments_added"] == 0
    data = second.anon.get(f"/api/v1/sources/{second.source}/second-opinion").json()
    assert [it["index"] for it in data["items"]] == [2]  # ada's label, root's down vote: split votes survive
    assert second.api("root").get(f"/api/v1/sources/{second.source}/label-next?assigned=ada").json()["index"] == 3
