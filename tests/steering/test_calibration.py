"""Calibrated default strength: the sweep's rule on a tiny model, and the form / API that store and use it."""

from __future__ import annotations

import math

import pytest
from bs4 import BeautifulSoup

from app.ml.calibration import CalibrationConfig, calibrate_strength, strongest_within
from app.ml.steering import Intervention, RowSpec, SamplingConfig, generate_rows, prompt_token_ids, score_continuations
from tests.steering.test_steer_web import add_source

CFG = CalibrationConfig(budget=1.5, n_tokens=6, multiples=(0.5, 2.0, 8.0, 32.0), prompts=("The", "A fox"))


def test_sweep_picks_the_strongest_strength_before_the_first_break(tiny_lm, tied_sae):
    out = calibrate_strength(tiny_lm, tied_sae, 3, max_act=2.0, cfg=CFG)
    within = [p["within"] for p in out["points"]]
    assert within == [p["perplexity"] <= 1.5 * out["perplexity_default"] for p in out["points"]]
    first_break = within.index(False) if False in within else len(within)
    if first_break == 0:
        assert out["strength"] is None
    else:
        assert out["strength"] == out["points"][first_break - 1]["strength"]
        assert out["perplexity"] <= out["perplexity_limit"]
    assert [p["strength"] for p in out["points"]] == [1.0, 4.0, 16.0, 64.0]


def test_a_strength_past_the_first_break_is_never_chosen():
    # perplexity often dips again once the text degenerates into one repeated token
    assert strongest_within([5.0, 6.0, 30.0, 8.0], limit=10.0) == 1
    assert strongest_within([12.0, 6.0], limit=10.0) is None
    assert strongest_within([5.0, 6.0], limit=10.0) == 1
    assert strongest_within([5.0, float("nan")], limit=10.0) == 0


def test_sweep_perplexity_is_the_unsteered_models_on_the_generated_text(tiny_lm, tied_sae):
    """Recompute one point directly: generate at that strength, score with the unsteered model."""
    out = calibrate_strength(tiny_lm, tied_sae, 3, max_act=2.0, cfg=CFG)
    logs, logs_default = [], []
    for prompt in CFG.prompts:
        ids = prompt_token_ids(tiny_lm, prompt)
        rows = [RowSpec("d"), RowSpec("s", (Intervention(tied_sae, 3, 4.0),), "additive")]
        gen = generate_rows(tiny_lm, ids, rows, SamplingConfig(n_tokens=6))
        d, s = score_continuations(tiny_lm, ids, [gen["d"].ids, gen["s"].ids], [(tied_sae, 3)])
        logs.append(math.log(s.perplexity))
        logs_default.append(math.log(d.perplexity))
    assert out["points"][1]["perplexity"] == pytest.approx(math.exp(sum(logs) / 2), rel=1e-5)
    assert out["perplexity_default"] == pytest.approx(math.exp(sum(logs_default) / 2), rel=1e-5)


def test_budget_must_be_a_ratio_above_one():
    with pytest.raises(ValueError, match="budget"):
        CalibrationConfig(budget=1.0)


@pytest.fixture
def client(make_app_client, app_bundle):
    bundle, _, _ = app_bundle
    return make_app_client(bundle=bundle)


def _row(response):
    return BeautifulSoup(response.text, "html.parser").select_one("tr.row-inputs[data-row='0']")


def test_calibrate_stores_the_strength_and_the_steer_button_uses_it(client, app_bundle):
    bundle, source, _ = app_bundle
    add_source(client, source, bundle.lm.name, max_act=2.0, index=7)
    before = _row(client.get(f"/steer?source={source}&feature=7"))
    assert "not calibrated yet" in before.select_one(".default-note").text
    assert before.select_one("button.calibrate").text.strip() == "Calibrate"

    cal = client.post("/api/v1/steer/calibrate", json={"source": source, "feature": 7})
    assert cal.status_code == 201, cal.text
    cal = cal.json()
    assert cal["budget"] == 2.0 and len(cal["points"]) == len(CalibrationConfig().multiples)
    assert cal["strength"] is not None, "the weakest grid strength should keep the demo model fluent"
    assert cal["perplexity"] <= 2.0 * cal["perplexity_default"]

    row = _row(client.get(f"/steer?source={source}&feature=7"))
    assert float(row.select_one("input[name=strength]")["value"]) == pytest.approx(cal["strength"])
    note = row.select_one(".default-note").text
    assert "calibrated" in note and "2×" in note and "neutral prompts" in note
    api = client.get(f"/api/v1/steer?source={source}&feature=7").json()["form"]["features"][0]
    assert api["strength"] == pytest.approx(cal["strength"]) and api["calibration"]["points"]


def test_form_button_calibrates_and_comes_back_to_the_form(client, app_bundle):
    bundle, source, _ = app_bundle
    add_source(client, source, bundle.lm.name, max_act=2.0, index=9)
    form = {"prompt": "Hello", "source": source, "feature": "9", "strength": "", "calibrate": "0"}
    response = client.post("/steer/calibrate", data=form, follow_redirects=False)
    assert response.status_code == 303
    assert response.headers["location"].endswith(f"/steer?source={source}&feature=9&prompt=Hello")
    fragment = client.post("/steer/calibrate", data=form, headers={"HX-Request": "true"})
    assert fragment.status_code == 200 and "<html" not in fragment.text
    assert "calibrated" in _row(fragment).select_one(".default-note").text


def test_calibrating_a_dead_or_unknown_feature_says_why(client, app_bundle):
    bundle, source, _ = app_bundle
    add_source(client, source, bundle.lm.name, max_act=0.0, index=11)
    dead = client.post("/api/v1/steer/calibrate", json={"source": source, "feature": 11})
    assert dead.status_code == 422 and "never fired" in dead.json()["detail"]
    missing = client.post("/api/v1/steer/calibrate", json={"source": source, "feature": 64})
    assert missing.status_code == 404 and "no precomputed feature 64" in missing.json()["detail"]
    unloaded = client.post("/api/v1/steer/calibrate", json={"source": "nope", "feature": 1})
    assert unloaded.status_code == 503
