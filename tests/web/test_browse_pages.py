"""Home, source and feature pages over factory rows, asserted with CSS selectors."""

from __future__ import annotations

import pytest
from bs4 import BeautifulSoup

from app.store import browse as browse_queries
from tests.fixtures import add_source
from tests.ml.factories import encode

FEATURE = "/sources/test-sae/features"


def soup(response) -> BeautifulSoup:
    return BeautifulSoup(response.text, "html.parser")


@pytest.fixture
def fake_labels(monkeypatch):
    labels = {1: "dog words", 7: "numbers", 40: "code"}

    def canonical_labels(session, source_id, indices=None):
        return {i: t for i, t in labels.items() if indices is None or i in set(indices)}

    monkeypatch.setattr(browse_queries, "_canonical_labels", canonical_labels)
    return labels


def test_home_lists_sources_with_health_and_links(browse_client):
    page = soup(browse_client.get("/"))
    card = page.select_one(".source-card[data-source=test-sae]")
    assert card.select_one("h2 a")["href"] == "/sources/test-sae"
    assert card.select_one("[data-key=L0] dd").text == "12.5"
    assert card.select_one("[data-key=ce_recovered] dd").text == "94 %"
    assert card.select_one("[data-key=dead] dd").text == "3"
    assert page.select_one("link[rel=alternate][type='application/json']")["href"] == "/api/v1"
    assert "No model loaded" in page.select_one(".model-line").text


def test_home_without_sources_says_how_to_add_one(make_app_client):
    page = soup(make_app_client().get("/"))
    assert page.select_one(".empty code").text == "featureboard precompute"


def test_source_page_health_panel_and_density_plot(browse_client):
    page = soup(browse_client.get("/sources/test-sae"))
    assert page.select_one(".health-panel [data-key=explained_variance] dd").text == "81 %"
    svg = page.select_one(".density-hist svg")
    assert len(svg.select("rect.bar")) == 40
    assert page.select_one(".dead-count").text == "3 dead"
    assert page.select_one("link[rel=alternate]")["href"] == "/api/v1/sources/test-sae"


def test_source_page_renders_unknown_health_keys(fresh_browse_client):
    add_source(fresh_browse_client, name="odd", d_sae=4, health={"L0": 3, "kl_div": 0.25, "per_layer": [1, 2]},
                    with_examples=False)
    page = soup(fresh_browse_client.get("/sources/odd"))
    assert page.select_one("[data-key=kl_div] dd").text == "0.25"
    assert page.select_one("[data-key=per_layer] code").text == "[1, 2]"


def test_feature_table_pages_and_sorts(browse_client):
    page = soup(browse_client.get("/sources/test-sae"))
    rows = page.select("table.features tbody tr")
    assert [int(r["data-index"]) for r in rows] == list(range(50))
    assert page.select_one("tr[data-index='3']")["class"] == ["dead"]
    next_href = page.select_one(".pager a[rel=next]")["href"]
    page2 = soup(browse_client.get(next_href))
    assert [int(r["data-index"]) for r in page2.select("table.features tbody tr")] == list(range(50, 64))
    assert page2.select_one(".pager a[rel=next]") is None

    by_density = soup(browse_client.get("/sources/test-sae?sort=density&order=desc"))
    first = by_density.select("table.features tbody tr")
    assert first[0]["data-index"] == "5"  # the dense one
    header = by_density.select_one("th[aria-sort]")  # on the header cell (axe: aria-sort is not allowed on a link)
    assert header.text.startswith("Density") and header["aria-sort"] == "descending"
    assert by_density.select("th a[aria-sort]") == []


def test_feature_table_filters(browse_client):
    shown = lambda url: {int(r["data-index"]) for r in soup(browse_client.get(url)).select("table.features tbody tr")}  # noqa: E731
    assert {3, 10} <= shown("/sources/test-sae")
    assert not {3, 10} & shown("/sources/test-sae?hide_dead=1")
    assert 5 not in shown("/sources/test-sae?max_density=10")
    assert 5 in shown("/sources/test-sae?max_density=")
    bad = browse_client.get("/sources/test-sae?max_density=lots")
    assert bad.status_code == 400 and "'lots'" in soup(bad).select_one(".error-message").text
    bad = browse_client.get("/api/v1/sources/test-sae?max_density=lots")
    assert bad.status_code == 400 and "'lots'" in bad.json()["detail"]


def test_feature_table_labels_filter_and_sort(browse_client, fake_labels):
    page = soup(browse_client.get("/sources/test-sae"))
    assert page.select_one("tr[data-index='7'] td.label").text == "numbers"
    assert page.select_one("tr[data-index='8'] td.label").text == "—"
    labeled = soup(browse_client.get("/sources/test-sae?label=labeled"))
    assert [int(r["data-index"]) for r in labeled.select("tbody tr")] == [1, 7, 40]
    unlabeled = soup(browse_client.get("/sources/test-sae?label=unlabeled&per_page=100"))
    assert len(unlabeled.select("tbody tr")) == 61
    by_label = soup(browse_client.get("/sources/test-sae?sort=label"))
    assert [int(r["data-index"]) for r in by_label.select("tbody tr")][:4] == [1, 7, 40, 0]


def test_jump_and_random(browse_client):
    jump = browse_client.get("/sources/test-sae/jump?index=17", follow_redirects=False)
    assert jump.status_code == 303 and jump.headers["location"] == f"{FEATURE}/17"
    missing = browse_client.get("/sources/test-sae/jump?index=64")
    assert missing.status_code == 404
    assert " ".join(soup(missing).select_one(".range").text.split()) == "Features of test-sae go from 0 to 63."
    for _ in range(5):
        r = browse_client.get("/sources/test-sae/random", follow_redirects=False)
        index = int(r.headers["location"].rsplit("/", 1)[1])
        assert r.status_code == 303 and index not in {3, 10, 63} and 0 <= index < 64


def test_feature_page_header_stats_plots_logits_neighbours(browse_client):
    page = soup(browse_client.get(f"{FEATURE}/1"))
    assert page.select_one("h1").text.strip() == "Feature 1"
    nav = page.select_one(".feature-nav")
    assert nav.select_one("a[rel=prev]")["href"] == f"{FEATURE}/0"
    assert nav.select_one("a[rel=next]")["href"] == f"{FEATURE}/2"
    assert nav.select_one("a.random")["href"] == "/sources/test-sae/random"
    assert nav.select_one("a.steer")["href"] == "/steer?source=test-sae&feature=1"
    assert nav.select_one("a.json")["href"] == "/api/v1/sources/test-sae/features/1"
    assert page.select_one("[data-stat=density] dd").text.endswith("%")
    assert len(page.select(".act-hist svg rect.bar")) == 50
    assert page.select(".logit-hist svg rect.bar.neg")
    assert len(page.select(".logit-list.pos tr")) == 5 and page.select_one(".logit-list.neg td.num").text.startswith("-")
    neighbours = page.select("a.neighbour")
    assert neighbours and neighbours[0]["href"].startswith(f"{FEATURE}/")
    assert page.select_one(".dead-notice") is None


def test_feature_page_first_and_last_have_no_prev_next(browse_client):
    assert soup(browse_client.get(f"{FEATURE}/0")).select_one(".feature-nav a[rel=prev]") is None
    assert soup(browse_client.get(f"{FEATURE}/63")).select_one(".feature-nav a[rel=next]") is None


def test_examples_top_then_intervals_with_shading_and_peak(browse_client):
    page = soup(browse_client.get(f"{FEATURE}/1"))
    groups = page.select(".example-group")
    assert [g["data-kind"] for g in groups] == ["top", "interval", "interval", "interval"]
    assert [g["data-bin"] for g in groups[1:]] == ["2", "1", "0"]  # strongest interval first
    assert groups[1].select_one(".share").text == "contains 23.3 %"
    for example in page.select(".example"):
        peaks = example.select(".ex > span.pk")
        assert len(peaks) == 1 and peaks[0]["tabindex"] in ("0", "-1") and float(peaks[0]["data-v"]) > 0
        assert peaks[0]["title"] == peaks[0]["data-v"] and "(peak)" in peaks[0]["aria-label"]
    # one tab stop for all examples (the first peak; the arrow keys move it), not one per example
    assert [s["tabindex"] for s in page.select(".ex > span[tabindex]")].count("0") == 1
    assert page.select_one(".example .ex > span.pk")["tabindex"] == "0"
    shaded = page.select(".ex > span[style]")
    assert all(0 <= float(s["style"].split(":")[1]) <= 1 for s in shaded)
    assert len(page.select_one(".example .ex").select("span")) <= 33  # ±16 by default


def test_example_text_is_escaped_and_readable(fresh_browse_client, tokenizer_dir):
    hostile = "<script>alert('x')</script> & \"caf\u00e9\"\n"
    ids = encode(tokenizer_dir, hostile)
    add_source(fresh_browse_client, name="hostile", model_name=str(tokenizer_dir), d_sae=2, token_ids=ids,
                    context_len=len(ids))
    html = fresh_browse_client.get("/sources/hostile/features/0?context=full").text
    assert "<script>alert" not in html
    page = BeautifulSoup(html, "html.parser")
    assert not page.select(".ex script")
    first = page.select_one(".example .ex")
    # é is split over two byte tokens here: each shows its lone byte rather than a replacement character.
    expected = hostile.replace("\n", "↵").replace("\u00e9", "\\xc3\\xa9")
    assert "".join(s.text for s in first.select("span")) == expected


def test_context_toggle_and_bad_context(browse_client):
    narrow = soup(browse_client.get(f"{FEATURE}/1?context=5"))
    assert narrow.select_one("#examples")["data-context"] == "5"
    assert narrow.select_one(".context-toggle a[aria-current]")["data-context"] == "5"
    assert all(len(ex.select("span")) <= 11 for ex in narrow.select(".ex"))
    full = soup(browse_client.get(f"{FEATURE}/1?context=full"))
    assert all(len(ex.select("span")) == 40 for ex in full.select(".ex"))
    bad = browse_client.get(f"{FEATURE}/1?context=7")
    assert bad.status_code == 400 and "'7'" in soup(bad).select_one(".error-message").text
    bad = browse_client.get(f"/api/v1{FEATURE}/1?context=7")
    assert bad.status_code == 400 and "'7'" in bad.json()["detail"]


def test_duplicate_windows_are_folded(browse_client):
    # Factory interval examples reuse 4 contexts; the full window of a reused context is the same text.
    page = soup(browse_client.get(f"{FEATURE}/2?context=full"))
    dup = page.select(".example .dup")
    data = browse_client.get(f"/api/v1{FEATURE}/2?context=full").json()
    folded = [ex["count"] for g in data["groups"] for ex in g["examples"] if ex["count"] > 1]
    assert [d.text for d in dup] == [f"×{n}" for n in folded]
    assert sum(len(g["examples"]) for g in data["groups"]) + sum(n - 1 for n in folded) == 8 + 9


def test_dead_feature_says_so(browse_client):
    page = soup(browse_client.get(f"{FEATURE}/3"))
    assert "This feature is dead" in page.select_one(".dead-notice").text
    assert not page.select(".example")
    assert page.select_one("#examples p.muted").text.startswith("No examples: the feature never fired")
    assert page.select(".logit-list.pos tr")  # weights-based panels still shown


def test_tokens_fall_back_to_ids_without_a_tokenizer(fresh_browse_client):
    add_source(fresh_browse_client, name="no-tok", model_name="/nowhere/model", d_sae=4)
    page = soup(fresh_browse_client.get("/sources/no-tok/features/0"))
    assert all(s.text.startswith("#") for s in page.select(".ex span"))
    assert "tokenizer" in page.select_one("#examples").text


def test_not_found_pages_name_what_exists(browse_client):
    r = browse_client.get("/sources/nope/features/1")
    assert r.status_code == 404
    page = soup(r)
    assert "'nope'" in page.select_one(".message").text
    assert [a.text for a in page.select(".known-sources a")] == ["test-sae"]
    r = browse_client.get(f"{FEATURE}/64")
    assert r.status_code == 404 and "valid indices are 0 to 63" in soup(r).select_one(".message").text
    r = browse_client.get("/no/such/page")
    assert r.status_code == 404 and soup(r).select_one(".known-sources a")["href"] == "/sources/test-sae"


def test_source_with_100k_features_pages_and_plots(make_app_client):
    client = make_app_client()
    add_source(client, name="wide-sae", d_sae=100_000, lean=True, dead_every=7, architecture="topk")
    page = soup(client.get("/sources/wide-sae?sort=max&order=desc&hide_dead=1&page=3"))
    assert len(page.select(".density-hist rect.bar")) == 40
    assert page.select_one(".table-count").text.startswith("85,714 features match")
    assert len(page.select("table.features tbody tr")) == 50
    last = soup(client.get("/sources/wide-sae?page=2000"))
    assert last.select_one("tbody tr:last-child")["data-index"] == "99999"


def test_warm_up_renders_each_main_page_before_serving(fresh_browse_client):
    """The served app renders the home page, health, a source and one live feature in-process at startup
    (app/http/warmup.py); each answers 200, and the feature it picked is live."""
    import asyncio

    from app.http.warmup import warm_up

    app = fresh_browse_client.app
    done = asyncio.run(warm_up(app, app.state.context))
    paths = [p for p, _ in done]
    assert paths[:3] == ["/", "/-/health", "/sources/test-sae"] and len(paths) == 4
    assert all(status == 200 for _, status in done), done
    index = int(paths[3].rsplit("/", 1)[1])
    assert paths[3].startswith("/sources/test-sae/features/") and index not in {3, 10, 63}
    assert fresh_browse_client.get(paths[3]).status_code == 200


def test_a_warm_up_that_fails_never_stops_the_server(fresh_browse_client, monkeypatch):
    import asyncio

    from app.http import warmup

    def broken(ctx):
        raise RuntimeError("database went away")

    monkeypatch.setattr(warmup, "warm_paths", broken)
    app = fresh_browse_client.app
    assert asyncio.run(warmup.warm_up(app, app.state.context)) == []
