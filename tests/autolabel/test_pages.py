"""Autolabel pages in the browser sense: review queue (accept / edit / reject), needs review, feature scores,
semantic label search; each with its JSON twin and its htmx block."""

from __future__ import annotations

import pytest
from bs4 import BeautifulSoup

from app.services.autolabel.runner import AutolabelConfig, AutolabelRunner
from app.store import autolabel as q
from tests.autolabel.conftest import embed_missing, needs_embed
from tests.autolabel.factories import FEATURE_WORDS

HX = {"HX-Request": "true"}


def soup(response) -> BeautifulSoup:
    return BeautifulSoup(response.text, "html.parser")


def _draft_all(lab, scorers=()):
    url = lab.app.state.settings.resolved_database_url
    AutolabelRunner(AutolabelConfig(database_url=url, source="words-sae", scorers=scorers, progress=False)).run()


def _pending(lab):
    return lab.anon.get("/api/v1/sources/words-sae/review").json()


def test_review_queue_page_block_and_json(lab):
    _draft_all(lab)
    page = lab.anon.get("/sources/words-sae/review")
    assert page.status_code == 200 and "HX-Request" in page.headers["vary"]
    doc = soup(page)
    assert len(doc.select("article.al-draft")) == 12
    assert doc.select_one('link[rel="alternate"][type="application/json"]')["href"].startswith(
        "/api/v1/sources/words-sae/review")
    assert not doc.select("form.review-accept") and doc.select_one('a[href^="/login"]')
    assert doc.select_one("article.al-draft .al-unscored")
    # the evidence beside each decision: the feature's top examples, the peak marked on its word
    for article in doc.select("article.al-draft"):
        examples = article.select("ol.review-evidence li.example")
        assert 1 <= len(examples) <= 3
        index = int(article.select_one("a.feature-link").get_text().lstrip("#"))
        if index < len(FEATURE_WORDS):
            assert all(li.select_one(".pk").get_text().strip() == FEATURE_WORDS[index] for li in examples)
    block = lab.anon.get("/sources/words-sae/review", headers=HX)
    assert block.text.lstrip().startswith('<section id="review-queue"') and "<html" not in block.text
    data = _pending(lab)
    assert data["total"] == 12 and {d["method"] for d in data["drafts"]} == {"auto:input", "auto:output"}
    assert lab.anon.get("/sources/nope/review").status_code == 404


def test_accept_edit_reject(lab):
    _draft_all(lab)
    lab.user("rev")
    browser = lab.browser("rev")
    doc = soup(browser.get("/sources/words-sae/review"))
    ids = [int(a["data-label-id"]) for a in doc.select("article.al-draft")]
    assert doc.select_one(f"#draft-{ids[0]} form.review-accept button")
    accept = browser.post(f"/labels/{ids[0]}/review", data={"action": "accept", "source": "words-sae",
                                                            "csrf_token": browser.csrf})
    assert accept.status_code == 200 and accept.url.path == "/sources/words-sae/review"
    edited = browser.post(f"/labels/{ids[1]}/review", headers=HX,
                          data={"action": "edit", "text": "the city of Paris", "source": "words-sae",
                                "csrf_token": browser.csrf})
    assert edited.status_code == 200 and edited.text.lstrip().startswith('<section id="review-queue"')
    browser.post(f"/labels/{ids[2]}/review", data={"action": "reject", "source": "words-sae",
                                                    "csrf_token": browser.csrf})
    assert _pending(lab)["total"] == 9
    labels = lab.anon.get("/api/v1/sources/words-sae/features/0/labels").json()["labels"]
    by_id = {lab_["id"]: lab_ for lab_ in labels}
    assert by_id[ids[0]]["score"] == 1 and by_id[ids[1]]["score"] == -1
    human = [lab_ for lab_ in labels if lab_["method"] == "human"]
    assert human[0]["text"] == "the city of Paris" and human[0]["author"] == "rev"
    assert f"#{ids[1]}" in human[0]["description"]
    assert labels[0]["id"] == ids[0]  # the accepted draft is the feature's canonical label
    bad = browser.post(f"/labels/{human[0]['id']}/review", data={"action": "accept", "csrf_token": browser.csrf})
    assert bad.status_code == 422 and "not a machine draft" in bad.text
    assert lab.anon.post(f"/labels/{ids[3]}/review", data={"action": "accept"},
                         follow_redirects=False).status_code == 303  # anonymous: to the login page


def test_review_through_the_json_api(lab):
    _draft_all(lab)
    lab.user("bot")
    api = lab.api("bot")
    draft = _pending(lab)["drafts"][0]
    reply = api.post(f"/api/v1/labels/{draft['id']}/review", json={"action": "reject"})
    assert reply.status_code == 200 and reply.json()["draft"]["score"] == -1
    assert api.post(f"/api/v1/labels/{draft['id']}/review", json={"action": "maybe"}).status_code == 422


def test_needs_review_and_feature_scores(lab):
    _draft_all(lab)
    with lab.session() as session:
        draft = q.pending_drafts(session, 1)[0][0]
        q.insert_label_score(session, draft.id, 1, "embedding", 0.31, {"activating": [], "non_activating": []},
                             [{"ref": {"example_id": 1}, "activating": True, "similarity": 0.1, "text": "x"}])
        q.insert_label_score(session, draft.id, 1, "detection", None, {}, [], status="failed", error="HTTP 500")
        session.commit()
    page = lab.anon.get("/sources/words-sae/needs-review")
    rows = soup(page).select("tr.low-label")
    assert [int(r["data-label-id"]) for r in rows] == [draft.id]
    assert rows[0].select_one('.al-score.low[data-method="embedding"]').text.strip() == "embedding AUC 0.31"
    assert rows[0].select_one('.al-score.failed[data-method="detection"]')["title"] == "HTTP 500"
    block = lab.anon.get("/sources/words-sae/needs-review?threshold=0.2", headers=HX)
    assert not soup(block).select("tr.low-label")
    data = lab.anon.get("/api/v1/sources/words-sae/needs-review?method=embedding&threshold=0.5").json()
    assert [lab_["id"] for lab_ in data["labels"]] == [draft.id]
    assert lab.anon.get("/api/v1/sources/words-sae/needs-review?method=vibes").status_code == 422
    scores = soup(lab.anon.get(f"/sources/words-sae/features/{draft.feature_index}/scores"))
    card = scores.select_one(f"article#label-{draft.id}")
    assert card.select_one('details.score-details[data-method="embedding"] tr.activating')
    twin = lab.anon.get(f"/api/v1/sources/words-sae/features/{draft.feature_index}/scores").json()
    scored = next(lab_ for lab_ in twin["labels"] if lab_["id"] == draft.id)
    assert scored["scores"]["embedding"]["details"][0]["similarity"] == 0.1


@needs_embed
def test_scores_from_a_run_show_on_the_queue_and_semantic_search_finds_labels(lab):
    _draft_all(lab, scorers=("embedding",))
    doc = soup(lab.anon.get("/sources/words-sae/review"))
    chips = doc.select('article.al-draft .al-score[data-method="embedding"]')
    assert len(chips) == 12
    found = lab.anon.get("/api/v1/sources/words-sae/label-search?q=musical instrument").json()
    assert found["results"][0]["feature_index"] == 3  # piano
    block = lab.anon.get("/sources/words-sae/label-search?q=a hot drink", headers=HX)
    first = soup(block).select_one("li.result")
    assert "coffee" in first.select_one(".label-text").text


def test_semantic_search_says_when_the_model_is_missing(lab, monkeypatch):
    from app.ml import embed

    if embed_missing() is None:
        monkeypatch.setattr(embed, "model_dir", lambda: None)
    doc = soup(lab.anon.get("/sources/words-sae/label-search?q=dogs"))
    assert "featureboard[embed]" in doc.select_one("p.unavailable").text


@pytest.mark.parametrize("path", ["/sources/words-sae/review", "/sources/words-sae/needs-review",
                                  "/sources/words-sae/features/0/scores", "/sources/words-sae/label-search"])
def test_pages_link_their_json_twin(lab, path):
    doc = soup(lab.anon.get(path))
    href = doc.select_one('link[rel="alternate"][type="application/json"]')["href"]
    assert lab.anon.get(href).status_code == 200
