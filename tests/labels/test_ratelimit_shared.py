"""Rate limits counted in Redis are shared by every worker of a server; in memory each process counts alone."""

from __future__ import annotations

import pytest
from limits.storage import RedisStorage
from limits.strategies import MovingWindowRateLimiter

from app.errors import Unavailable
from app.http.app import create_app
from tests.labels.conftest import SECRET, Lab
from tests.labels.factories import PASSWORD
from tests.labels.helpers import meta_csrf


def _two_workers(make_lab, tmp_path, **overrides) -> tuple[Lab, Lab]:
    """Two apps over one database, as two uvicorn workers of one server would be."""
    first = make_lab(database_url=f"sqlite:///{tmp_path / 'shared.db'}", **overrides)
    second = Lab(create_app(first.app.state.settings), first.source)
    return first, second


def _comment(lab: Lab, name: str, body: str) -> int:
    return lab.api(name).post(f"/api/v1{lab.feature_url(1)}/comments", json={"body": body}).status_code


@pytest.mark.redis
def test_workers_share_the_write_limit_through_redis(make_lab, tmp_path, redis_url):
    one, two = _two_workers(make_lab, tmp_path, redis_url=redis_url, write_rate_limit="3/minute")
    try:
        one.user("ada")
        two.keys = one.keys
        codes = [_comment(worker, "ada", str(i)) for i, worker in enumerate([one, two, one, two])]
        assert codes == [201, 201, 201, 429]
    finally:
        one.app.state.rate_limits.clear()
        two.close()


@pytest.mark.redis
def test_workers_share_the_login_limit_through_redis(make_lab, tmp_path, redis_url):
    one, two = _two_workers(make_lab, tmp_path, redis_url=redis_url, login_rate_limit="2/minute")
    try:
        one.user("ada")

        def attempt(worker, address):
            c = worker.client(client=(address, 4000))
            return c.post("/login", data={"username": "ada", "password": "guess", "csrf_token": meta_csrf(c.get("/login"))}).status_code

        assert [attempt(one, "192.0.2.1"), attempt(two, "192.0.2.2"), attempt(one, "192.0.2.3")] == [401, 401, 429]
    finally:
        one.app.state.rate_limits.clear()
        two.close()


def test_memory_limits_are_per_process(make_lab, tmp_path):
    one, two = _two_workers(make_lab, tmp_path, write_rate_limit="2/minute")
    try:
        one.user("ada")
        two.keys = one.keys
        assert [_comment(one, "ada", "a"), _comment(one, "ada", "b"), _comment(one, "ada", "c")] == [201, 201, 429]
        assert _comment(two, "ada", "d") == 201, "documented: each process counts on its own without Redis"
    finally:
        two.close()


def test_a_redis_that_does_not_answer_stops_the_start(make_settings):
    with pytest.raises(Unavailable, match="does not answer"):
        create_app(make_settings(secret_key=SECRET, redis_url="redis://:hunter2@127.0.0.1:1/0"))
    try:
        create_app(make_settings(secret_key=SECRET, redis_url="redis://:hunter2@127.0.0.1:1/0"))
    except Unavailable as exc:
        assert "hunter2" not in exc.message, "the password is not repeated in the message"


@pytest.mark.redis
def test_a_redis_lost_while_serving_answers_503_not_500(make_lab, redis_url):
    lab = make_lab(redis_url=redis_url)
    lab.user("ada")
    limits = lab.app.state.rate_limits
    limits.storage = RedisStorage("redis://127.0.0.1:1/0", wrap_exceptions=True, socket_timeout=0.5,
                                  socket_connect_timeout=0.5)
    limits.limiter = MovingWindowRateLimiter(limits.storage)
    r = lab.api("ada").post(f"/api/v1{lab.feature_url(1)}/comments", json={"body": "x"})
    assert r.status_code == 503 and "rate-limit store" in r.json()["detail"]
    c = lab.client()
    r = c.post("/login", data={"username": "ada", "password": PASSWORD, "csrf_token": meta_csrf(c.get("/login"))})
    assert r.status_code == 503
