"""Every swappable URL, with and without HX-Request; boosted and history-restore requests get the full page."""

from __future__ import annotations

import pytest
from bs4 import BeautifulSoup

SWAPPABLE = [
    # (url, block root selector)
    ("/sources/test-sae?page=2&sort=density&order=desc", "section#feature-table"),
    ("/sources/test-sae?hide_dead=1&max_density=5", "section#feature-table"),
    ("/sources/test-sae/features/1?context=5", "section#examples"),
    ("/sources/test-sae/features/1?context=full", "section#examples"),
    ("/sources/test-sae/features/1", "section#examples"),
]
FULL_PAGE_HEADERS = [
    {},
    {"HX-Request": "true", "HX-Boosted": "true"},
    {"HX-Request": "true", "HX-History-Restore-Request": "true"},
]


@pytest.mark.parametrize("url,root", SWAPPABLE)
def test_htmx_request_gets_only_the_block(browse_client, url, root):
    r = browse_client.get(url, headers={"HX-Request": "true"})
    assert r.status_code == 200 and "HX-Request" in r.headers["vary"]
    doc = BeautifulSoup(r.text, "html.parser")
    assert doc.select_one("html") is None and doc.select_one("header.topbar") is None
    top = [el for el in doc.children if getattr(el, "name", None)]
    assert len(top) == 1 and top[0].select_one(root) is None and doc.select_one(root) is top[0]


@pytest.mark.parametrize("headers", FULL_PAGE_HEADERS, ids=["plain", "boosted", "history-restore"])
@pytest.mark.parametrize("url,root", SWAPPABLE)
def test_other_requests_get_the_full_page(browse_client, url, root, headers):
    r = browse_client.get(url, headers=headers)
    assert r.status_code == 200 and "HX-Request" in r.headers["vary"]
    doc = BeautifulSoup(r.text, "html.parser")
    assert doc.select_one("html head title") and doc.select_one("header.topbar")
    assert len(doc.select(root)) == 1


def test_block_matches_the_same_region_of_the_full_page(browse_client):
    url = "/sources/test-sae/features/1?context=5"
    block = BeautifulSoup(browse_client.get(url, headers={"HX-Request": "true"}).text, "html.parser")
    full = BeautifulSoup(browse_client.get(url).text, "html.parser")
    assert str(block.select_one("#examples")) == str(full.select_one("#examples"))


def test_swap_links_point_at_swappable_urls(browse_client):
    page = BeautifulSoup(browse_client.get("/sources/test-sae/features/1").text, "html.parser")
    toggles = page.select(".context-toggle a[hx-get]")
    assert [a["data-context"] for a in toggles] == ["5", "16", "full"]
    assert all(a["hx-target"] == "#examples" and a["hx-get"] == a["href"] for a in toggles)
    source = BeautifulSoup(browse_client.get("/sources/test-sae").text, "html.parser")
    nxt = source.select_one(".pager a[rel=next]")
    assert nxt["hx-get"] == nxt["href"] and nxt["hx-target"] == "#feature-table"
    assert source.select_one("form.table-controls")["hx-get"] == "/sources/test-sae"


def test_not_found_is_a_full_page_even_for_htmx(browse_client):
    r = browse_client.get("/sources/test-sae/features/999", headers={"HX-Request": "true"})
    assert r.status_code == 404 and "HX-Request" in r.headers["vary"]
