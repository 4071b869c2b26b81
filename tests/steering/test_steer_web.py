"""The steering pages, the JSON API and streaming: validation, saved runs, rate limits, disconnects."""

from __future__ import annotations

import asyncio
import json
import time

import pytest
from bs4 import BeautifulSoup

from app.services import steer_stream as stream
from app.services import steering as service
from app.services.steer_spec import DEFAULT_STRENGTH_MULTIPLE
from tests.fixtures import add_source as world_source

N = 4


def soup(response):
    return BeautifulSoup(response.text, "html.parser")


@pytest.fixture
def client(make_app_client, app_bundle):
    bundle, _, _ = app_bundle
    return make_app_client(bundle=bundle)


@pytest.fixture
def body(app_bundle):
    _, source, feature = app_bundle
    return {"prompt": "The quick brown fox", "features": [{"source": source, "feature": feature, "strength": 8.0}],
            "n_tokens": N}


def add_source(client, name, model_name, max_act=0.5, index=5):
    """A 64-feature source on ``model_name`` whose alive features peak at ``max_act`` (feature ``index`` alive)."""
    world_source(client, name=name, model_name=model_name, d_in=32, d_sae=64, max_act=max_act, with_examples=False,
                 densities=[0.01] * 64)


def test_page_says_plainly_when_steering_is_off(make_app_client, body):
    client = make_app_client()
    page = soup(client.get("/steer"))
    assert "FEATUREBOARD_LOAD_MODEL=false" in page.select_one(".steer-off").text
    assert page.select_one("#steer-form button[type=submit]").has_attr("disabled")
    response = client.post("/api/v1/steer", json=body)
    assert response.status_code == 503 and "No model is loaded" in response.json()["detail"]


def test_page_lists_sources_and_links_its_json_twin(client, app_bundle):
    _, source, _ = app_bundle
    page = soup(client.get("/steer"))
    assert source in [o["value"] for o in page.select("select[name=source] option")]
    assert page.select_one('link[rel=alternate][type="application/json"]')["href"].endswith("/api/v1/steer")
    data = client.get("/api/v1/steer").json()
    assert source in [s["name"] for s in data["sources"] if s["steerable"]]
    assert data["off_reason"] is None


def test_steer_button_prefills_a_default_strength_from_max_activation(client, app_bundle):
    bundle, source, _ = app_bundle
    add_source(client, source, bundle.lm.name, max_act=0.4, index=7)
    page = soup(client.get(f"/steer?source={source}&feature=7"))
    row = page.select_one("tr.row-inputs[data-row='0']")
    assert row.select_one("select[name=source] option[selected]")["value"] == source
    assert row.select_one("input[name=feature]")["value"] == "7"
    assert float(row.select_one("input[name=strength]")["value"]) == pytest.approx(DEFAULT_STRENGTH_MULTIPLE * 0.4)
    assert "max activation" in row.select_one(".default-note").text
    api = client.get(f"/api/v1/steer?source={source}&feature=7").json()
    assert api["form"]["features"][0]["strength"] == pytest.approx(DEFAULT_STRENGTH_MULTIPLE * 0.4)


def test_run_is_saved_shared_and_an_identical_request_does_no_model_work(client, body, monkeypatch):
    first = client.post("/api/v1/steer", json=body)
    assert first.status_code == 201, first.text
    run = first.json()
    assert run["status"] == "complete" and run["cached"] is False
    assert len(run["result"]["rows"]["steered"]["tokens"]) <= N
    assert run["default_text"] == run["result"]["rows"]["default"]["text"]

    def no_model_work(*_args, **_kwargs):
        raise AssertionError("an identical request must not touch the model")

    monkeypatch.setattr(service, "_generate", no_model_work)
    again = client.post("/api/v1/steer", json=body)
    assert again.status_code == 200 and again.json()["cached"] is True and again.json()["id"] == run["id"]
    assert client.get(f"/api/v1/steer/{run['id']}").json()["steered_text"] == run["steered_text"]

    page = soup(client.get(f"/steer/{run['id']}"))
    assert page.select_one(".share-link")["href"].endswith(f"/steer/{run['id']}")
    steered = page.select("#steer-result .steer-col[data-row=steered] .gen .tok")
    assert len(steered) == len(run["result"]["rows"]["steered"]["tokens"])
    assert len(steered[0].select(".alts .alt")) == 5
    assert page.select_one("#steer-form textarea[name=prompt]").text == body["prompt"]
    n_changed = sum(t["changed"] for t in run["result"]["rows"]["steered"]["tokens"])
    assert len(page.select(".steer-col[data-row=steered] .tok.changed")) == n_changed


def test_control_and_sweep_show_a_table_and_plots(client, body):
    run = client.post("/api/v1/steer", json={**body, "control": True, "sweep": True}).json()
    assert [p["multiplier"] for p in run["result"]["sweep"]] == [0.0, 0.25, 0.5, 1.0, 1.5, 2.0]
    assert all(p["perplexity"] > 1 for p in run["result"]["sweep"])
    page = soup(client.get(f"/steer/{run['id']}"))
    assert len(page.select("table.steer-sweep tbody tr")) == 6
    assert len(page.select(".steer-plot svg polyline")) == 2
    assert page.select_one(".steer-col[data-row=control] .gen") is not None


def test_html_form_posts_redirects_and_streams_tokens(client, body):
    feature = body["features"][0]
    form = {"prompt": body["prompt"], "source": [feature["source"], ""], "feature": [str(feature["feature"]), ""],
            "strength": ["8", ""], "n_tokens": str(N), "method": "additive"}
    response = client.post("/steer", data=form, follow_redirects=False)
    assert response.status_code == 303
    location = response.headers["location"]
    pending = soup(client.get(location))
    assert pending.select_one("#steer-result[sse-connect]")["sse-connect"].endswith("/stream")
    with client.stream("GET", location + "/stream") as events:
        assert events.headers["content-type"].startswith("text/event-stream")
        lines = list(events.iter_lines())
    names = [line.split(": ", 1)[1] for line in lines if line.startswith("event: ")]
    assert names[-1] == "done" and names.count("steered") >= 1 and "default" in names
    final = soup(client.get(location))
    assert final.select_one("#steer-result")["data-status"] == "complete"


def test_htmx_post_answers_with_the_block_and_pushes_the_url(client, body):
    feature = body["features"][0]
    form = {"prompt": body["prompt"], "source": feature["source"], "feature": str(feature["feature"]),
            "strength": "8", "n_tokens": str(N)}
    response = client.post("/steer", data=form, headers={"HX-Request": "true"})
    assert response.status_code == 200 and "/steer/" in response.headers["HX-Push-Url"]
    assert "HX-Request" in response.headers["vary"]
    fragment = soup(response)
    assert fragment.select_one("html") is None and fragment.select_one("#steer-main #steer-result") is not None


def test_api_stream_sends_tokens_then_the_saved_run(client, body):
    with client.stream("POST", "/api/v1/steer?stream=true", json={**body, "seed": 9}) as events:
        lines = list(events.iter_lines())
    payloads = [(lines[i].split(": ", 1)[1], json.loads(lines[i + 1][6:]))
                for i in range(len(lines) - 1) if lines[i].startswith("event: ")]
    kinds = [k for k, _ in payloads]
    assert kinds[-1] == "done" and kinds.count("token") >= 2
    token = next(p for k, p in payloads if k == "token")
    assert {"row", "index", "text", "prob", "top"} <= set(token) and len(token["top"]) == 5
    assert payloads[-1][1]["status"] == "complete"


@pytest.mark.parametrize("change, field", [
    ({"n_tokens": 0}, ["body", "n_tokens"]),
    ({"n_tokens": 257}, ["body", "n_tokens"]),
    ({"temperature": -0.1}, ["body", "temperature"]),
    ({"temperature": 2.5}, ["body", "temperature"]),
    ({"top_p": 0}, ["body", "top_p"]),
    ({"top_p": 1.5}, ["body", "top_p"]),
    ({"features": [{"source": "SRC", "feature": 5, "strength": 1e6}]}, ["body", "features", 0, "strength"]),
    ({"features": [{"source": "SRC", "feature": 99999, "strength": 1}]}, ["body", "features", 0, "feature"]),
    ({"features": [{"source": "nope", "feature": 1, "strength": 1}]}, ["body", "features", 0, "source"]),
    ({"features": []}, ["body", "features"]),
])
def test_bad_values_get_422_with_a_message_for_the_field(client, body, change, field):
    change = json.loads(json.dumps(change).replace("SRC", body["features"][0]["source"]))
    response = client.post("/api/v1/steer", json={**body, **change})
    assert response.status_code == 422
    detail = response.json()["detail"]
    assert [e["loc"] for e in detail] == [field] and detail[0]["msg"]


@pytest.mark.parametrize("literal", ["NaN", "Infinity", "-Infinity"])
def test_nan_and_infinite_numbers_get_422(client, body, literal):
    raw = json.dumps(body).replace('"strength": 8.0', f'"strength": {literal}')
    response = client.post("/api/v1/steer", content=raw, headers={"content-type": "application/json"})
    assert response.status_code == 422
    assert response.json()["detail"][0]["loc"] == ["body", "features", 0, "strength"]
    assert "finite" in response.json()["detail"][0]["msg"]


def test_feature_from_an_sae_on_another_model_is_refused(client, body):
    add_source(client, "other-sae", "some-other-model")
    response = client.post("/api/v1/steer", json={**body, "features": [{"source": "other-sae", "feature": 5,
                                                                          "strength": 1.0}]})
    assert response.status_code == 422
    assert "some-other-model" in response.json()["detail"][0]["msg"]


def test_prompt_over_the_limit_and_model_positions(make_app_client, app_bundle, body):
    bundle, _, _ = app_bundle
    client = make_app_client(bundle=bundle, max_live_chars=10)
    response = client.post("/api/v1/steer", json=body)
    assert response.status_code == 422 and response.json()["detail"][0]["loc"] == ["body", "prompt"]
    assert "10" in response.json()["detail"][0]["msg"]
    client = make_app_client(bundle=bundle)
    response = client.post("/api/v1/steer", json={**body, "n_tokens": 256})
    assert response.status_code == 422 and "positions" in response.json()["detail"][0]["msg"]


def test_html_form_shows_each_message_next_to_its_field(client, body):
    form = {"prompt": "hi", "source": body["features"][0]["source"], "feature": "5", "strength": "nan",
            "n_tokens": "999", "temperature": "3"}
    response = client.post("/steer", data=form)
    assert response.status_code == 422
    fields = {e["data-field"] for e in soup(response).select(".field-error")}
    assert fields == {"features.0.strength", "n_tokens", "temperature"}


def test_rate_limit_counts_model_work_per_client(make_app_client, app_bundle, body):
    bundle, _, _ = app_bundle
    client = make_app_client(bundle=bundle, steer_rate_limit="2/minute")
    assert client.post("/api/v1/steer", json={**body, "seed": 1}).status_code == 201
    assert client.post("/api/v1/steer", json={**body, "seed": 2}).status_code == 201
    assert client.post("/api/v1/steer", json={**body, "seed": 1}).status_code == 200  # saved: free
    limited = client.post("/api/v1/steer", json={**body, "seed": 3})
    assert limited.status_code == 429 and int(limited.headers["Retry-After"]) >= 1


def test_busy_model_answers_503_with_retry_after(make_app_client, app_bundle, body):
    bundle, _, _ = app_bundle
    client = make_app_client(bundle=bundle, model_timeout_s=0.3)
    with bundle.lock:
        response = client.post("/api/v1/steer", json=body)
    assert response.status_code == 503 and "Retry-After" in response.headers


def test_a_client_that_goes_away_stops_its_generation(make_app_client, app_bundle, body):
    bundle, _, _ = app_bundle
    client = make_app_client(bundle=bundle)
    state = client.app.state.context
    prepared = service.prepare(state, {**body, "n_tokens": 40, "prompt": "x"})
    run, _ = service.find_or_create(state, prepared, None)
    forward = bundle.lm.model.forward
    steps = []

    def slow_forward(*args, **kwargs):
        steps.append(1)
        time.sleep(0.02)
        return forward(*args, **kwargs)

    async def consume_one_token():
        events = stream.run_events(state, run["id"])
        kind, _ = await events.__anext__()
        await events.aclose()  # what a cancelled SSE response does
        return kind

    bundle.lm.model.forward = slow_forward
    try:
        assert asyncio.run(consume_one_token()) == "token"
        assert bundle.lock.acquire(timeout=5), "the worker must stop and release the model"
        bundle.lock.release()
    finally:
        bundle.lm.model.forward = forward
    assert len(steps) < 10
    assert service.get_run(state, run["id"])["status"] == "pending", service.get_run(state, run["id"])["error"]


def test_unknown_run_is_404_and_openapi_builds(client):
    assert client.get("/steer/nope").status_code == 404
    assert client.get("/api/v1/steer/nope").status_code == 404
    assert client.get("/openapi.json").status_code == 200


def test_the_steer_form_posts_what_it_shows(client, app_bundle):
    """The form's own fields, as a browser would send them, make a run: the CSRF field carries a real token."""
    bundle, source, feature = app_bundle
    add_source(client, source, bundle.lm.name, max_act=0.5, index=feature)
    page = soup(client.get("/steer", params={"source": source, "feature": feature}))
    form = page.select_one("form#steer-form")
    assert form["method"] == "post" and form["action"] == "/steer"
    token = form.select_one("input[name=csrf_token]")["value"]
    assert len(token) >= 40 and "<" not in token and "function" not in token
    row = form.select_one("tr.row-inputs")
    assert row.select_one("select[name=source] option[selected]")["value"] == source
    assert row.select_one("input[name=feature]")["value"] == str(feature)
    strength = row.select_one("input[name=strength]")["value"]
    assert float(strength) > 0  # the default strength, pre-filled
    assert form.select_one("input[name=method][checked]")["value"] == "additive"
    fields = {"csrf_token": token, "prompt": "The quick brown fox", "source": source, "feature": str(feature),
              "strength": strength, "method": "additive", "n_tokens": "3",
              "temperature": form.select_one("input[name=temperature]")["value"],
              "top_p": form.select_one("input[name=top_p]")["value"], "seed": "0"}
    response = client.post("/steer", data=fields, follow_redirects=False)
    assert response.status_code == 303 and response.headers["location"].startswith("http://testserver/steer/")
    run = client.get("/api/v1" + response.headers["location"].removeprefix("http://testserver")).json()
    assert run["status"] == "pending" and run["features"][0]["strength"] == float(strength)
    bad = client.post("/steer", data={**fields, "strength": "loud"})
    assert bad.status_code == 422
    again = soup(bad)
    assert again.select_one(".field-error[data-field='features.0.strength']") is not None
    assert again.select_one("textarea[name=prompt]").text == "The quick brown fox"  # nothing typed is lost
