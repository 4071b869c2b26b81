"""'Test this feature': the text shaded by one feature, with its max marked in the stored histogram."""

from __future__ import annotations

from bs4 import BeautifulSoup

TEXT = "The quick brown fox jumps over the lazy dog."


def soup(response) -> BeautifulSoup:
    return BeautifulSoup(response.text, "html.parser")


def _firing_feature(client) -> tuple[int, float]:
    top = client.post("/api/v1/sources/tiny-l1/live", json={"text": TEXT}).json()["ranked"][0]
    return top["index"], top["value"]


def test_json_gives_every_token_and_the_max(live_client):
    client = live_client()
    index, value = _firing_feature(client)
    data = client.post(f"/api/v1/sources/tiny-l1/features/{index}/test", json={"text": TEXT}).json()
    assert len(data["acts"]) == len(data["tokens"]) == len(data["token_ids"])
    assert abs(data["max_value"] - value) < 1e-5 and data["acts"][data["max_pos"]] == data["max_value"]
    assert data["max_pos"] != 0  # BOS is not part of the text
    assert data["ratio_to_corpus_max"] == round(value / 2.0, 4)
    assert 0 < data["marker"]["percentile"] < 1 and not data["marker"]["above_corpus_max"]
    same = client.get(f"/api/v1/sources/tiny-l1/features/{index}/test", params={"text": TEXT}).json()
    assert same["acts"] == data["acts"]


def test_page_shades_the_text_and_marks_the_histogram(live_client):
    client = live_client()
    index, _ = _firing_feature(client)
    page = soup(client.post(f"/sources/tiny-l1/features/{index}/test", data={"text": TEXT}))
    assert page.select_one("form.feature-test-form textarea").text == TEXT
    assert page.select_one(".live-shaded span.pk") is not None
    n_tokens = len(client.post("/api/v1/sources/tiny-l1/live", json={"text": TEXT}).json()["tokens"])
    assert len(page.select(".live-shaded > span")) == n_tokens
    marker = page.select_one("svg .test-marker line")
    assert marker is not None and float(marker["x1"]) > 36
    assert page.select_one(".test-summary .test-max") is not None


def test_htmx_gets_only_the_result_block(live_client):
    client = live_client()
    response = client.post("/sources/tiny-l1/features/3/test", data={"text": TEXT}, headers={"HX-Request": "true"})
    fragment = soup(response)
    assert fragment.select_one("html") is None and fragment.select_one("form") is None
    assert fragment.select_one("div#feature-test-result") is not None


def test_empty_text_and_limits(live_client):
    client = live_client(max_live_chars=10)
    response = client.post("/sources/tiny-l1/features/3/test", data={"text": ""})
    assert response.status_code == 200 and "Type or paste" in soup(response).select_one(".live-message").text
    response = client.post("/api/v1/sources/tiny-l1/features/3/test", json={"text": "x" * 11})
    assert response.status_code == 413 and "limit is 10" in response.json()["detail"]


def test_unknown_feature_is_a_404_naming_the_range(live_client):
    client = live_client()
    response = client.post("/api/v1/sources/tiny-l1/features/999/test", json={"text": TEXT})
    assert response.status_code == 404 and response.json()["detail"]["index_range"] == [0, 63]
    response = client.post("/sources/missing/features/1/test", data={"text": TEXT})
    assert response.status_code == 404 and "tiny-l1" in response.text


def test_widget_renders_with_the_feature_page_context(live_client):
    from starlette.requests import Request

    from app.http.respond import templates

    client = live_client()
    request = Request({"type": "http", "app": client.app, "router": client.app.router, "method": "GET", "path": "/",
                       "headers": [], "query_string": b""})
    html = templates.env.get_template("live/_feature_test.html").render(
        request=request, source={"name": "tiny l1"}, feature={"index": 7, "max_act": 2.0, "act_hist": {}})
    widget = BeautifulSoup(html, "html.parser")
    form = widget.select_one("section#feature-test form.feature-test-form")
    assert form["action"] == "/sources/tiny%20l1/features/7/test" and form["hx-post"] == form["action"]
    assert form["hx-target"] == "#feature-test-result" and widget.select_one("div#feature-test-result") is not None
    assert widget.select_one("a[href='/sources/tiny%20l1/live']") is not None
