import pytest

from tests.fixtures import add_source
from tests.ml.factories import build_tokenizer, encode

# Text for the browse tokenizer: the model sentences plus hostile markup and non-ASCII, so token text is real.
TEXT = [
    "The quick brown fox jumps over the lazy dog.\n",
    "Sparse autoencoders find features in language model activations.",
    "A feature fires on some tokens and stays silent on the others.\n\n",
    "Numbers like 1, 2, 3 and 42 appear in text; so do names like Ada and Alan.",
    "def add(a, b):\n    return a + b\n",
    "Caf\u00e9 cr\u00e8me \u2603 and <script>alert('x')</script> & \"quotes\".",
]
# SAELens-style health keys, as written by other tools (the precompute writes its own; both are read).
HEALTH = {"L0": 12.5, "explained_variance": 0.81, "mse": 0.0123, "dead": 3, "dense": 1, "ce_clean": 3.1,
          "ce_spliced": 3.4, "ce_zero_ablation": 7.9, "ce_recovered": 0.94}


def build_tokenizer_dir(folder):
    build_tokenizer(vocab_size=320, texts=TEXT * 3, folder=folder)
    return folder


@pytest.fixture(scope="session")
def tokenizer_dir(tmp_path_factory):
    return build_tokenizer_dir(tmp_path_factory.mktemp("tok") / "model")


def _populate(client, tokenizer_dir):
    add_source(client, model_name=str(tokenizer_dir), d_sae=64, dead={3, 10, 63}, dense={5}, health=HEALTH,
               token_ids=encode(tokenizer_dir, "".join(TEXT)))
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
