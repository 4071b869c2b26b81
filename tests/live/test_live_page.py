"""The live page and its JSON twin: per-token view, ranking filters, limits, bad input, model off."""

from __future__ import annotations

from bs4 import BeautifulSoup

from tests.fixtures import add_source
from tests.live.factories import DENSE

TEXT = "The quick brown fox jumps over the lazy dog."
URL = "/sources/tiny-l1/live"
API = "/api/v1/sources/tiny-l1/live"


def soup(response) -> BeautifulSoup:
    return BeautifulSoup(response.text, "html.parser")


def test_page_without_text_shows_the_form_and_links_its_json(live_client):
    page = soup(live_client().get(URL))
    assert page.select_one("form#live-form[method=post] textarea#live-text[name=text]") is not None
    assert page.select_one('link[rel=alternate][type="application/json"]')["href"] == API
    assert page.select_one(".live-tokens") is None


def test_empty_text_gets_a_helpful_message_not_an_error(live_client):
    client = live_client()
    response = client.post(URL, data={"text": ""})
    assert response.status_code == 200
    assert "Type or paste some text" in soup(response).select_one(".live-message").text
    assert client.post(API, json={"text": ""}).json()["message"].startswith("Type or paste")


def test_tokens_are_shown_and_a_token_lists_its_features(live_client):
    client = live_client()
    data = client.post(API, json={"text": TEXT}).json()
    page = soup(client.post(URL, data={"text": TEXT, "token": "3"}))
    buttons = page.select(".live-tokens button.tok")
    assert len(buttons) == len(data["tokens"]) > 5
    assert "bos" in buttons[0]["class"] and buttons[3]["aria-pressed"] == "true"
    assert "".join(t["text"] for t in data["tokens"][1:]) == TEXT
    rows = page.select("#token-features table.live-features tbody tr")
    expected = [f["index"] for f in data["tokens"][3]["features"]]
    assert [int(r["data-index"]) for r in rows] == expected and expected
    assert rows[0].select_one("a")["href"] == f"/sources/tiny-l1/features/{expected[0]}"
    assert page.select_one("#token-features h2 code").text == data["tokens"][3]["text"].replace(" ", "·")


def test_token_click_swaps_only_its_block_with_htmx(live_client):
    client = live_client()
    headers = {"HX-Request": "true", "HX-Target": "token-features"}
    response = client.post(URL, data={"text": TEXT, "token": "2"}, headers=headers)
    assert "HX-Request" in response.headers["vary"]
    fragment = soup(response)
    assert fragment.select_one("html") is None and fragment.select_one("#ranked-features") is None
    assert fragment.select_one("aside#token-features h2").text.startswith("Token 2")
    results = soup(client.post(URL, data={"text": TEXT}, headers={"HX-Request": "true", "HX-Target": "live-results"}))
    assert results.select_one("section#live-results #ranked-features") is not None
    assert results.select_one("textarea") is None


def test_ranking_ignores_bos_and_dense_features_by_default(live_client):
    client = live_client()
    data = client.post(API, json={"text": TEXT}).json()
    assert data["ranked"] and all(f["position"] != 0 for f in data["ranked"])
    assert data["n_hidden"] == len(DENSE)
    shown = {f["index"] for f in data["ranked"]} | {f["index"] for t in data["tokens"] for f in t["features"]}
    assert not shown & DENSE
    values = [f["value"] for f in data["ranked"]]
    assert values == sorted(values, reverse=True)


def test_density_filter_off_shows_dense_features(live_client):
    data = live_client().post(API, json={"text": TEXT, "max_density": None, "ignore_bos": False}).json()
    assert data["n_hidden"] == 0
    assert {f["index"] for t in data["tokens"] for f in t["features"]} & DENSE


def test_form_filters_round_trip(live_client):
    client = live_client()
    page = soup(client.post(URL, data={"text": TEXT, "filters": "1", "max_density": "", "tokens": "2-3"}))
    assert page.select_one("input[name=ignore_bos]").get("checked") is None
    assert page.select_one("input[name=max_density]")["value"] == ""
    assert page.select_one("input[name=tokens]")["value"] == "2-3"
    assert {b["data-pos"] for b in page.select(".live-tokens button.tok.sel")} == {"2", "3"}


def test_restricting_to_tokens_ranks_over_those_tokens_only(live_client):
    client = live_client()
    data = client.post(API, json={"text": TEXT, "tokens": [4]}).json()
    assert data["ranked"] and {f["position"] for f in data["ranked"]} == {4}
    at_token = {f["index"]: f["value"] for f in data["tokens"][4]["features"]}
    for f in data["ranked"][:len(at_token)]:
        if f["index"] in at_token:
            assert abs(f["value"] - at_token[f["index"]]) < 1e-5
    page = soup(client.post(URL, data={"text": TEXT, "filters": "1", "max_density": "1", "only_token": "5"}))
    assert page.select_one("input[name=tokens]")["value"] == "5"
    assert {td.text.strip() for td in page.select("#ranked-features td span.muted")} == {"@5"}
    page = soup(client.post(URL, data={"text": TEXT, "filters": "1", "tokens": "5", "add_token": "7"}))
    assert page.select_one("input[name=tokens]")["value"] == "5, 7"


def test_text_over_the_character_limit_is_refused_naming_it(live_client):
    client = live_client(max_live_chars=20)
    response = client.post(URL, data={"text": "x" * 21})
    assert response.status_code == 413
    assert "limit is 20" in soup(response).select_one(".live-message").text
    assert "limit is 20" in client.post(API, json={"text": "x" * 21}).json()["detail"]


def test_text_over_the_token_limit_is_refused_naming_it(live_client):
    client = live_client(max_live_tokens=5)
    response = client.post(API, json={"text": TEXT})
    assert response.status_code == 413 and "limit is 5 " in response.json()["detail"]
    # The tiny model reads 64 positions: a shorter limit than the setting's default wins, and says why.
    response = live_client().post(API, json={"text": "ab " * 60})
    assert response.status_code == 413 and "64" in response.json()["detail"]


def test_bad_form_fields_are_named(live_client):
    client = live_client()
    response = client.post(URL, data={"text": TEXT, "filters": "1", "tokens": "3-x"})
    assert response.status_code == 422 and "'3-x'" in soup(response).select_one(".live-message").text
    response = client.get(API, params={"text": TEXT, "max_density": "lots"})
    assert response.status_code == 422 and "max_density" in response.json()["detail"]


def test_unknown_source_is_a_404_naming_the_known_ones(live_client):
    client = live_client()
    response = client.get("/sources/nope/live")
    assert response.status_code == 404
    assert {a.text for a in soup(response).select(".known-sources a")} == {"tiny-l1", "tiny-l2"}
    detail = client.post("/api/v1/sources/nope/live", json={"text": TEXT}).json()["detail"]
    assert set(detail["sources"]) == {"tiny-l1", "tiny-l2"}


def test_unicode_of_all_kinds_is_handled(live_client):
    client = live_client()
    text = "😀 日本語 e\u0301 <script>alert(1)</script> & \x00\ttab\nline"
    data = client.post(API, json={"text": text}).json()
    texts = [t["text"] for t in data["tokens"]]
    assert "↵" in texts and "😀" in "".join(texts) and "…" in texts  # emoji split over byte tokens
    page = soup(client.post(URL, data={"text": text}))
    assert not [s for s in page.select("script") if "alert" in s.text]  # escaped, not executed
    assert "<script>" in page.select_one("textarea").text
    # A lone surrogate from a JSON client becomes U+FFFD instead of a 500.
    response = client.post(API, content=b'{"text": "a \\ud800 b"}', headers={"content-type": "application/json"})
    assert response.status_code == 200 and "\ufffd" in response.json()["text"]
    # Bytes that are not UTF-8 in a form post.
    response = client.post(URL, content=b"text=%ED%A0%80%FF+x", headers={"content-type": "application/x-www-form-urlencoded"})
    assert response.status_code == 200


def test_live_work_off_says_why(live_client, make_app_client):
    off = make_app_client()  # no bundle, load_model=False
    add_source(off, name="tiny-l1", model_name="m", d_sae=1, with_examples=False)
    page = soup(off.get(URL))
    assert "FEATUREBOARD_LOAD_MODEL=false" in page.select_one(".live-off").text
    assert page.select_one("textarea[disabled]") is not None
    response = off.post(API, json={"text": TEXT})
    assert response.status_code == 503 and "no model is loaded" in response.json()["detail"].lower()


def test_source_whose_sae_is_not_loaded_says_which_are(live_client):
    client = live_client()
    add_source(client, name="elsewhere", model_name="m", d_sae=1, with_examples=False)
    response = client.post("/sources/elsewhere/live", data={"text": TEXT})
    assert response.status_code == 503
    assert "tiny-l1, tiny-l2" in soup(response).select_one(".live-off").text
