"""Issue 17 pages: a feature's matches and co-active features, the compare page and its JSON twin, the source
page's compare links and feature map data. Matches are written through app/store/compare.py."""

from __future__ import annotations

import numpy as np
import pytest
from bs4 import BeautifulSoup

from app.store import compare as qc
from tests.fixtures import _engine_of, add_source


def soup(response) -> BeautifulSoup:
    assert response.status_code == 200, response.text[:500]
    return BeautifulSoup(response.text, "html.parser")


@pytest.fixture
def compare_client(make_app_client):
    """narrow (16 features, blocks.1; 3 dead), wide (64, blocks.1), deep (16, blocks.3); narrow #0 splits into wide
    #10 and #11; narrow #1 matches deep #5 (corr only: other hook); narrow #2 has no match above 0.3."""
    client = make_app_client()
    ids = {name: add_source(client, name=name, d_sae=d, hook_name=hook, dead=dead, with_examples=False, seed=k)
           for k, (name, d, hook, dead) in enumerate([("narrow", 16, "blocks.1.hook_resid_post", {3}),
                                                       ("wide", 64, "blocks.1.hook_resid_post", set()),
                                                       ("deep", 16, "blocks.3.hook_resid_post", set())])}
    engine = _engine_of(client)
    f = np.array
    qc.write_matches(engine, ids["narrow"], ids["wide"], f([0, 0, 1, 2]), f([10, 11, 4, 7]), f([0.81, 0.62, 0.9, 0.2]),
                     f([0.77, 0.7, 0.95, 0.1]))
    qc.write_matches(engine, ids["wide"], ids["narrow"], f([10, 11]), f([0, 0]), f([0.81, 0.62]), f([0.77, 0.7]))
    qc.write_matches(engine, ids["narrow"], ids["deep"], f([1]), f([5]), f([0.55]), f([np.nan]))
    qc.write_coactivation(engine, ids["narrow"], f([0, 0]), f([4, 9]), f([300, 120]))
    qc.write_map(engine, ids["narrow"], "pca", np.arange(32, dtype=np.float32).reshape(16, 2))
    return client


def test_feature_page_shows_matches_per_source_and_the_split(compare_client):
    from app.services import accounts, labels

    with compare_client.app.state.sessionmaker() as session:
        ada = accounts.create_account(session, "ada", "correct horse battery staple", "labeler")
        labels.create_label(session, ada, "wide", 10, "commas in lists")
    page = soup(compare_client.get("/sources/narrow/features/0"))
    wide = page.select_one(".matches li.source-match[data-source=wide]")
    assert wide.select_one("a.compare-link")["href"] == "/sources/narrow/compare/wide"
    assert wide.select_one("a.match").text == "#10" and wide.select_one("a.match")["href"] == "/sources/wide/features/10"
    assert wide.select_one(".measures").text == "corr 0.81 / cos 0.77"
    assert wide.select_one(".match-label").text == "“commas in lists”"
    split = wide.select_one(".split")
    assert "splits into 2 features" in split.text
    assert [a.text for a in split.select("a.split-match")] == ["#10", "#11"]
    coactive = page.select(".coactive a.coactive-feature")
    assert [a.text for a in coactive] == ["4", "9"]


def test_feature_page_corr_only_across_hooks_and_no_split_below_threshold(compare_client):
    page = soup(compare_client.get("/sources/narrow/features/1"))
    deep = page.select_one(".matches li.source-match[data-source=deep]")
    assert deep.select_one(".measures").text == "corr 0.55 / cos —"
    assert deep.select_one(".split") is None
    assert page.select_one(".matches li.source-match[data-source=wide] .split") is None  # only #4 is above 0.3
    page = soup(compare_client.get("/sources/narrow/features/5"))
    assert "no other source was precomputed" in page.select_one(".matches").text
    data = compare_client.get("/api/v1/sources/narrow/features/0").json()
    assert data["matches"][0]["source"] == "wide" and data["matches"][0]["split"] is True
    assert data["coactive"][0] == {"index": 4, "count": 300, "share": pytest.approx(300 / data["n_active"]),
                                   "label": None, "url": "/sources/narrow/features/4"}


def test_compare_page_summary_plot_and_lists(compare_client):
    page = soup(compare_client.get("/sources/narrow/compare/wide"))
    assert page.select_one('link[rel=alternate][type="application/json"]')["href"] == "/api/v1/sources/narrow/compare/wide"
    rows = {(tr["data-direction"], tr["data-measure"]): tr for tr in page.select(".compare-summary tr[data-direction]")}
    # narrow has 15 live features: #0 (0.81) and #1 (0.9) reach 0.5
    corr = rows[("a→b", "corr")]
    assert corr.select_one(".matched-fraction")["data-value"] == str(round(2 / 15, 4))
    assert float(corr.select_one(".mean-max").text) == pytest.approx((0.81 + 0.9 + 0.2) / 15, abs=1e-3)
    assert ("a→b", "cos") in rows  # same hook: cosines too
    assert len(page.select("figure.match-curve svg polyline.line")) == 4
    best = page.select(".best-matched tbody tr")
    assert [tr.select_one("a.feature-link").text for tr in best] == ["#1", "#0", "#2"]
    assert best[0].select_one("a.other-link")["href"] == "/sources/wide/features/4"
    unmatched = [a.text for a in page.select(".unmatched a.feature-link")]
    assert unmatched[-1] == "#2" and "#0" not in unmatched and "#3" not in unmatched  # no match first; 3 is dead
    assert len(unmatched) == 13


def test_compare_json_twin_and_threshold(compare_client):
    data = compare_client.get("/api/v1/sources/narrow/compare/wide", params={"threshold": 0.85}).json()
    assert data["threshold"] == 0.85 and data["measured"] is True and data["has_cos"] is True
    summary = {(s["direction"], s["measure"]): s for s in data["summaries"]}
    assert summary[("a→b", "corr")]["matched"] == 1 and summary[("b→a", "corr")]["matched"] == 0
    curve = next(c for c in data["curves"] if c["name"] == "corr a→b")
    assert curve["fractions"][0] == round(3 / 15, 4) and curve["thresholds"][-1] == 1.0
    deep = compare_client.get("/api/v1/sources/narrow/compare/deep").json()
    assert deep["has_cos"] is False and len(deep["curves"]) == 2
    assert compare_client.get("/api/v1/sources/narrow/compare/wide", params={"threshold": 3}).status_code == 422
    assert compare_client.get("/api/v1/sources/narrow/compare/narrow").status_code == 422
    missing = compare_client.get("/api/v1/sources/narrow/compare/nope")
    assert missing.status_code == 404 and "nope" in missing.text


def test_compare_form_redirects_and_source_page_links(compare_client):
    moved = compare_client.get("/compare", params={"a": "narrow", "b": "deep"}, follow_redirects=False)
    assert moved.status_code == 303 and moved.headers["location"] == "/sources/narrow/compare/deep"
    page = soup(compare_client.get("/sources/narrow"))
    links = [a["href"] for a in page.select(".compare-panel a.compare-link")]
    assert links == ["/sources/narrow/compare/wide", "/sources/narrow/compare/deep"]
    assert page.select_one(".feature-map")["data-map-url"] == "/api/v1/sources/narrow/map"
    assert page.select_one(".feature-map canvas") is not None
    assert "nothing to compare" in soup(compare_client.get("/sources/deep")).select_one(".compare-panel").text


def test_map_json(compare_client):
    data = compare_client.get("/api/v1/sources/narrow/map").json()
    assert data["method"] == "pca" and data["x"][:2] == [0.0, 2.0] and data["y"][:2] == [1.0, 3.0]
    assert len(data["density"]) == 16 and data["density"][3] == 0
    assert data["feature_url"] == "/sources/narrow/features/" and data["labels"] == {}
    assert compare_client.get("/api/v1/sources/wide/map").json()["method"] is None
