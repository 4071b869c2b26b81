"""`anonymous_read` off guards the whole app, not only labeling pages; every response carries security headers."""

from __future__ import annotations

from urllib.parse import quote

import pytest

HTML_PAGES = [
    "/",
    "/sources/{source}",
    "/sources/{source}/features/1",
    "/sources/{source}/features/1?tab=examples",
    "/sources/{source}/live",
    "/sources/{source}/features/1/test",
    "/steer",
    "/search?q=dogs",
    "/lists",
    "/account",
    "/-/nowhere",  # a 404 page lists the sources, so it is guarded too
]
JSON_PAGES = [
    "/api/v1",
    "/api/v1/sources/{source}",
    "/api/v1/sources/{source}/features",
    "/api/v1/sources/{source}/features/1",
    "/api/v1/sources/{source}/live?text=hi",
    "/api/v1/steer",
    "/api/v1/sources/{source}/features/1/labels",
    "/-/settings.json",
    "/openapi.json",
]
OPEN_PAGES = ["/login", "/register", "/-/health", "/static/js/app.js"]


@pytest.fixture
def closed_lab(make_lab):
    return make_lab(anonymous_read=False)


@pytest.mark.parametrize("path", HTML_PAGES)
def test_anonymous_html_is_sent_to_login_then_back(closed_lab, path):
    url = path.format(source=closed_lab.source)
    r = closed_lab.anon.get(url, follow_redirects=False)
    assert r.status_code == 303
    assert r.headers["location"] == f"/login?next={quote(url)}"
    closed_lab.user("ada")
    assert closed_lab.browser("ada").get(url, follow_redirects=False).status_code != 303


@pytest.mark.parametrize("path", JSON_PAGES)
def test_anonymous_json_gets_401_with_a_message(closed_lab, path):
    url = path.format(source=closed_lab.source)
    r = closed_lab.anon.get(url)
    assert r.status_code == 401
    assert "API key" in r.json()["detail"] and r.headers["www-authenticate"] == "Bearer"
    closed_lab.user("ada")
    assert closed_lab.api("ada").get(url).status_code != 401
    assert closed_lab.browser("ada").get(url).status_code != 401


def test_anonymous_writes_are_refused_before_reaching_routes(closed_lab):
    r = closed_lab.anon.post("/steer", data={"prompt": "hi"}, follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"] == "/login?next=/steer"
    assert closed_lab.anon.post("/api/v1/steer", json={"prompt": "hi"}).status_code == 401


@pytest.mark.parametrize("path", OPEN_PAGES)
def test_the_way_in_stays_open(closed_lab, path):
    assert closed_lab.anon.get(path, follow_redirects=False).status_code == 200


def test_logging_in_from_a_closed_server_returns_to_the_page(closed_lab):
    from tests.labels.helpers import meta_csrf

    closed_lab.user("ada")
    c = closed_lab.client()
    target = f"/sources/{closed_lab.source}"
    login = c.get(target)  # followed to the login form
    assert login.url.path == "/login"
    r = c.post("/login", data={"username": "ada", "password": "correct horse battery", "csrf_token": meta_csrf(login),
                               "next": login.url.params["next"]}, follow_redirects=False)
    assert r.headers["location"] == target
    assert c.get(target).status_code == 200


def test_anonymous_read_on_leaves_every_page_open(lab):
    for path in ["/", "/sources/{source}", "/sources/{source}/features/1", "/api/v1/sources/{source}", "/steer"]:
        assert lab.anon.get(path.format(source=lab.source), follow_redirects=False).status_code == 200, path


@pytest.mark.parametrize("path", ["/", "/sources/{source}/features/1", "/api/v1/sources/{source}", "/login",
                                  "/static/js/app.js", "/-/nowhere", "/-/health"])
def test_security_headers_on_every_response(lab, path):
    r = lab.anon.get(path.format(source=lab.source))
    csp = dict(part.strip().split(" ", 1) for part in r.headers["content-security-policy"].split(";"))
    assert csp["script-src"] == "'self'" and csp["frame-ancestors"] == "'none'" and csp["object-src"] == "'none'"
    assert r.headers["x-content-type-options"] == "nosniff"
    assert r.headers["referrer-policy"] == "same-origin"
    assert r.headers["x-frame-options"] == "DENY"


def test_security_headers_on_the_access_gates_answers(closed_lab):
    for r in (closed_lab.anon.get("/", follow_redirects=False), closed_lab.anon.get("/api/v1")):
        assert r.status_code in (303, 401)
        assert "script-src 'self'" in r.headers["content-security-policy"] and r.headers["x-frame-options"] == "DENY"


def test_api_docs_get_their_own_policy(lab):
    csp = lab.anon.get("/docs").headers["content-security-policy"]
    # Swagger UI and ReDoc come from this server's files: no CDN host, and no inline scripts either
    assert "https:" not in csp and "script-src 'self';" in csp and "frame-ancestors 'none'" in csp
