"""Hostile text is stored exactly as typed and rendered inert on every page that shows user text.

Each payload goes into a username, a label (text, description, tag), a revision, a comment, a list name, notes
and item note; then every page showing them is checked: no new script elements, no event-handler attributes, no
javascript: URLs, the text shown verbatim where it belongs, and JSON embedded in pages parses back to it.
"""

from __future__ import annotations

import json

import pytest

from tests.labels.factories import PASSWORD
from tests.labels.helpers import soup

PAYLOADS = [
    "<script>alert(1)</script>",
    '"><img src=x onerror=alert(1)>',
    "javascript:alert(document.cookie)",
    "</script><script>alert('x')</script><!--",
    "' onmouseover='alert(1)' x='",
    "<svg/onload=alert(1)>{{ 7*7 }}{% raw %}",
    "<a href=\"javascript:alert(1)\">click</a>\u202egnp.exe",
    "ctrl\x01\x08\x1b[31mred\x7f\x0b",
    "W" * 990,  # near the 1000-character limit, no break opportunities
]
SAFE_SCRIPT_SRC = ("/static/", "http://testserver/static/")


def _username(payload: str) -> str:
    name = "".join(ch for ch in payload if ch >= " " and ch != "\x7f")[:60].strip()
    return name or "ctrl-user"


def assert_inert(response, n_inline_scripts: int = 0):
    assert response.status_code in (200, 409, 422), response.text[:300]
    page = soup(response)
    inline = [s for s in page.select("script") if not s.get("src")]
    assert len(inline) == n_inline_scripts, [str(s)[:120] for s in inline]
    for s in page.select("script[src]"):
        assert s["src"].startswith(SAFE_SCRIPT_SRC)
    for tag in page.find_all(True):
        for attr, value in tag.attrs.items():
            assert not attr.lower().startswith("on"), f"event handler {attr} on <{tag.name}>"
            if attr in ("href", "src", "action", "formaction"):
                assert not str(value).strip().lower().startswith("javascript:"), f"{attr}={value!r}"
    for tag in page.select("img, svg, iframe, object, embed"):
        raise AssertionError(f"markup from user text became an element: {tag}")
    return page


@pytest.mark.parametrize("payload", PAYLOADS, ids=[f"p{i}" for i in range(len(PAYLOADS))])
def test_hostile_text_stored_as_typed_and_inert(lab, payload):
    name = _username(payload)
    lab.user(name, role="admin")
    api = lab.api(name)
    label = api.post(f"/api/v1{lab.feature_url(1)}/labels",
                     json={"text": payload, "description": payload, "tags": [payload[:50]], "method": "human"}).json()
    edited = api.patch(f"/api/v1/labels/{label['id']}", json={"base_version": 1, "text": payload + " v2",
                                                              "description": payload, "tags": [payload[:50]]}).json()
    assert edited["text"] == payload + " v2"
    api.put(f"/api/v1/labels/{label['id']}/vote", json={"value": 1})
    draft = api.post(f"/api/v1{lab.feature_url(2)}/labels", json={"text": payload, "method": "auto:x"}).json()
    assert draft["text"] == payload, "stored as typed"
    api.post(f"/api/v1{lab.feature_url(1)}/comments", json={"body": payload})
    flist = api.post("/api/v1/lists", json={"source": lab.source, "name": payload[:200], "notes": payload}).json()
    api.put(f"/api/v1/lists/{flist['slug']}/items/1", json={"note": payload})
    assert api.get(f"/api/v1/labels/{label['id']}").json()["revisions"][1]["text"] == payload

    visible = payload.replace("\r", "")
    browser = lab.browser(name, password=PASSWORD)

    page = assert_inert(browser.get(f"{lab.feature_url(1)}/labels"))
    assert page.select_one("article.label-card .label-text").get_text() == visible + " v2"
    assert page.select_one("article.label-card .label-description").get_text() == visible
    assert page.select_one("ul.comments .body").get_text() == visible
    assert page.select_one("ul.comments .author").get_text() == name

    page = assert_inert(browser.get(f"/labels/{label['id']}"))
    assert page.select_one("h1.label-title").get_text() == visible + " v2"
    assert page.select_one('form.edit-label input[name="text"]')["value"] == payload + " v2"

    stale = browser.post(f"/labels/{label['id']}/edit", data={"text": payload + " mine", "base_version": "1",
                                                              "csrf_token": browser.csrf})
    page = assert_inert(stale)
    assert page.select_one(".conflict-yours").get_text() == visible + " mine"

    page = assert_inert(browser.get(f"{lab.feature_url(2)}/labeling"), n_inline_scripts=1)  # the JSON data block
    embedded = json.loads(page.select_one("script#labeling-data").string)
    assert embedded["draft"] == payload and payload in embedded["labels"]
    raw = page.select_one("script#labeling-data").string
    assert "<" not in raw and ">" not in raw, "JSON in a page escapes angle brackets"

    page = assert_inert(lab.anon.get(f"/sources/{lab.source}/activity"))
    assert (visible + " v2")[:300] in [s.get_text() for s in page.select("ul.activity .summary")]  # a snippet

    page = assert_inert(lab.anon.get("/search", params={"q": payload}))
    page = assert_inert(lab.anon.get("/search", params={"q": "v2"}))
    assert [a.get_text() for a in page.select("li.result a.label-text")] == [visible + " v2"]

    page = assert_inert(lab.anon.get("/lists"))
    assert page.select_one("a.list-name").get_text() == visible[:200]
    page = assert_inert(lab.anon.get(f"/lists/{flist['slug']}"))
    assert page.select_one("p.list-notes").get_text() == visible
    assert page.select_one("tr.list-item td.note").get_text() == visible

    assert_inert(browser.get("/account"))
    page = assert_inert(browser.get("/admin/accounts"))
    assert name in [td.get_text() for td in page.select("tr.account-row td.fb-user-text")]

    from urllib.parse import quote

    bad = lab.anon.get(f"/sources/{quote(payload[:40], safe='')}/activity")
    assert bad.status_code == 404
    assert_inert_status(bad)


def assert_inert_status(response):
    page = soup(response)
    assert not [s for s in page.select("script") if not s.get("src")]
    assert not page.select("img, svg")


def test_register_with_hostile_username_is_inert(lab):
    c = lab.client()
    from tests.labels.helpers import meta_csrf

    name = '<img src=x onerror="alert(1)">'
    r = c.post("/register", data={"username": name, "password": PASSWORD, "next": "/account",
                                  "csrf_token": meta_csrf(c.get("/register"))})
    page = assert_inert(r)
    assert page.select_one("h1").get_text() == name
    r = c.post("/register", data={"username": "bad\x00name", "password": PASSWORD,
                                  "csrf_token": meta_csrf(c.get("/register"))})
    assert r.status_code == 422 and "control characters" in soup(r).select_one(".error-message").get_text()
