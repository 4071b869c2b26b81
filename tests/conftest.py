"""Shared fixtures: a fresh world per test.

- `make_settings(**overrides)`: Settings over a fresh temporary SQLite file (no model loading).
- `make_app_client(**overrides)`: a TestClient over a fresh app and database.
- `demo_database`: a session-wide SQLite file holding a real precompute of the shipped demo
  (small token budget); tests copy it so none sees another's writes (`demo_db_url`).
"""

from __future__ import annotations

import os
import shutil
import uuid
from pathlib import Path

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

PG_ADMIN_URL = os.environ.get("FEATUREBOARD_TEST_PG_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test")
TEST_OUTPUT = Path(__file__).resolve().parent.parent / "test-output"
DEMO_TEST_TOKENS = 40_000


@pytest.fixture
def make_settings(tmp_path):
    from app.config import Settings

    def factory(**overrides):
        values = {"data_dir": tmp_path / "data", "load_model": False}
        values.update(overrides)
        return Settings(**values)

    return factory


@pytest.fixture
def make_app_client(make_settings):
    from fastapi.testclient import TestClient

    from app.http.app import create_app

    clients = []

    def factory(bundle=None, **overrides):
        app = create_app(make_settings(**overrides), bundle=bundle)
        client = TestClient(app)
        client.__enter__()
        clients.append(client)
        return client

    yield factory
    for c in clients:
        c.__exit__(None, None, None)


@pytest.fixture(scope="session")
def demo_database(tmp_path_factory) -> Path:
    """Path of a SQLite database with the shipped demo precomputed on DEMO_TEST_TOKENS tokens."""
    import torch

    from app.precompute.runner import precompute_demo

    torch.set_num_threads(min(2, torch.get_num_threads()))
    folder = tmp_path_factory.mktemp("demo-db")
    db = folder / "featureboard.db"
    precompute_demo(database_url=f"sqlite:///{db}", data_dir=folder, n_tokens=DEMO_TEST_TOKENS)
    return db


@pytest.fixture
def demo_db_url(demo_database, tmp_path) -> str:
    """A private copy of the demo database for one test."""
    copy = tmp_path / "demo.db"
    shutil.copy(demo_database, copy)
    return f"sqlite:///{copy}"


@pytest.fixture(scope="session")
def test_output_dir() -> Path:
    TEST_OUTPUT.mkdir(exist_ok=True)
    return TEST_OUTPUT


def skip_or_fail(reason: str | None, service: str) -> None:
    """Skip the test with the reason a local service is missing, or fail it under CI, which must run it."""
    if reason:
        if os.environ.get("CI"):
            pytest.fail(f"CI must run the {service} tests: {reason}")
        pytest.skip(reason)


def pg_unavailable() -> str | None:
    """None when the local PostgreSQL answers, else the reason tests skip."""
    from sqlalchemy import create_engine, text

    try:
        engine = create_engine(PG_ADMIN_URL, connect_args={"connect_timeout": 3})
        with engine.connect() as conn:
            conn.execute(text("SELECT 1"))
        engine.dispose()
        return None
    except Exception as err:  # noqa: BLE001 - any failure means "no PostgreSQL here"
        return f"no PostgreSQL at {PG_ADMIN_URL} ({type(err).__name__}: {str(err)[:80]})"


@pytest.fixture
def pg_url():
    """A PostgreSQL database of this test's own, dropped afterwards; skips with the reason when none answers."""
    from sqlalchemy import create_engine, text

    skip_or_fail(pg_unavailable(), "PostgreSQL")
    name = f"fb_test_{uuid.uuid4().hex[:10]}"
    admin = create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    yield PG_ADMIN_URL.rsplit("/", 1)[0] + f"/{name}"
    with admin.connect() as conn:
        conn.execute(text(f'DROP DATABASE "{name}" WITH (FORCE)'))
    admin.dispose()


REDIS_TEST_URL = os.environ.get("FEATUREBOARD_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")


def redis_unavailable() -> str | None:
    """None when the local Redis answers, else the reason tests skip."""
    try:
        import redis

        client = redis.Redis.from_url(REDIS_TEST_URL, socket_connect_timeout=2, socket_timeout=2)
        client.ping()
        client.close()
        return None
    except Exception as err:  # noqa: BLE001 - any failure means "no Redis here"
        return f"no Redis at {REDIS_TEST_URL} ({type(err).__name__}: {str(err)[:80]})"


@pytest.fixture
def redis_url():
    """The local Redis (rate-limit keys are namespaced per database, so tests never share counts); skips with the
    reason when none answers, and fails instead under CI."""
    skip_or_fail(redis_unavailable(), "Redis")
    return REDIS_TEST_URL


# --- the fixture world (tests/fixtures.py) ---------------------------------------------------------------------

@pytest.fixture(scope="session")
def world(tmp_path_factory):
    """The shared fixture world, built once per session through the real precompute, accounts and labels code."""
    import torch

    from tests.fixtures import build_world

    torch.set_num_threads(min(2, torch.get_num_threads()))
    return build_world(tmp_path_factory.mktemp("world"))


@pytest.fixture
def world_db_url(world, tmp_path) -> str:
    """A private copy of the world's database for one test."""
    return world.copy_to(tmp_path / "world-copy")


@pytest.fixture
def world_client(world_db_url, make_app_client):
    """An app (no model loaded) over a private copy of the world."""
    return make_app_client(database_url=world_db_url)
