import pytest
import torch

from app.ml.lm import load_language_model
from tests.ml.factories import build_tiny_model

torch.set_num_threads(1)


@pytest.fixture(scope="session")
def tiny_model_dirs(tmp_path_factory):
    root = tmp_path_factory.mktemp("models")
    return {kind: build_tiny_model(root, kind) for kind in ("gpt2", "neox", "llama")}


@pytest.fixture(scope="session")
def tiny_lms(tiny_model_dirs):
    return {kind: load_language_model(str(path), device="cpu") for kind, path in tiny_model_dirs.items()}


@pytest.fixture(scope="session")
def gpt2(tiny_lms):
    return tiny_lms["gpt2"]


@pytest.fixture
def token_ids(gpt2):
    ids = gpt2.tokenizer(["The quick brown fox jumps", "Sparse features fire on tokens"],
                         return_tensors="pt", padding=True)
    return ids["input_ids"], ids["attention_mask"]
