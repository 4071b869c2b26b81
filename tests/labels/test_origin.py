"""Origin/Referer on state-changing requests, on top of the CSRF token (rule in app/http/origin.py)."""

from __future__ import annotations

import pytest


@pytest.fixture
def ada(lab):
    lab.user("ada")
    return lab.browser("ada")


def _label(lab, client, headers=None, **data):
    return client.post(f"{lab.feature_url(1)}/labels", data={"text": "x", **data}, headers=headers or {},
                       follow_redirects=False)


@pytest.mark.parametrize("header, value", [
    ("Origin", "https://evil.example"),
    ("Origin", "null"),
    ("Origin", "http://testserver.evil.example"),
    ("Origin", "https://testserver"),  # same host, other scheme
    ("Origin", "http://testserver:8080"),  # same host, other port
    ("Origin", "not a url \u202e".encode()),  # raw UTF-8 bytes in a header
    ("Referer", "https://evil.example/page?x=1"),
    ("Referer", "javascript:alert(1)"),
])
def test_foreign_origin_is_refused_even_with_a_valid_token(lab, ada, header, value):
    r = _label(lab, ada, {header: value, "Accept": "application/json"}, csrf_token=ada.csrf)
    assert r.status_code == 403
    assert "Cross-origin request refused" in r.json()["detail"] and header in r.json()["detail"]


@pytest.mark.parametrize("headers", [{"Origin": "http://testserver"}, {"Origin": "http://testserver:80"},
                                     {"Referer": "http://testserver/sources/lab-sae/features/1"}, {}])
def test_same_origin_or_no_header_with_a_token_passes(lab, ada, headers):
    assert _label(lab, ada, headers, csrf_token=ada.csrf).status_code == 303


def test_same_origin_still_needs_the_token(lab, ada):
    assert _label(lab, ada, {"Origin": "http://testserver"}).status_code == 403


def test_no_header_with_a_session_needs_a_token_even_where_anonymous_posts_are_allowed(lab, ada):
    # /api/v1/steer accepts anonymous requests; a logged-in browser's cookie would make the run its own.
    r = ada.post("/api/v1/steer", json={"prompt": "hi", "features": []})
    assert r.status_code == 403 and "CSRF" in r.json()["detail"]
    assert ada.post("/api/v1/steer", json={"prompt": "hi", "features": []},
                    headers={"X-CSRF-Token": ada.csrf}).status_code != 403
    assert lab.anon.post("/api/v1/steer", json={"prompt": "hi", "features": []}).status_code != 403


def test_api_keys_are_not_subject_to_origin(lab):
    lab.user("bob")
    api = lab.api("bob")
    r = api.post(f"/api/v1{lab.feature_url(2)}/labels", json={"text": "from a script"},
                 headers={"Origin": "https://notebook.example"})
    assert r.status_code == 201
    bad_key = lab.client()
    bad_key.headers["Authorization"] = "Bearer fbk_not-a-real-key"
    r = bad_key.post(f"/api/v1{lab.feature_url(2)}/labels", json={"text": "x"},
                     headers={"Origin": "https://notebook.example"})
    assert r.status_code == 403, "an invalid key does not exempt a request from the Origin check"


def test_trusted_origins_and_https(make_lab):
    lab = make_lab(trusted_origins=["https://fb.example.org"])
    lab.user("ada")
    c = lab.browser("ada")
    assert _label(lab, c, {"Origin": "https://fb.example.org"}, csrf_token=c.csrf).status_code == 303
    assert _label(lab, c, {"Origin": "https://fb.example.org:8443"}, csrf_token=c.csrf).status_code == 403
    secure = lab.browser("ada", base_url="https://testserver")
    assert _label(lab, secure, {"Origin": "https://testserver"}, csrf_token=secure.csrf).status_code == 303
    assert _label(lab, secure, {"Origin": "http://testserver"}, csrf_token=secure.csrf).status_code == 403


def test_login_form_from_another_site_is_refused(lab):
    from tests.labels.factories import PASSWORD
    from tests.labels.helpers import meta_csrf

    lab.user("ada")
    c = lab.client()
    token = meta_csrf(c.get("/login"))
    r = c.post("/login", data={"username": "ada", "password": PASSWORD, "csrf_token": token},
               headers={"Origin": "https://evil.example"})
    assert r.status_code == 403 and "Cross-origin" in r.text
