"""Feature pages are cached by the data they show: strong ETags, 304 on If-None-Match, and a write invalidates
exactly the pages it changes (app/http/conditional.py, app/services/page_cache.py, migration 0011's triggers)."""

from __future__ import annotations

from tests.labels.helpers import soup


def _etag(client, url: str, **headers) -> str:
    r = client.get(url, headers=headers)
    assert r.status_code == 200, r.text
    assert r.headers["etag"].startswith('"') and not r.headers["etag"].startswith("W/")
    return r.headers["etag"]


def _neighbours(client, lab, index: int) -> set[int]:
    return {n["index"] for n in client.get(f"/api/v1{lab.feature_url(index)}").json()["neighbours"]}


def _unrelated_pair(client, lab) -> tuple[int, int]:
    """Two live features neither of which shows the other as a neighbour (its label would be on the page)."""
    for a in range(1, 8):
        for b in range(1, 8):
            if a != b and b not in _neighbours(client, lab, a) and a not in _neighbours(client, lab, b):
                return a, b
    raise AssertionError("every pair of features are neighbours")


def test_etag_round_trip_page_block_and_json(any_lab):
    lab, c = any_lab, any_lab.anon
    url = lab.feature_url(2)
    r = c.get(url)
    assert r.status_code == 200
    assert {"cookie", "hx-request"} <= {v.strip().lower() for v in r.headers["vary"].split(",")}
    etag = r.headers["etag"]
    again = c.get(url, headers={"If-None-Match": etag})
    assert again.status_code == 304 and again.content == b"" and again.headers["etag"] == etag
    assert c.get(url, headers={"If-None-Match": f'"other", W/{etag}'}).status_code == 304
    assert c.get(url).text == r.text  # served from the cache, byte for byte

    block = c.get(url, headers={"HX-Request": "true"})
    assert block.status_code == 200 and block.headers["etag"] != etag and "<html" not in block.text
    assert c.get(url, headers={"HX-Request": "true", "If-None-Match": block.headers["etag"]}).status_code == 304

    api = c.get(f"/api/v1{url}")
    assert api.status_code == 200 and api.json()["index"] == 2
    assert c.get(f"/api/v1{url}", headers={"If-None-Match": api.headers["etag"]}).status_code == 304
    assert c.get(url, headers={"If-None-Match": api.headers["etag"]}).status_code == 200


def test_label_write_changes_exactly_that_features_etag(any_lab):
    lab, c = any_lab, any_lab.anon
    lab.user("ada")
    api = lab.api("ada")
    a, b = _unrelated_pair(c, lab)
    before = {i: (_etag(c, lab.feature_url(i)), _etag(c, f"/api/v1{lab.feature_url(i)}")) for i in (a, b)}

    r = api.post(f"/api/v1{lab.feature_url(a)}/labels", json={"text": "cached label"})
    assert r.status_code == 201, r.text
    page_a = c.get(lab.feature_url(a), headers={"If-None-Match": before[a][0]})
    assert page_a.status_code == 200 and "cached label" in page_a.text
    assert c.get(f"/api/v1{lab.feature_url(a)}").json()["label"] == "cached label"
    assert _etag(c, f"/api/v1{lab.feature_url(a)}") != before[a][1]
    assert (_etag(c, lab.feature_url(b)), _etag(c, f"/api/v1{lab.feature_url(b)}")) == before[b]

    # A page that shows the feature as a neighbour shows its label too, so it changes with it.
    shows_a = next((i for i in range(1, 8) if a in _neighbours(c, lab, i)), None)
    if shows_a is not None:
        tag = _etag(c, lab.feature_url(shows_a))
        api.post(f"/api/v1{lab.feature_url(a)}/labels", json={"text": "second label"})
        assert _etag(c, lab.feature_url(shows_a)) != tag


def test_votes_comments_and_list_items_invalidate(lab):
    lab.user("ada")
    browser = lab.browser("ada")
    url = lab.feature_url(3)
    tag = _etag(browser, url)
    r = browser.post(f"{url}/comments", data={"body": "a comment to see", "csrf_token": browser.csrf})
    assert r.status_code in (200, 303), r.text
    page = browser.get(url, headers={"If-None-Match": tag})
    assert page.status_code == 200 and "a comment to see" in page.text

    tag = page.headers["etag"]
    label = lab.api("ada").post(f"/api/v1{url}/labels", json={"text": "votable"}).json()
    tag = _etag(browser, url)
    assert browser.post(f"/labels/{label['id']}/vote", data={"value": "-1", "csrf_token": browser.csrf}
                        ).status_code in (200, 303)
    assert _etag(browser, url) != tag


def test_logged_in_and_anonymous_pages_differ(lab):
    lab.user("ada")
    anon, ada = lab.anon, lab.browser("ada")
    url = lab.feature_url(2)
    anon_page, ada_page = anon.get(url), ada.get(url)
    assert anon_page.headers["etag"] != ada_page.headers["etag"]
    assert soup(ada_page).select_one(".fb-account-bar .fb-me").text == "ada"
    assert soup(anon_page).select_one(".fb-account-bar .fb-login") is not None
    # The anonymous page's validator never answers 304 to the logged-in browser, nor the other way round.
    assert ada.get(url, headers={"If-None-Match": anon_page.headers["etag"]}).status_code == 200
    assert anon.get(url, headers={"If-None-Match": ada_page.headers["etag"]}).status_code == 200
    assert soup(ada.get(url)).select_one(".fb-account-bar .fb-me").text == "ada"  # cached per account


def test_each_browser_gets_its_own_csrf_token_from_the_cache(lab):
    """Two sessions of one account share a cached rendering, each with its own CSRF token put back in."""
    lab.user("ada")
    first, second = lab.browser("ada"), lab.browser("ada")
    url = lab.feature_url(2)

    def tokens(response) -> set[str]:
        return {i["value"] for i in soup(response).select('input[name="csrf_token"]')}

    one, two = first.get(url), second.get(url)
    assert tokens(one) == {first.csrf} and tokens(two) == {second.csrf} and first.csrf != second.csrf
    assert one.headers["etag"] != two.headers["etag"]
    assert first.get(url, headers={"If-None-Match": one.headers["etag"]}).status_code == 304
    assert second.get(url, headers={"If-None-Match": one.headers["etag"]}).status_code == 200
    assert "\x00" not in two.text


def test_anonymous_browsers_share_a_rendering_with_their_own_tokens(lab):
    import json

    from app.http.auth import PRELOGIN_COOKIE
    from app.http.signing import csrf_token_for

    first, second = lab.client(), lab.client()
    url = lab.feature_url(2)

    def token(response) -> str:
        return json.loads(soup(response).select_one(".fb-labels")["hx-headers"])["X-CSRF-Token"]

    one = first.get(url)
    hits = lab.app.state.page_cache.stats()["hits"]
    two = second.get(url)
    assert lab.app.state.page_cache.stats()["hits"] == hits + 1
    for client, page in ((first, one), (second, two)):
        assert token(page) == csrf_token_for(lab.app.state.settings.secret_key, client.cookies[PRELOGIN_COOKIE])
    assert token(one) != token(two) and one.headers["etag"] != two.headers["etag"]
    assert first.get(url, headers={"If-None-Match": one.headers["etag"]}).status_code == 304
    assert second.get(url, headers={"If-None-Match": one.headers["etag"]}).status_code == 200


def test_label_write_rereads_labels_not_examples(lab, monkeypatch):
    """Examples, histograms and logits never change while the source exists: a new data version (a label) or
    another visitor re-reads the labels only."""
    from app.store import browse as q

    calls = []
    real = q.feature_examples
    monkeypatch.setattr(q, "feature_examples", lambda *a, **k: calls.append(a[2]) or real(*a, **k))
    lab.user("ada")
    url = lab.feature_url(4)
    first = lab.anon.get(url)
    lab.api("ada").post(f"/api/v1{url}/labels", json={"text": "after the examples"})
    again = lab.anon.get(url)
    ada = lab.browser("ada").get(url)
    assert calls == [4]
    assert "after the examples" in again.text and "after the examples" in ada.text
    examples = soup(first).select("#examples .example")
    assert examples and [str(e) for e in soup(again).select("#examples .example")] == [str(e) for e in examples]


def test_pages_of_a_source_being_written_are_not_cached(lab):
    from sqlalchemy import update

    from app.store.models import Source

    url = lab.feature_url(2)
    assert "etag" in lab.anon.get(url).headers
    with lab.session() as s:
        s.execute(update(Source).where(Source.name == lab.source).values(status="running"))
        s.commit()
    assert "etag" not in lab.anon.get(url).headers
    with lab.session() as s:
        s.execute(update(Source).where(Source.name == lab.source).values(status="complete"))
        s.commit()
    lab.anon.get(url)  # the first view after the change reads the neighbours again
    assert "etag" in lab.anon.get(url).headers
