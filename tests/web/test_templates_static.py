"""Templates carry no CSS and no hand-built app URLs, so the Content-Security-Policy can refuse inline styles.

Static checks over templates/ (every template, rendered or not) plus a few rendered pages: no <style>, no
style attribute, one htmx-config, one account bar, shading by class, and style-src 'self' in the CSP."""

from __future__ import annotations

import re

import pytest
from bs4 import BeautifulSoup

from app.paths import TEMPLATES_DIR

TEMPLATES = sorted(p for p in TEMPLATES_DIR.rglob("*.html"))
# An attribute that points into the app written as a literal path or query ("/sources/…", "?page=2"), instead of
# url('route', …) / url_for('static', path=…) or a URL the page data carries.
LITERAL_URL = re.compile(r"""\b(href|action|src|hx-get|hx-post|hx-put|hx-patch|hx-delete|sse-connect)=["'][/?]""")
PAGES = ["/", "/sources/test-sae", "/sources/test-sae/features/1", "/sources/test-sae/live",
         "/sources/test-sae/features/1/test", "/steer", "/search?q=x", "/lists", "/login", "/register",
         "/sources/test-sae/features/1/labels", "/sources/test-sae/review", "/sources/nope"]


def _name(path) -> str:
    return str(path.relative_to(TEMPLATES_DIR))


def test_templates_exist():
    assert len(TEMPLATES) > 20 and any(_name(p) == "base.html" for p in TEMPLATES)


@pytest.mark.parametrize("template", TEMPLATES, ids=_name)
def test_template_has_no_css(template):
    text = template.read_text(encoding="utf-8")
    assert not re.search(r"<style\b", text, re.I), f"{_name(template)} has a <style> block: move it to static/css/app.css"
    assert not re.search(r"\sstyle=", text, re.I), f"{_name(template)} has a style attribute: use a class in app.css"


@pytest.mark.parametrize("template", TEMPLATES, ids=_name)
def test_template_builds_app_urls_by_route_name(template):
    found = [m.group(0) for m in LITERAL_URL.finditer(template.read_text(encoding="utf-8"))]
    assert not found, f"{_name(template)} hard-codes app URLs {found}: use url('route_name', …)"


def test_token_markup_python_emits_no_style():
    from app.http import token_html

    source = open(token_html.__file__, encoding="utf-8").read()
    assert "style=" not in source


@pytest.mark.parametrize("path", PAGES)
def test_rendered_pages_carry_no_inline_style(browse_client, path):
    response = browse_client.get(path)
    assert response.status_code in (200, 403, 404), response.text[:300]  # error pages are pages too
    csp = dict(part.strip().split(" ", 1) for part in response.headers["content-security-policy"].split(";"))
    assert csp["style-src"] == "'self'"
    doc = BeautifulSoup(response.text, "html.parser")
    assert doc.select("style") == [] and doc.select("[style]") == []
    assert [s["href"] for s in doc.select("link[rel=stylesheet]")] == ["http://testserver/static/css/app.css"]
    configs = doc.select('meta[name="htmx-config"]')
    assert len(configs) == 1 and '"includeIndicatorStyles": false' in configs[0]["content"]
    assert len(doc.select(".fb-account-bar")) == 1, "one account bar per page"


def test_steering_config_is_merged_into_the_one_htmx_config(browse_client):
    import json

    doc = BeautifulSoup(browse_client.get("/steer").text, "html.parser")
    (meta,) = doc.select('meta[name="htmx-config"]')
    config = json.loads(meta["content"])
    assert config["includeIndicatorStyles"] is False
    assert {"code": "422", "swap": True} in config["responseHandling"]


def test_feature_page_shades_tokens_by_class_and_has_one_breadcrumb(browse_client):
    doc = BeautifulSoup(browse_client.get("/sources/test-sae/features/1").text, "html.parser")
    spans = doc.select(".ex > span[data-v]")
    assert spans and all(any(re.fullmatch(r"a([0-9]|1[0-9]|20)", c) for c in s["class"]) for s in spans)
    assert all("a20" in s["class"] for s in doc.select(".example-group[data-kind=top] .ex > span.pk")[:1])
    site_links = [a["href"] for a in doc.select("header.topbar a")]
    assert not [h for h in site_links if h.startswith("/sources/")], "the source link is in the crumbs, not in the header too"
    assert len(doc.select(".crumbs")) == 1

