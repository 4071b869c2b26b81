"""Fixtures for autolabel tests: a word-keyed source (real token text), the fake LLM server, and a lab app."""

from __future__ import annotations

import shutil

import pytest

from tests.autolabel.factories import build_tokenizer, build_word_source
from tests.autolabel.fake_llm import FakeLLM


def embed_missing() -> str | None:
    from app.ml.embed import available

    return available()


needs_embed = pytest.mark.skipif(embed_missing() is not None, reason=str(embed_missing()))


@pytest.fixture(scope="session")
def word_tokenizer(tmp_path_factory):
    return build_tokenizer(tmp_path_factory.mktemp("words") / "model")


@pytest.fixture(scope="session")
def word_database(tmp_path_factory, word_tokenizer):
    """A migrated SQLite file with source 'words-sae' (features 0-5 fire on one word each, 6 is dead)."""
    from app.store.engine import upgrade_database

    path = tmp_path_factory.mktemp("words-db") / "words.db"
    url = f"sqlite:///{path}"
    upgrade_database(url)
    build_word_source(url, word_tokenizer)
    return path


@pytest.fixture
def word_db_url(word_database, tmp_path) -> str:
    copy = tmp_path / "words.db"
    shutil.copy(word_database, copy)
    return f"sqlite:///{copy}"


@pytest.fixture
def sessions(word_db_url):
    from app.store.engine import make_engine, make_sessionmaker

    engine = make_engine(word_db_url)
    yield make_sessionmaker(engine)
    engine.dispose()


@pytest.fixture(scope="session")
def fake_llm_server():
    server = FakeLLM().start()
    yield server
    server.stop()


@pytest.fixture
def fake_llm(fake_llm_server):
    fake_llm_server.mode = "ok"
    fake_llm_server.requests.clear()
    fake_llm_server.max_in_flight = 0
    return fake_llm_server


@pytest.fixture
def lab(word_database, tmp_path, make_settings):
    """An app over a copy of the word database, with label-test helpers (users, logged-in browsers)."""
    from app.http.app import create_app
    from tests.labels.conftest import SECRET, Lab

    data_dir = tmp_path / "data"
    data_dir.mkdir()
    shutil.copy(word_database, data_dir / "featureboard.db")
    app = create_app(make_settings(secret_key=SECRET, data_dir=data_dir))
    helper = Lab(app, "words-sae")
    yield helper
    helper.close()
    app.state.engine.dispose()
