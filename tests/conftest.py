"""Shared fixtures: a fresh world per test.

- `make_settings(**overrides)`: Settings over a fresh temporary SQLite file (no model loading).
- `make_app_client(**overrides)`: a TestClient over a fresh app and database.
- `demo_database`: a session-wide SQLite file holding a real precompute of the shipped demo
  (small token budget); tests copy it so none sees another's writes (`demo_db_url`).
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

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

    from app.main import create_app

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
