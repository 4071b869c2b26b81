"""The steering report card: its figures against direct recomputation on the tiny model, and its pages / API."""

from __future__ import annotations

import math
from urllib.parse import urlsplit

import pytest
import torch
from bs4 import BeautifulSoup

from app.ml.hooks import hooked
from app.ml.report_card import ReportConfig, off_target_kl, report_card
from app.ml.steering import (
    Intervention,
    RowSpec,
    SamplingConfig,
    generate_rows,
    prompt_token_ids,
    score_continuations,
)
from tests.steering.test_steer_web import add_source

CFG = ReportConfig(multiples=(1.0, 4.0), prompts=("The", "A fox"), kl_prompts=("The quick",), n_tokens=5)


@pytest.mark.parametrize("method", ["additive", "clamp"])
def test_report_points_match_a_direct_recompute(tiny_lm, tied_sae, method):
    cfg = ReportConfig(**{**CFG.__dict__, "method": method})
    out = report_card(tiny_lm, [(tied_sae, 3, 2.0)], cfg)
    point = out["points"][1]  # ×4: strength 8
    assert point["strengths"] == [8.0]
    logs, acts = [], []
    for prompt in cfg.prompts:
        ids = prompt_token_ids(tiny_lm, prompt)
        gen = generate_rows(tiny_lm, ids, [RowSpec("s", (Intervention(tied_sae, 3, 8.0),), method)],
                            SamplingConfig(n_tokens=5))["s"]
        (score,) = score_continuations(tiny_lm, ids, [gen.ids], [(tied_sae, 3)])
        logs.append(math.log(score.perplexity))
        acts.append(score.activation_mean[0])
    assert point["steered"]["perplexity"] == pytest.approx(math.exp(sum(logs) / 2), rel=1e-5)
    assert point["steered"]["activation"][0] == pytest.approx(sum(acts) / 2, abs=1e-5)
    assert len(point["control"]["texts"]) == 2 and point["control"]["kl"] > 0


def test_off_target_kl_is_the_mean_kl_over_the_prompt_positions(tiny_lm, tied_sae):
    row = RowSpec("s", (Intervention(tied_sae, 3, 6.0),), "additive")
    got = off_target_kl(tiny_lm, [RowSpec("default"), row], ["The quick brown"], seed=0)
    ids = torch.tensor([prompt_token_ids(tiny_lm, "The quick brown")])
    with torch.inference_mode():
        clean = torch.log_softmax(tiny_lm.model(input_ids=ids).logits.float(), -1)
        with hooked(tiny_lm, tied_sae.cfg.hook_name, lambda x: x + 6.0 * tied_sae.W_dec[3]):
            steered = torch.log_softmax(tiny_lm.model(input_ids=ids).logits.float(), -1)
    expected = (clean.exp() * (clean - steered)).sum(-1).mean()
    assert got["s"] == pytest.approx(float(expected), rel=1e-5)
    assert got["default"] == pytest.approx(0.0, abs=1e-6)


@pytest.fixture
def client(make_app_client, app_bundle):
    bundle, _, _ = app_bundle
    return make_app_client(bundle=bundle)


BODY = {"prompts": ["The", "We have"], "multiples": [0.5, 2], "n_tokens": 6}


def test_api_runs_stores_and_shares_a_report(client, app_bundle):
    bundle, source, _ = app_bundle
    add_source(client, source, bundle.lm.name, max_act=2.0, index=7)
    body = {**BODY, "features": [{"source": source, "feature": 7}], "method": "clamp"}
    first = client.post("/api/v1/steer/report", json=body)
    assert first.status_code == 201, first.text
    report = first.json()
    assert report["request"]["features"][0] == {"source": source, "feature": 7, "strength": 0.5,
                                               "strength_from": "0.25 × max activation"}
    assert [p["multiple"] for p in report["result"]["points"]] == [0.5, 2.0]
    again = client.post("/api/v1/steer/report", json=body)
    assert again.status_code == 200 and again.json()["id"] == report["id"] and again.json()["cached"]
    twin = client.get(f"/api/v1/steer/report/{report['id']}").json()
    assert twin["result"] == report["result"]

    page = BeautifulSoup(client.get(f"/steer/report/{report['id']}").text, "html.parser")
    assert page.select_one('link[rel=alternate][type="application/json"]')["href"].endswith(
        f"/api/v1/steer/report/{report['id']}")
    kinds = [f["data-kind"] for f in page.select("figure.report-plot")]
    assert kinds[:3] == ["activation", "perplexity", "kl"]
    assert len(page.select("figure.report-plot polyline[data-series=control]")) == 3
    assert len(page.select("table.report-sweep tbody tr")) == 1 + 2 * 2
    assert page.select_one("#report-prompts").text.splitlines() == ["The", "We have"]


def test_form_posts_and_redirects_to_the_shared_page(client, app_bundle):
    bundle, source, _ = app_bundle
    add_source(client, source, bundle.lm.name, max_act=2.0, index=8)
    form = client.get(f"/steer/report?source={source}&feature=8")
    textarea = BeautifulSoup(form.text, "html.parser").select_one("#report-features").text.strip()
    assert textarea == f"{source}:8"
    response = client.post("/steer/report", data={"features": f"{source}:8@1.5", "prompts": "The\nIt is",
                                                   "multiples": "1 2", "n_tokens": "4", "method": "additive"},
                           follow_redirects=False)
    assert response.status_code == 303 and "/steer/report/" in response.headers["location"]
    report = client.get("/api/v1" + urlsplit(response.headers["location"]).path).json()
    assert report["request"]["features"][0]["strength"] == 1.5 and report["request"]["prompts"] == ["The", "It is"]


def test_bad_report_requests_say_what_is_wrong(client, app_bundle):
    _, source, _ = app_bundle
    bad = client.post("/api/v1/steer/report", json={"features": []})
    assert bad.status_code == 422
    assert client.post("/api/v1/steer/report", json={"features": [{"source": source, "feature": 5}],
                                                     "multiples": [0]}).status_code == 422
    assert client.post("/api/v1/steer/report", json={"features": [{"source": "nope", "feature": 5}]}).status_code == 503
    assert client.post("/steer/report", data={"features": "no-colon"}).status_code == 422
    assert client.get("/steer/report/missing").status_code == 404


def test_a_labeled_feature_gets_embedding_similarity_to_its_label(world, world_db_url, make_app_client):
    from app.ml import embed
    from app.ml.bundle import load_bundle

    if embed.available():
        pytest.skip(embed.available())
    client = make_app_client(database_url=world_db_url, bundle=load_bundle(world.model, world.saes, device="cpu"))
    body = {**BODY, "features": [{"source": "world-l1", "feature": world.labeled, "strength": 3.0}]}
    report = client.post("/api/v1/steer/report", json=body).json()
    result = report["result"]
    label = result["labels"][0]
    assert label and result["label_similarity_unavailable"] is None
    texts = result["points"][1]["steered"]["texts"]
    vecs = embed.get_embedder().embed([t if t.strip() else "(empty)" for t in texts])
    expected = float((vecs @ embed.get_embedder().embed([label])[0]).mean())
    assert result["points"][1]["steered"]["label_similarity"][0] == pytest.approx(expected, abs=1e-5)
    page = BeautifulSoup(client.get(f"/steer/report/{report['id']}").text, "html.parser")
    assert page.select_one("figure.report-plot[data-kind=label_similarity]") is not None
