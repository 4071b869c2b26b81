"""JSON twins under /api/v1: same data functions as the pages, declared response models, /docs."""

from __future__ import annotations

from bs4 import BeautifulSoup


def test_home_json_matches_page(browse_client):
    data = browse_client.get("/api/v1").json()
    assert data["count"] == 1 and data["model"] is None
    s = data["data"][0]
    assert s["name"] == "test-sae" and s["health"]["L0"] == 12.5 and s["url"] == "/sources/test-sae"


def test_source_json_matches_table(browse_client):
    url = "/sources/test-sae?sort=density&order=desc&hide_dead=1&page=1&per_page=20"
    data = browse_client.get("/api/v1" + url).json()
    page = BeautifulSoup(browse_client.get(url).text, "html.parser")
    assert [r["index"] for r in data["features"]["data"]] == [int(tr["data-index"]) for tr in page.select("tbody tr")]
    assert data["n_features"] == 64 and data["n_dead"] == 3 and data["index_range"] == [0, 63]
    assert len(data["density_histogram"]["counts"]) == 40
    feats = browse_client.get("/api/v1/sources/test-sae/features?sort=density&order=desc&hide_dead=1&per_page=20").json()
    assert feats == data["features"]
    assert feats["count"] == 61 and feats["pages"] == 4


def test_feature_json_matches_page(browse_client):
    data = browse_client.get("/api/v1/sources/test-sae/features/1?context=5").json()
    page = BeautifulSoup(browse_client.get("/sources/test-sae/features/1?context=5").text, "html.parser")
    assert data["index"] == 1 and data["context"] == "5" and not data["dead"] and data["tokens_available"]
    assert [g["kind"] for g in data["groups"]] == [g["data-kind"] for g in page.select(".example-group")]
    first = data["groups"][0]["examples"][0]
    spans = page.select_one(".example .ex").select("span")
    assert first["tokens"] == [s.text for s in spans]
    assert len(first["tokens"]) == len(first["acts"]) == len(first["token_ids"])
    peak = first["max_pos"] - first["start"]
    assert first["acts"][peak] == max(first["acts"])
    assert [t["token"].replace(" ", "␣") for t in data["top_logits"]] == [
        c.text for c in page.select(".logit-list.pos code")]
    assert [n["index"] for n in data["neighbours"]] == [int(a.text) for a in page.select("a.neighbour")]


def test_dead_feature_json(browse_client):
    data = browse_client.get("/api/v1/sources/test-sae/features/3").json()
    assert data["dead"] and data["groups"] == [] and data["act_histogram"] == {"edges": [], "counts": []}


def test_json_404s_name_what_exists(browse_client):
    r = browse_client.get("/api/v1/sources/test-sae/features/64")
    assert r.status_code == 404
    assert r.json()["detail"]["index_range"] == [0, 63] and r.json()["detail"]["sources"] == ["test-sae"]
    r = browse_client.get("/api/v1/sources/nope")
    assert r.status_code == 404 and r.json()["detail"]["sources"] == ["test-sae"]


def test_docs_and_openapi_list_the_twins(browse_client):
    assert browse_client.get("/docs").status_code == 200
    paths = browse_client.get("/openapi.json").json()["paths"]
    for path in ("/api/v1", "/api/v1/sources/{source}", "/api/v1/sources/{source}/features",
                 "/api/v1/sources/{source}/features/{index}"):
        assert "200" in paths[path]["get"]["responses"], path
    assert "/sources/{source}" not in paths  # HTML pages stay out of the API schema
