"""A fresh app and database per test with one source of 8 features, and helpers to act as several people.

`lab.user(name, role)` creates an account (and API key); `lab.browser(name)` is a separate TestClient logged
in as that account with its CSRF token at hand (`.csrf`); `lab.api(name)` sends that account's bearer key.
PostgreSQL tests get a database of their own (`pg_url`), dropped afterwards, or skip with the reason.
"""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

from tests.labels.factories import PASSWORD, make_account, make_source
from tests.labels.helpers import meta_csrf, soup  # noqa: F401 - used by the Lab helpers

SECRET = "labels-test-7Qm2vX9pLr4Tz8Kw3Nc6Yb1Hd5Fg0Js"  # >= 32 characters, not a placeholder


class Lab:
    def __init__(self, app, source_name: str):
        self.app = app
        self.source = source_name
        self.clients: list[TestClient] = []
        self.keys: dict[str, str] = {}
        self.anon = self.client()

    def client(self, **kwargs) -> TestClient:
        c = TestClient(self.app, **kwargs)
        c.__enter__()
        self.clients.append(c)
        return c

    def session(self):
        return self.app.state.sessionmaker()

    def user(self, name: str, role: str = "labeler", password: str | None = PASSWORD):
        with self.session() as s:
            actor, token = make_account(s, name, role, password)
        self.keys[name] = token
        return actor

    def browser(self, name: str, password: str = PASSWORD, **kwargs) -> TestClient:
        c = self.client(**kwargs)
        token = meta_csrf(c.get("/login"))
        r = c.post("/login", data={"username": name, "password": password, "csrf_token": token, "next": "/account"})
        assert r.status_code == 200, r.text
        c.csrf = meta_csrf(r)
        return c

    def api(self, name: str, **kwargs) -> TestClient:
        c = self.client(**kwargs)
        c.headers["Authorization"] = f"Bearer {self.keys[name]}"
        return c

    def feature_url(self, index: int) -> str:
        return f"/sources/{self.source}/features/{index}"

    def close(self):
        for c in self.clients:
            c.__exit__(None, None, None)


def build_lab(app, source_name: str = "lab-sae", **source_kwargs) -> Lab:
    make_source(app.state.engine, source_name, **source_kwargs)
    return Lab(app, source_name)


@pytest.fixture
def make_lab(make_settings, tmp_path):
    from app.http.app import create_app

    labs = []

    def factory(database_url: str = "", **overrides) -> Lab:
        values = {"secret_key": SECRET, "open_registration": True, "data_dir": tmp_path / f"lab{len(labs)}",
                  **overrides}
        if database_url:
            values["database_url"] = database_url
        lab = build_lab(create_app(make_settings(**values)))
        labs.append(lab)
        return lab

    yield factory
    for lab in labs:
        lab.close()
        lab.app.state.engine.dispose()


@pytest.fixture
def lab(make_lab) -> Lab:
    return make_lab()


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def any_lab(request, make_lab) -> Lab:
    """The same test on SQLite and on the local PostgreSQL."""
    if request.param == "sqlite":
        return make_lab()
    return make_lab(database_url=request.getfixturevalue("pg_url"))
