"""Issue 16: no route answers 500 (or hangs, or sends a header a real server cannot) to hostile input.

Every route of the app's own route table gets hostile path segments, query values, headers and bodies, sent by
a logged-in admin with a CSRF token and an API key (so the input gets past authentication into the services and
the database) and, for a sample, anonymously. The only answer >= 500 allowed is 503 "no model is loaded" from
the live and steering routes of a server started without a model. PostgreSQL (which refuses NUL in text and
integers past 64 bits) gets the sharpest subset.
"""

from __future__ import annotations

import time

import pytest
from fastapi.testclient import TestClient

from app.http.app import create_app
from tests.fuzz_routes import HEADERS, JSON_BODIES, SEGMENTS, VALUES, bad_header_bytes, hostile_requests, route_table
from tests.labels.conftest import SECRET, build_lab
from tests.labels.factories import PASSWORD
from tests.labels.helpers import meta_csrf

HANG_S = 30.0  # a request slower than this is a hang (not a timing assertion: normal ones take ms; the first
# semantic search loads the embedding model, which takes seconds on a busy 2-core machine)
LAST = ("/logout", "/account/sessions/end", "/account/password", "/admin/accounts/{account_id}/role",
        "/admin/accounts/{account_id}/sessions/end")  # routes that end the fuzzing admin's session go last
PG_SEGMENTS = ["%00", "nul%00nul", "%ff", "%E2%80%AE", "99999999999999999999999", "-99999999999999999999",
               "9223372036854775808", "a" * 5000]
PG_VALUES = ["%00", "%ff%fe", "99999999999999999999999", "1e400", "NaN"]


def _world(make_settings, tmp_path, database_url: str = ""):
    settings = {"secret_key": SECRET, "open_registration": True, "data_dir": tmp_path / "fuzz",
                "write_rate_limit": "1000000/minute", "login_rate_limit": "1000000/minute",
                "steer_rate_limit": "1000000/minute"}
    if database_url:
        settings["database_url"] = database_url
    lab = build_lab(create_app(make_settings(**settings)), "fz-sae")
    lab.user("root", role="admin")
    lab.user("ada")
    ada = lab.api("ada")
    label = ada.post(f"/api/v1{lab.feature_url(1)}/labels", json={"text": "a label"}).json()
    ada.post(f"/api/v1{lab.feature_url(1)}/comments", json={"body": "a comment"})
    fl = ada.post("/api/v1/lists", json={"source": lab.source, "name": "a list"}).json()
    fill = {"source": lab.source, "index": "1", "label_id": str(label["id"]), "comment_id": "1", "slug": fl["slug"],
            "key_id": "1", "account_id": "2", "run_id": "no-such-run", "file": "js/app.js"}
    return lab, fill


def _admin(lab) -> TestClient:
    c = TestClient(lab.app, raise_server_exceptions=False).__enter__()  # one event loop for all its requests
    token = meta_csrf(c.get("/login"))
    assert c.post("/login", data={"username": "root", "password": PASSWORD, "csrf_token": token}).status_code == 200
    c.headers.update({"X-CSRF-Token": meta_csrf(c.get("/account")), "Authorization": f"Bearer {lab.keys['root']}"})
    return c


def _acceptable(response) -> bool:
    if response.status_code < 500:
        return True
    return response.status_code == 503 and "No model is loaded" in response.text


def fuzz(lab, fill, timings: list | None = None, **sets) -> tuple[int, list[str]]:
    routes = sorted(route_table(lab.app), key=lambda r: r.path in LAST)
    admin, anon = _admin(lab), TestClient(lab.app, raise_server_exceptions=False).__enter__()
    problems, count = [], 0
    for i, (method, url, kwargs) in enumerate(hostile_requests(routes, fill, **sets)):
        client = anon if i % 7 == 0 else admin
        started = time.monotonic()
        try:
            r = client.request(method, url, follow_redirects=False, **kwargs)
        except Exception as exc:  # noqa: BLE001 - the client itself failing is a finding too
            problems.append(f"{method} {url[:120]} {kwargs.get('headers', '')!s:.80}: client error {exc!r:.200}")
            continue
        count += 1
        took = time.monotonic() - started
        if timings is not None:
            timings.append((took, method, url[:100], str(kwargs.get("headers", ""))[:60], str(kwargs.get("content", ""))[:30]))
        where = f"{method} {url[:120]} {str(kwargs.get('headers', ''))[:80]} body={str(kwargs.get('content', ''))[:40]}"
        if not _acceptable(r):
            problems.append(f"{where}: {r.status_code} {r.text[:200]}")
        if took > HANG_S:
            problems.append(f"{where}: took {took:.1f} s")
        if bad_header_bytes(r):
            problems.append(f"{where}: unsendable headers {bad_header_bytes(r)[:2]}")
        if "/logout" in url or "sessions/end" in url or "/role" in url or "/password" in url:
            admin.__exit__(None, None, None)
            admin = _admin(lab)  # stay logged in for the routes after it
    admin.__exit__(None, None, None)
    anon.__exit__(None, None, None)
    return count, problems


@pytest.mark.timeout(300)
def test_no_route_answers_500_on_sqlite(make_settings, tmp_path):
    lab, fill = _world(make_settings, tmp_path)
    try:
        count, problems = fuzz(lab, fill)
    finally:
        lab.close()
    assert count > 2000, f"only {count} requests were sent; is the route table empty?"
    assert not problems, f"{len(problems)} of {count} hostile requests failed:\n" + "\n".join(problems[:40])


@pytest.mark.postgres
@pytest.mark.timeout(300)
def test_no_route_answers_500_on_postgres(make_settings, tmp_path, pg_url):
    lab, fill = _world(make_settings, tmp_path, pg_url)
    try:
        count, problems = fuzz(lab, fill, segments=PG_SEGMENTS, values=PG_VALUES, headers=HEADERS[:2],
                               json_bodies=JSON_BODIES[:5], form_values=["nul\x00", "99999999999999999999999"],
                               core=3)
    finally:
        lab.close()
        lab.app.state.engine.dispose()
    assert count > 800, f"only {count} requests were sent"
    assert not problems, f"{len(problems)} of {count} hostile requests failed:\n" + "\n".join(problems[:40])


def test_the_route_table_is_complete(make_settings, tmp_path):
    lab, _ = _world(make_settings, tmp_path)
    try:
        paths = {r.path for r in route_table(lab.app)}
    finally:
        lab.close()
    for expected in ("/sources/{source}", "/api/v1/labels/{label_id}", "/steer/{run_id}/stream", "/admin/audit",
                     "/static/{file}", "/openapi.json"):
        assert expected in paths
    assert set(SEGMENTS) and set(VALUES)
