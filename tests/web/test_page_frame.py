"""The frame of every page: HEAD on every GET page, HTML errors for what a browser can reach (422 included), a
favicon, API docs from this server's files, one breadcrumb, models by name, health figures with definitions."""

from __future__ import annotations

import pytest
from bs4 import BeautifulSoup

from tests.fixtures import add_source

PAGES = ["/", "/sources/test-sae", "/sources/test-sae/features/1", "/sources/test-sae/live", "/steer", "/search",
         "/lists", "/login", "/register", "/sources/test-sae/activity", "/sources/test-sae/review",
         "/sources/test-sae/features/1/labeling", "/sources/test-sae/features/1/labels", "/docs", "/redoc",
         "/-/health", "/favicon.ico", "/api/v1/sources/test-sae"]


@pytest.mark.parametrize("path", PAGES)
def test_head_is_answered_like_get_without_a_body(browse_client, path):
    get, head = browse_client.get(path), browse_client.head(path)
    assert head.status_code == get.status_code and head.content == b""
    assert head.headers["content-type"] == get.headers["content-type"]


def test_every_get_page_route_answers_head(browse_client):
    """Every page route the app registers (a parameter filled from the factory source) answers HEAD, never 405."""
    values = {"source": "test-sae", "index": "1", "label_id": "1", "slug": "none", "run_id": "1"}
    for route in browse_client.app.routes:
        if "GET" not in getattr(route, "methods", ()) or route.path.endswith("/stream"):
            continue
        path = route.path
        for name, value in values.items():
            path = path.replace("{" + name + "}", value)
        if "{" in path:
            continue
        assert browse_client.head(path).status_code != 405, route.path


@pytest.mark.parametrize("path,status", [("/sources/test-sae/features/abc", 422), ("/sources/nowhere", 404),
                                         ("/sources/test-sae/features/99999", 404), ("/no/such/page", 404),
                                         ("/sources/test-sae?page=x", 422)])
def test_browser_errors_are_html_pages(browse_client, path, status):
    r = browse_client.get(path, headers={"Accept": "text/html"})
    assert r.status_code == status and r.headers["content-type"].startswith("text/html")
    doc = BeautifulSoup(r.text, "html.parser")
    assert doc.select_one(".error-page h1") and doc.select_one("header.topbar") and doc.select_one(".error-message").text


def test_favicon_and_docs_from_this_server(browse_client):
    icon = browse_client.get("/favicon.ico")
    assert icon.status_code == 200 and icon.headers["content-type"] == "image/x-icon" and icon.content[:4] == b"\0\0\1\0"
    for path in ("/docs", "/redoc"):
        html = browse_client.get(path).text
        doc = BeautifulSoup(html, "html.parser")
        sources = [s.get("src", "") for s in doc.select("script")] + [s["href"] for s in doc.select("link[href]")]
        assert sources and all(s.startswith(("/", "http://testserver/")) for s in sources), sources
        assert not [s for s in doc.select("script") if not s.get("src")], "no inline script"
        for asset in sources:
            assert browse_client.get(asset).status_code == 200, asset
    csp = browse_client.get("/redoc").headers["content-security-policy"]
    assert "http" not in csp and "script-src 'self';" in csp


def test_one_breadcrumb_and_the_model_by_name(fresh_browse_client, tokenizer_dir):
    add_source(fresh_browse_client, name="hub-sae", model_name="google/gemma-2-2b", d_sae=4, with_examples=False)
    for path, trail in (("/sources/test-sae", ["Sources", "test-sae"]),
                        ("/sources/test-sae/features/1", ["Sources", "test-sae", "Feature 1"]),
                        ("/sources/test-sae/live", ["Sources", "test-sae", "Live"])):
        doc = BeautifulSoup(fresh_browse_client.get(path).text, "html.parser")
        assert len(doc.select(".crumbs")) == 1, path
        assert [li.text for li in doc.select("nav.crumbs li")] == trail
        assert not [a for a in doc.select("header.topbar a") if a["href"].startswith("/sources/")], path
    home = BeautifulSoup(fresh_browse_client.get("/").text, "html.parser")
    local = home.select_one(".source-card[data-source=test-sae] .source-meta code")
    assert local.text == tokenizer_dir.name and local["title"] == str(tokenizer_dir)  # a folder: its name
    hub = home.select_one(".source-card[data-source=hub-sae] .source-meta code")
    assert hub.text == "google/gemma-2-2b"
    data = fresh_browse_client.get("/api/v1/sources/test-sae").json()["source"]
    assert data["model_name"] == str(tokenizer_dir) and data["model_display"] == tokenizer_dir.name


def test_health_figures_use_the_stored_keys_with_names_units_and_definitions(fresh_browse_client):
    stored = {"l0": 24.95, "explained_variance": 0.902, "ce_loss_clean": 4.188, "ce_loss_sae": 4.338,
              "ce_loss_zero_ablation": 8.112, "ce_recovered": 0.9618, "dead": 27, "dense": 31, "alive": 997,
              "dense_threshold": 0.1, "mse": 0.17, "health_tokens": 4063, "health_contexts": 32}
    add_source(fresh_browse_client, name="precomputed", d_sae=4, health=stored, with_examples=False)
    doc = BeautifulSoup(fresh_browse_client.get("/sources/precomputed").text, "html.parser")
    panel = doc.select_one(".health-panel")
    shown = {d["data-key"]: d.select_one("dd").text for d in panel.select("dl.health > div")}
    assert shown == {"L0": "24.95", "explained_variance": "90.2 %", "mse": "0.17", "ce_recovered": "96.2 %",
                     "ce_clean": "4.188", "ce_spliced": "4.338", "ce_zero_ablation": "8.112", "alive": "997",
                     "dead": "27", "dense": "31", "dense_threshold": "10 %"}
    names = {d["data-key"]: d.select_one("dt .term-name").text for d in panel.select("dl.health > div")}
    assert names["ce_spliced"] == "CE loss with SAE" and names["ce_recovered"] == "Fraction of CE loss recovered"
    assert panel.select_one("[data-key=ce_clean] .unit").text == "(nats)"
    assert panel.select_one("[data-key=L0] .unit").text == "(features / token)"
    for item in panel.select("dl.health > div"):  # each name is a focusable button described by its definition
        button = item.select_one("button.term-name")
        assert len(item.select_one("#" + button["aria-describedby"]).text) > 20
    assert "4,063 tokens" in panel.select_one(".health-note").text
    metrics = fresh_browse_client.get("/api/v1/sources/precomputed").json()["source"]["metrics"]
    assert {m["key"]: m["stored_key"] for m in metrics}["ce_spliced"] == "ce_loss_sae"


def test_add_to_list_from_the_feature_page(make_settings):
    from app.http.app import create_app
    from tests.labels.conftest import SECRET, build_lab

    lab = build_lab(create_app(make_settings(secret_key=SECRET)))
    try:
        lab.user("ada")
        made = lab.api("ada").post("/api/v1/lists", json={"source": lab.source, "name": "keepers", "notes": ""})
        assert made.status_code == 201, made.text
        anon = BeautifulSoup(lab.anon.get(lab.feature_url(2)).text, "html.parser")
        assert "Log in" in anon.select_one("#add-to-list").text
        ada = lab.browser("ada")
        page = BeautifulSoup(ada.get(lab.feature_url(2)).text, "html.parser")
        form = page.select_one("#add-to-list form")
        assert form.select_one("button").text.split() == ["+", "keepers"]
        fields = {i["name"]: i["value"] for i in form.select("input[type=hidden]")}
        r = ada.post(form["action"], data=fields, follow_redirects=False)
        assert r.status_code == 303 and r.headers["location"] == lab.feature_url(2)
        again = BeautifulSoup(ada.get(lab.feature_url(2)).text, "html.parser").select_one("#add-to-list button")
        assert again.has_attr("disabled") and again.text.split() == ["✓", "in", "keepers"]
        items = lab.anon.get(f"/api/v1/lists/{made.json()['slug']}").json()["items"]
        assert [it["index"] for it in items] == [2]
    finally:
        lab.close()
