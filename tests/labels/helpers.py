"""HTML helpers shared by the labeling tests."""

from __future__ import annotations

from bs4 import BeautifulSoup


def soup(response) -> BeautifulSoup:
    return BeautifulSoup(response.text, "html.parser")


def meta_csrf(response) -> str:
    tag = soup(response).select_one('meta[name="csrf-token"]')
    assert tag is not None, "page has no csrf-token meta tag"
    return tag["content"]
