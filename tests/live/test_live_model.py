"""Model work: one forward pass serves every source on the model, it runs off the event loop, one call at a
time per device, and a request that cannot get the model in time gets 503 with Retry-After."""

from __future__ import annotations

import threading
from contextlib import contextmanager

TEXT = "The quick brown fox jumps over the lazy dog."


def test_one_forward_pass_serves_every_source_on_the_model(live_client, count_forwards):
    client = live_client()
    response = client.post("/api/v1/live", json={"text": TEXT})
    assert response.status_code == 200
    body = response.json()
    assert set(body["data"]) == {"tiny-l1", "tiny-l2"} and body["forward_passes"] == 1
    assert len(count_forwards) == 1
    # The other source's page, a filter change and a token click on the same text reuse that pass.
    assert client.post("/sources/tiny-l2/live", data={"text": TEXT}).status_code == 200
    assert client.post("/api/v1/sources/tiny-l1/live", json={"text": TEXT, "ignore_bos": False, "token": 3}).status_code == 200
    assert client.post("/api/v1/sources/tiny-l2/features/9/test", json={"text": TEXT}).status_code == 200
    assert len(count_forwards) == 1
    client.post("/api/v1/sources/tiny-l1/live", json={"text": TEXT + " Again."})
    assert len(count_forwards) == 2


def test_sources_share_the_pass_even_when_asked_one_at_a_time(live_client, count_forwards):
    client = live_client()
    a = client.post("/api/v1/sources/tiny-l1/live", json={"text": TEXT}).json()
    b = client.post("/api/v1/sources/tiny-l2/live", json={"text": TEXT}).json()
    assert len(count_forwards) == 1
    assert [t["id"] for t in a["tokens"]] == [t["id"] for t in b["tokens"]]
    assert a["ranked"] != b["ranked"]  # different SAEs, different features


@contextmanager
def blocked_forward(bundle):
    """Every forward pass of the model stops in block 0 until `release` is set; `entered` says one is there."""
    entered, release = threading.Event(), threading.Event()

    def hook(*_):
        entered.set()
        release.wait(10)

    handle = bundle.lm.model.transformer.h[0].register_forward_pre_hook(hook)
    try:
        yield entered, release
    finally:
        release.set()
        handle.remove()


def _post_in_thread(client, url, payload, results):
    thread = threading.Thread(target=lambda: results.append(client.post(url, json=payload)))
    thread.start()
    return thread


def test_pages_answer_while_a_long_encode_runs(live_client, live_bundle):
    client = live_client(model_timeout_s=0.3)
    results = []
    with blocked_forward(live_bundle) as (entered, release):
        slow = _post_in_thread(client, "/api/v1/sources/tiny-l1/live", {"text": TEXT}, results)
        assert entered.wait(10), "the slow encode never reached the model"
        health = client.get("/-/health")
        assert health.status_code == 200 and health.json()["status"] == "ok"
        assert client.get("/sources/tiny-l1/live").status_code == 200  # the live page itself, without text
        # A second live request waits for the model past model_timeout_s: 503 with Retry-After.
        busy = client.post("/api/v1/sources/tiny-l1/live", json={"text": "Another text."})
        assert busy.status_code == 503 and busy.headers["retry-after"] == "1"
        assert "busy" in busy.json()["detail"]
        page = client.post("/sources/tiny-l1/features/3/test", data={"text": "Another text."},
                           headers={"HX-Request": "true"})
        assert page.status_code == 503 and "busy" in page.text and page.headers["retry-after"] == "1"
        assert not results, "the slow request finished while the model was blocked"
        release.set()
        slow.join(10)
    assert results and results[0].status_code == 200


def test_model_held_by_someone_else_times_out_with_retry_after(live_client, live_bundle):
    client = live_client(model_timeout_s=0.2)
    with live_bundle.lock:  # e.g. a steering generation on the same device
        response = client.post("/sources/tiny-l1/live", data={"text": TEXT})
    assert response.status_code == 503 and response.headers["retry-after"] == "1"
    assert client.post("/sources/tiny-l1/live", data={"text": TEXT}).status_code == 200
