"""Labels, revisions, votes, comments, lists, the labeling flow, activity and search, through pages and JSON."""

from __future__ import annotations

from app.store.labels import canonical_labels
from tests.labels.helpers import soup


def _create(api, lab, index, text, **extra):
    r = api.post(f"/api/v1{lab.feature_url(index)}/labels", json={"text": text, **extra})
    assert r.status_code == 201, r.text
    return r.json()


def test_create_edit_history_diff_and_json_twin(lab):
    lab.user("ada")
    c = lab.browser("ada")
    r = c.post(f"{lab.feature_url(2)}/labels", data={"text": "dog names", "tags": "animals, names", "csrf_token": c.csrf})
    page = soup(r)
    assert r.url.path == f"{lab.feature_url(2)}/labels"
    card = page.select_one("section.fb-labels article.label-card.canonical")
    assert card.select_one(".label-text").get_text() == "dog names"
    assert [t.get_text() for t in card.select(".tag")] == ["animals", "names"]
    assert page.select_one('link[rel="alternate"][type="application/json"]')["href"] == f"/api/v1{lab.feature_url(2)}/labels"
    label_id = int(card["data-label-id"])
    r = c.post(f"/labels/{label_id}/edit", data={"text": "names of dogs", "description": "pets\nmostly dogs",
                                                   "tags": "animals", "base_version": "1", "csrf_token": c.csrf})
    page = soup(r)
    assert page.select_one("h1.label-title").get_text() == "names of dogs"
    revisions = page.select("ol.revisions li.revision")
    assert [li["data-version"] for li in revisions] == ["2", "1"]
    assert [e.get_text() for e in revisions[0].select("p.fb-diff ins")][:1] == ["names of dogs"] or \
        revisions[0].select("p.fb-diff ins")
    assert any(d.get_text() == "-names" for d in revisions[0].select("del"))
    twin = lab.anon.get(f"/api/v1/labels/{label_id}").json()
    assert twin["label"]["version"] == 2 and [r["version"] for r in twin["revisions"]] == [2, 1]
    assert twin["revisions"][0]["text_diff"] and twin["label"]["tags"] == ["animals"]
    # htmx asks for the history block only
    frag = lab.anon.get(f"/labels/{label_id}", headers={"HX-Request": "true"})
    assert "HX-Request" in frag.headers["vary"]
    assert soup(frag).select_one("html") is None and soup(frag).select_one("section#history") is not None


def test_stale_edit_gets_409_with_both_texts(lab):
    lab.user("ada")
    lab.user("root", role="admin")
    label = _create(lab.api("ada"), lab, 1, "first")
    assert lab.api("root").patch(f"/api/v1/labels/{label['id']}", json={"base_version": 1, "text": "admin's"}).status_code == 200
    r = lab.api("ada").patch(f"/api/v1/labels/{label['id']}", json={"base_version": 1, "text": "ada's late edit"})
    assert r.status_code == 409
    body = r.json()
    assert body["current"]["text"] == "admin's" and body["current"]["version"] == 2
    assert body["yours"]["text"] == "ada's late edit" and body["yours"]["base_version"] == 1
    c = lab.browser("ada")
    r = c.post(f"/labels/{label['id']}/edit", data={"text": "typed in the browser", "base_version": "1",
                                                    "csrf_token": c.csrf})
    assert r.status_code == 409
    page = soup(r)
    assert page.select_one(".fb-conflict .conflict-current").get_text() == "admin's"
    assert page.select_one(".fb-conflict .conflict-yours").get_text() == "typed in the browser"
    form = page.select_one("form.edit-label")
    assert form.select_one('input[name="text"]')["value"] == "typed in the browser"
    assert form.select_one('input[name="base_version"]')["value"] == "2"


def test_only_author_or_admin_edits_and_deletes(lab):
    lab.user("ada")
    lab.user("bob")
    lab.user("root", role="admin")
    label = _create(lab.api("ada"), lab, 1, "ada's")
    bob = lab.api("bob")
    assert bob.patch(f"/api/v1/labels/{label['id']}", json={"base_version": 1, "text": "x"}).status_code == 403
    assert bob.delete(f"/api/v1/labels/{label['id']}").status_code == 403
    page = soup(lab.browser("bob").get(f"/labels/{label['id']}"))
    assert page.select_one("form.edit-label") is None
    assert lab.api("root").delete(f"/api/v1/labels/{label['id']}").status_code == 200
    assert lab.anon.get(f"/api/v1/labels/{label['id']}").status_code == 404


def test_votes_change_canonical_ties_go_to_newest(lab):
    for name in ("ada", "bob", "cy"):
        lab.user(name)
    old = _create(lab.api("ada"), lab, 3, "older")
    new = _create(lab.api("bob"), lab, 3, "newer")
    with lab.session() as s:
        source_id = lab.anon.get(f"/api/v1{lab.feature_url(3)}/labels").json()["source"]["id"]
        assert canonical_labels(s, source_id, [3, 4]) == {3: "newer"}
    for voter in ("ada", "cy"):
        assert lab.api(voter).put(f"/api/v1/labels/{old['id']}/vote", json={"value": 1}).json()["score"] >= 1
    assert lab.api("cy").put(f"/api/v1/labels/{old['id']}/vote", json={"value": 1}).json()["score"] == 2  # one vote each
    assert lab.api("cy").put(f"/api/v1/labels/{old['id']}/vote", json={"value": -1}).json()["score"] == 0  # changeable
    with lab.session() as s:
        assert canonical_labels(s, source_id, [3]) == {3: "newer"}  # 0 vs 0: newest wins
        lab.api("bob").put(f"/api/v1/labels/{old['id']}/vote", json={"value": 1})
        assert canonical_labels(s, source_id, None) == {3: "older"}
    assert lab.api("ada").put(f"/api/v1/labels/{old['id']}/vote", json={"value": 5}).status_code == 422
    c = lab.browser("cy")
    r = c.post(f"/labels/{new['id']}/vote", data={"value": "1", "csrf_token": c.csrf}, headers={"HX-Request": "true"})
    cards = soup(r).select("section.fb-labels article.label-card")
    assert [card.select_one(".label-text").get_text() for card in cards] == ["newer", "older"]  # 1 vs 1: newest
    assert cards[0].select_one("button.vote-up.voted") is not None
    assert cards[1].select_one("button.vote-down.voted") is not None


def test_canonical_labels_many_indices(make_lab):
    lab = make_lab()
    lab.user("ada")
    api = lab.api("ada")
    for i in range(8):
        _create(api, lab, i, f"label {i}")
    with lab.session() as s:
        got = canonical_labels(s, 1, list(range(8)) + list(range(100, 12000)))
    assert got == {i: f"label {i}" for i in range(8)}


def test_comments_lists_and_activity(lab):
    lab.user("ada")
    lab.user("bob")
    ada = lab.browser("ada")
    ada.post(f"{lab.feature_url(4)}/comments", data={"body": "fires on commas?", "csrf_token": ada.csrf})
    page = soup(lab.anon.get(f"{lab.feature_url(4)}/labels"))
    assert page.select_one("ul.comments li.comment .body").get_text() == "fires on commas?"
    r = ada.post("/lists", data={"source": lab.source, "name": "punctuation", "notes": "to review",
                                 "csrf_token": ada.csrf})
    slug = r.url.path.rsplit("/", 1)[1]
    ada.post(f"/lists/{slug}/items", data={"index": "4", "note": "commas", "csrf_token": ada.csrf})
    ada.post(f"/lists/{slug}/items", data={"index": "6", "note": "", "csrf_token": ada.csrf})
    shared = soup(lab.anon.get(f"/lists/{slug}"))  # anyone with the link
    assert shared.select_one("h1.list-name").get_text() == "punctuation"
    assert [td.get_text() for td in shared.select("tr.list-item td.note")] == ["commas", ""]
    bob = lab.api("bob")
    assert bob.put(f"/api/v1/lists/{slug}/items/5", json={"note": "mine now"}).status_code == 403
    assert lab.api("ada").put(f"/api/v1/lists/{slug}/items/99", json={}).status_code == 422
    events = lab.anon.get(f"/api/v1/sources/{lab.source}/activity").json()["events"]
    assert [e["kind"] for e in events] == ["list_created", "commented"]
    page = soup(lab.anon.get(f"/sources/{lab.source}/activity"))
    assert page.select_one("ul.activity li.event-commented .summary").get_text() == "fires on commas?"


def test_next_unlabeled_flow_with_range_and_list(lab):
    lab.user("ada")
    api = lab.api("ada")
    _create(api, lab, 0, "human label")
    draft = _create(api, lab, 1, "machine draft", method="auto:offline")
    nxt = lab.anon.get(f"/api/v1/sources/{lab.source}/label-next").json()
    assert nxt["index"] == 1  # a machine draft alone does not count as labeled
    c = lab.browser("ada")
    r = c.get(f"/sources/{lab.source}/label-next", follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"] == f"{lab.feature_url(1)}/labeling"
    page = soup(c.get(r.headers["location"]))
    accept = page.select_one("form#accept")
    assert accept["action"] == f"/labels/{draft['id']}/vote"
    next_url = accept.select_one('input[name="next"]')["value"]
    assert page.select_one("a#skip")["href"] == next_url
    r = c.post(accept["action"], data={"value": "1", "next": next_url, "csrf_token": c.csrf})  # accept = upvote
    assert r.url.path == f"{lab.feature_url(2)}/labeling"
    r = c.get(f"/sources/{lab.source}/label-next?min_density=0.04&max_density=0.05", follow_redirects=False)
    assert r.headers["location"].startswith(f"{lab.feature_url(4)}/labeling?")
    slug = api.post("/api/v1/lists", json={"source": lab.source, "name": "todo"}).json()["slug"]
    api.put(f"/api/v1/lists/{slug}/items/6", json={})
    r = c.get(f"/sources/{lab.source}/label-next?list={slug}", follow_redirects=False)
    assert r.headers["location"] == f"{lab.feature_url(6)}/labeling?list={slug}"
    done = c.get(f"/sources/{lab.source}/label-next?list={slug}&after=6")
    assert soup(done).select_one("p.done") is not None
    data = soup(c.get(f"{lab.feature_url(2)}/labeling")).select_one("script#labeling-data")
    assert '"index": 2' in data.string or '"index":2' in data.string


def test_search_sqlite_fts(lab):
    lab.user("ada")
    api = lab.api("ada")
    _create(api, lab, 1, "French cooking words", description="cuisine and recipes")
    _create(api, lab, 2, "Python keywords")
    assert [r["text"] for r in lab.anon.get("/api/v1/search", params={"q": "recipes"}).json()["results"]] == \
        ["French cooking words"]
    assert lab.anon.get("/api/v1/search", params={"q": 'pyth"on AND ( NEAR'}).json()["results"] == []
    assert [r["text"] for r in lab.anon.get("/api/v1/search", params={"q": "pyth"}).json()["results"]] == \
        ["Python keywords"]  # prefix match on the last word
    page = soup(lab.anon.get("/search", params={"q": "cooking"}))
    assert [a.get_text() for a in page.select("#results li.result a.label-text")] == ["French cooking words"]
    frag = soup(lab.anon.get("/search", params={"q": "cooking"}, headers={"HX-Request": "true"}))
    assert frag.select_one("form.search") is None and frag.select_one("#results li.result") is not None
    label_id = api.get("/api/v1/search", params={"q": "python"}).json()["results"][0]["id"]
    api.patch(f"/api/v1/labels/{label_id}", json={"base_version": 1, "text": "Rust keywords"})
    assert lab.anon.get("/api/v1/search", params={"q": "python"}).json()["results"] == []
    assert len(lab.anon.get("/api/v1/search", params={"q": "rust"}).json()["results"]) == 1


def test_feature_panel_renders_with_feature_page_context(lab):
    from starlette.requests import Request

    from app.http.respond import templates

    lab.user("ada")
    _create(lab.api("ada"), lab, 5, "the panel label")
    request = Request({"type": "http", "method": "GET", "path": "/", "headers": [], "query_string": b"",
                       "app": lab.app, "state": {}})
    from app.services.labels import feature_labels_data

    with lab.app.state.sessionmaker() as session:
        panel_data = feature_labels_data(session, None, lab.source, 5)
    html = templates.env.get_template("labels/_feature_panel.html").render(
        request=request, labels_panel=panel_data, source={"name": lab.source, "id": 1}, feature={"index": 5})
    from bs4 import BeautifulSoup

    panel = BeautifulSoup(html, "html.parser")
    assert panel.select_one(".canonical-label strong").get_text() == "the panel label"
    assert panel.select_one("section.fb-labels")["hx-headers"]


def test_validation_messages_name_the_problem(lab):
    lab.user("ada")
    api = lab.api("ada")
    r = api.post(f"/api/v1{lab.feature_url(1)}/labels", json={"text": "x" * 1001})
    assert r.status_code == 422 and "1001 characters" in r.json()["detail"]
    r = api.post(f"/api/v1{lab.feature_url(1)}/labels", json={"text": "nul\x00byte"})
    assert r.status_code == 422 and "NUL" in r.json()["detail"]
    r = api.post(f"/api/v1{lab.feature_url(1)}/labels", json={"text": "ok", "method": "robot"})
    assert r.status_code == 422 and "auto:<name>" in r.json()["detail"]
    assert api.post(f"/api/v1{lab.feature_url(99)}/labels", json={"text": "ok"}).status_code == 404
    assert api.post("/api/v1/sources/nope/features/1/labels", json={"text": "ok"}).status_code == 404


def test_feature_page_shows_the_panel(lab):
    lab.user("ada")
    _create(lab.api("ada"), lab, 1, "shown on the feature page")
    r = lab.browser("ada").get(lab.feature_url(1))
    if r.status_code != 200:
        import pytest

        pytest.skip(f"the browse feature page is not serving factory features yet ({r.status_code})")
    page = soup(r)
    assert page.select_one(".fb-feature-panel .canonical-label strong").get_text() == "shown on the feature page"
    assert page.select_one(".fb-feature-panel form.new-label") is not None
