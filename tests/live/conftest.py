import pytest
import torch

from tests.live.factories import build_bundle, seed_sources

torch.set_num_threads(1)


@pytest.fixture(scope="session")
def live_bundle(tmp_path_factory):
    bundle, model_dir = build_bundle(tmp_path_factory.mktemp("live-model"))
    bundle.model_dir = model_dir
    return bundle


@pytest.fixture
def live_client(make_app_client, live_bundle, tmp_path):
    """A client over a fresh database holding the bundle's two sources; keyword overrides go to Settings."""
    made = []

    def factory(bundle=live_bundle, **overrides):
        made.append(1)
        overrides.setdefault("data_dir", tmp_path / f"live-data-{len(made)}")
        client = make_app_client(bundle=bundle, **overrides)
        seed_sources(client, live_bundle, str(live_bundle.model_dir))
        return client

    return factory


@pytest.fixture
def count_forwards(live_bundle):
    """A list that grows by one per forward pass of the tiny model (a pre-hook on the whole model)."""
    calls = []
    handle = live_bundle.lm.model.register_forward_pre_hook(lambda *_: calls.append(1))
    yield calls
    handle.remove()
