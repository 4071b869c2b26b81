"""20 concurrent edits of one label from 20 separate clients, on SQLite and on the local PostgreSQL.

For each version exactly one edit wins and the other 19 get 409 carrying the current label and their own text;
the history then holds every accepted revision once, in order, and nothing else.
"""

from __future__ import annotations

import threading

N_CLIENTS, ROUNDS = 20, 3


def test_concurrent_edits_one_winner_per_version(any_lab):
    lab = any_lab
    names = [f"editor{i:02d}" for i in range(N_CLIENTS)]
    for name in names:
        lab.user(name, role="admin", password=None)
    clients = [lab.api(name) for name in names]
    label = clients[0].post(f"/api/v1{lab.feature_url(1)}/labels", json={"text": "v1"}).json()
    url = f"/api/v1/labels/{label['id']}"
    winners = ["v1"]
    for round_ in range(ROUNDS):
        base = round_ + 1
        barrier = threading.Barrier(N_CLIENTS)
        results: list = [None] * N_CLIENTS

        def edit(i: int) -> None:
            barrier.wait()
            results[i] = clients[i].patch(url, json={"base_version": base, "text": f"round {round_} by {i}"})

        threads = [threading.Thread(target=edit, args=(i,)) for i in range(N_CLIENTS)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=120)
        statuses = sorted(r.status_code for r in results)
        assert statuses == [200] + [409] * (N_CLIENTS - 1), statuses
        won = next(i for i, r in enumerate(results) if r.status_code == 200)
        assert results[won].json()["version"] == base + 1
        for i, r in enumerate(results):
            if r.status_code == 409:
                body = r.json()
                assert body["yours"]["text"] == f"round {round_} by {i}", "the loser's text comes back"
                assert body["current"]["text"] == f"round {round_} by {won}" and body["current"]["version"] == base + 1
        winners.append(f"round {round_} by {won}")
    history = lab.anon.get(url).json()
    assert history["label"]["version"] == ROUNDS + 1 and history["label"]["text"] == winners[-1]
    assert [(r["version"], r["text"]) for r in reversed(history["revisions"])] == list(enumerate(winners, start=1))
    events = lab.anon.get(f"/api/v1/sources/{lab.source}/activity").json()["events"]
    assert sorted(e["kind"] for e in events) == ["label_created"] + ["label_edited"] * ROUNDS


def test_concurrent_votes_keep_score_exact(any_lab):
    lab = any_lab
    names = [f"voter{i:02d}" for i in range(N_CLIENTS)]
    for name in names:
        lab.user(name, password=None)
    clients = [lab.api(name) for name in names]
    label = clients[0].post(f"/api/v1{lab.feature_url(2)}/labels", json={"text": "popular"}).json()
    barrier = threading.Barrier(N_CLIENTS)
    statuses: list = [None] * N_CLIENTS

    def vote(i: int) -> None:
        barrier.wait()
        statuses[i] = clients[i].put(f"/api/v1/labels/{label['id']}/vote", json={"value": 1 if i % 4 else -1}).status_code

    threads = [threading.Thread(target=vote, args=(i,)) for i in range(N_CLIENTS)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert statuses == [200] * N_CLIENTS
    assert lab.anon.get(f"/api/v1/labels/{label['id']}").json()["label"]["score"] == 15 - 5


def test_search_works_on_both_backends(any_lab):
    lab = any_lab
    lab.user("ada", password=None)
    api = lab.api("ada")
    api.post(f"/api/v1{lab.feature_url(1)}/labels", json={"text": "cooking recipes", "description": "kitchen words"})
    api.post(f"/api/v1{lab.feature_url(2)}/labels", json={"text": "python keywords"})
    found = lab.anon.get("/api/v1/search", params={"q": "kitchen"}).json()["results"]
    assert [r["feature_index"] for r in found] == [1]
    assert lab.anon.get("/api/v1/search", params={"q": "<script>'\")"}).json()["results"] == []
