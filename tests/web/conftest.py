import pytest

from tests.web.factories import SENTENCES, build_tokenizer_dir, encode, make_source


@pytest.fixture(scope="session")
def tokenizer_dir(tmp_path_factory):
    return build_tokenizer_dir(tmp_path_factory.mktemp("tok") / "model")


def _populate(client, tokenizer_dir):
    ids = encode(tokenizer_dir, "".join(SENTENCES))
    with client.app.state.sessionmaker() as session:
        make_source(session, model_name=str(tokenizer_dir), d_sae=64, dead={3, 10, 63}, dense={5}, token_ids=ids)
    return client


@pytest.fixture(scope="module")
def browse_client(tmp_path_factory, tokenizer_dir):
    """Read-only client shared by a module: source 'test-sae' (64 features: 3, 10, 63 dead; 5 dense) with
    real token text. Tests that write use `fresh_browse_client`."""
    from fastapi.testclient import TestClient

    from app.config import Settings
    from app.http.app import create_app

    app = create_app(Settings(data_dir=tmp_path_factory.mktemp("browse"), load_model=False))
    with TestClient(app) as client:
        yield _populate(client, tokenizer_dir)


@pytest.fixture
def fresh_browse_client(make_app_client, tokenizer_dir):
    """Like browse_client, over a database of this test's own."""
    return _populate(make_app_client(), tokenizer_dir)
