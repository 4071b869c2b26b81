"""Corpus specs → a deterministic stream of fixed-length token contexts.

Specs (``parse_corpus``):

- ``demo``                 the held-out State of the Union speeches (``app.demo.corpus``)
- a path                   a ``.txt`` / ``.jsonl`` file, or a folder searched recursively for both
                           (files in sorted relative-path order; jsonl reads ``text_field``)
- ``hf:NAME[:split]``      a Hugging Face dataset, streamed (needs the ``datasets`` package)

Documents are tokenized without special tokens, followed by EOS, and packed: each context is
``[BOS] + the next context_size - 1 stream tokens`` (``prepend_bos``) or ``context_size`` stream
tokens. A trailing partial context is dropped; exact duplicate contexts are dropped (hash of the
token ids). Contexts are numbered 0, 1, 2, ... in stream order (the *ordinal*); the same spec,
tokenizer and settings always give the same contexts with the same ordinals.

BOS/EOS/pad positions are *invalid*: :func:`valid_mask` marks them, and precompute never counts
an activation there.
"""

from __future__ import annotations

import hashlib
import json
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from app.errors import Invalid

DEFAULT_CONTEXT_SIZE = 128
_TOKENIZE_CHARS = 1 << 20  # long .txt files are tokenized in ~1 MB pieces cut at line ends
_TOKENIZE_DOCS = 64


class CorpusError(Invalid, ValueError):
    """A corpus that cannot be read as asked; the message names the spec or file."""


@dataclass(frozen=True)
class CorpusSpec:
    """What to read. ``kind`` is "demo", "files" or "hf"."""

    kind: str
    location: str = ""  # path (files) or dataset name (hf)
    split: str = "train"  # hf only
    text_field: str = "text"  # jsonl and hf

    def describe(self) -> dict:
        out = {"kind": self.kind, "location": self.location}
        if self.kind == "hf":
            out["split"] = self.split
        if self.kind in ("hf", "files"):
            out["text_field"] = self.text_field
        return out


def parse_corpus(spec: str, text_field: str = "text") -> CorpusSpec:
    """``"demo"`` | path | ``"hf:NAME[:split]"`` → :class:`CorpusSpec` (paths must exist)."""
    spec = spec.strip()
    if not spec:
        raise CorpusError("corpus spec is empty; use demo, a .txt/.jsonl file or folder, or hf:NAME[:split]")
    if spec == "demo":
        return CorpusSpec("demo", "sotu-heldout")
    if spec.startswith("hf:"):
        name, _, split = spec[3:].partition(":")
        if not name:
            raise CorpusError(f"corpus {spec!r}: expected hf:NAME[:split], e.g. hf:roneneldan/TinyStories:train")
        return CorpusSpec("hf", name, split or "train", text_field)
    path = Path(spec).expanduser()
    if not path.exists():
        raise CorpusError(f"corpus {spec!r}: no such file or folder (or use demo, hf:NAME[:split])")
    return CorpusSpec("files", str(path.resolve()), text_field=text_field)


@dataclass
class CorpusStats:
    """What the stream saw; ``skipped`` counts single bad jsonl lines by reason."""

    documents: int = 0
    stream_tokens: int = 0
    contexts: int = 0
    duplicates: int = 0
    skipped: Counter = field(default_factory=Counter)

    def as_dict(self) -> dict:
        return {"documents": self.documents, "stream_tokens": self.stream_tokens, "contexts": self.contexts,
                "duplicates_dropped": self.duplicates, "lines_skipped": dict(self.skipped)}


# -- documents -------------------------------------------------------------------------------------
def _corpus_files(root: Path) -> list[Path]:
    if root.is_file():
        if root.suffix not in (".txt", ".jsonl"):
            raise CorpusError(f"corpus file {root}: expected a .txt or .jsonl file")
        return [root]
    files = sorted((p for p in root.rglob("*") if p.is_file() and p.suffix in (".txt", ".jsonl")),
                   key=lambda p: p.relative_to(root).as_posix())
    if not files:
        raise CorpusError(f"corpus folder {root} holds no .txt or .jsonl files")
    return files


def _read_lines(path: Path) -> Iterator[str]:
    try:
        with path.open("rb") as handle:
            for number, raw in enumerate(handle, 1):
                try:
                    yield raw.decode("utf-8")
                except UnicodeDecodeError as exc:
                    raise CorpusError(
                        f"corpus file {path} is not UTF-8 (line {number}, byte {exc.start}); "
                        "convert it, e.g. iconv -f latin1 -t utf-8"
                    ) from None
    except OSError as exc:
        raise CorpusError(f"corpus file {path} cannot be read: {exc.strerror or exc}") from None


def _txt_documents(path: Path) -> Iterator[tuple[str, str]]:
    piece: list[str] = []
    size = 0
    for line in _read_lines(path):
        piece.append(line)
        size += len(line)
        if size >= _TOKENIZE_CHARS:
            yield path.name, "".join(piece)
            piece, size = [], 0
    if piece:
        yield path.name, "".join(piece)


def _jsonl_documents(path: Path, text_field: str, stats: CorpusStats) -> Iterator[tuple[str, str]]:
    for number, line in enumerate(_read_lines(path), 1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError:
            stats.skipped["invalid JSON"] += 1
            continue
        text = record.get(text_field) if isinstance(record, dict) else None
        if not isinstance(text, str):
            stats.skipped[f"no string field {text_field!r}"] += 1
            continue
        yield f"{path.name}:{number}", text


def _hf_documents(spec: CorpusSpec, stats: CorpusStats) -> Iterator[tuple[str, str]]:
    try:
        import datasets  # noqa: PLC0415 - optional dependency
    except ImportError:
        raise CorpusError(
            f"corpus hf:{spec.location} needs the Hugging Face datasets package: pip install datasets"
        ) from None
    try:
        dataset = datasets.load_dataset(spec.location, split=spec.split, streaming=True)
    except Exception as exc:  # noqa: BLE001 - datasets raises many kinds; all mean "cannot load"
        raise CorpusError(f"corpus hf:{spec.location}:{spec.split} could not be loaded: {exc}") from None
    for number, record in enumerate(dataset):
        text = record.get(spec.text_field)
        if not isinstance(text, str):
            stats.skipped[f"no string field {spec.text_field!r}"] += 1
            continue
        yield f"{spec.location}:{number}", text


def iter_documents(spec: CorpusSpec, stats: CorpusStats | None = None) -> Iterator[tuple[str, str]]:
    """(name, text) of every document, in a fixed order."""
    stats = stats if stats is not None else CorpusStats()
    if spec.kind == "demo":
        from app.demo.corpus import speeches

        docs: Iterator[tuple[str, str]] = iter(speeches("heldout"))
    elif spec.kind == "hf":
        docs = _hf_documents(spec, stats)
    else:
        def file_docs() -> Iterator[tuple[str, str]]:
            for path in _corpus_files(Path(spec.location)):
                if path.suffix == ".jsonl":
                    yield from _jsonl_documents(path, spec.text_field, stats)
                else:
                    yield from _txt_documents(path)

        docs = file_docs()
    for name, text in docs:
        stats.documents += 1
        yield name, text


# -- contexts --------------------------------------------------------------------------------------
@dataclass(frozen=True)
class ContextSettings:
    context_size: int
    prepend_bos: bool
    bos_token_id: int | None
    special_ids: tuple[int, ...]  # BOS, EOS, pad: never valid activation positions


def context_settings(tokenizer, context_size: int, prepend_bos: bool) -> ContextSettings:
    bos = tokenizer.bos_token_id if tokenizer.bos_token_id is not None else tokenizer.eos_token_id
    if prepend_bos and bos is None:
        raise CorpusError("prepend_bos is set but the tokenizer has neither a BOS nor an EOS token")
    if context_size < 2:
        raise CorpusError(f"context_size must be at least 2, got {context_size}")
    specials = {t for t in (bos, tokenizer.eos_token_id, tokenizer.pad_token_id) if t is not None}
    return ContextSettings(context_size, prepend_bos, bos, tuple(sorted(specials)))


def corpus_key(model_name: str, spec: CorpusSpec, settings: ContextSettings) -> str:
    """Identity of the context stream: model (tokenizer), corpus and context settings. Contexts in
    the database are keyed by it, so SAEs on the same model and corpus share them."""
    payload = json.dumps({"model": model_name, "corpus": spec.describe(), "context_size": settings.context_size,
                          "prepend_bos": settings.prepend_bos, "bos": settings.bos_token_id}, sort_keys=True)
    return hashlib.sha256(payload.encode()).hexdigest()[:32]


def _token_pieces(spec: CorpusSpec, tokenizer, stats: CorpusStats) -> Iterator[list[int]]:
    """Token ids of each document followed by EOS. Documents are tokenized in groups (one call per
    group: the tokenizers library batches them) that start at one document and double up to
    ``_TOKENIZE_DOCS``, so the first batch of contexts is ready after one document, not 64."""
    eos = tokenizer.eos_token_id
    batch: list[str] = []
    group = 1

    def flush() -> Iterator[list[int]]:
        for ids in tokenizer(batch, add_special_tokens=False, verbose=False)["input_ids"]:
            yield list(ids) + ([eos] if eos is not None else [])

    for _name, text in iter_documents(spec, stats):
        if text:
            batch.append(text)
        if len(batch) >= group:
            yield from flush()
            batch, group = [], min(2 * group, _TOKENIZE_DOCS)
    if batch:
        yield from flush()


def iter_contexts(spec: CorpusSpec, tokenizer, settings: ContextSettings,
                  stats: CorpusStats | None = None, max_contexts: int | None = None) -> Iterator[np.ndarray]:
    """Token contexts ``int32 [context_size]`` in ordinal order, duplicates dropped.

    Raises :class:`CorpusError` when the corpus yields no document or fewer tokens than one context.
    """
    stats = stats if stats is not None else CorpusStats()
    body = settings.context_size - (1 if settings.prepend_bos else 0)
    buffer = np.empty(0, dtype=np.int32)
    seen: set[bytes] = set()
    for piece in _token_pieces(spec, tokenizer, stats):
        stats.stream_tokens += len(piece)
        buffer = np.concatenate([buffer, np.asarray(piece, dtype=np.int32)])
        n_full = len(buffer) // body
        for i in range(n_full):
            chunk = buffer[i * body:(i + 1) * body]
            if settings.prepend_bos:
                chunk = np.concatenate([np.array([settings.bos_token_id], dtype=np.int32), chunk])
            digest = hashlib.blake2b(chunk.tobytes(), digest_size=16).digest()
            if digest in seen:
                stats.duplicates += 1
                continue
            seen.add(digest)
            stats.contexts += 1
            yield chunk
            if max_contexts is not None and stats.contexts >= max_contexts:
                return
        buffer = buffer[n_full * body:]
    if stats.documents == 0:
        raise CorpusError(f"corpus {spec.kind}:{spec.location} is empty (no documents)")
    if stats.contexts == 0 and stats.duplicates == 0:
        raise CorpusError(
            f"corpus {spec.kind}:{spec.location} has {stats.stream_tokens} tokens, fewer than one context of "
            f"{settings.context_size}; use a larger corpus or a smaller --context-size"
        )


def iter_batches(contexts: Iterator[np.ndarray], batch_size: int) -> Iterator[tuple[int, torch.Tensor]]:
    """``(first ordinal, input_ids int64 [batch, context_size])``; the last batch may be short."""
    first, rows = 0, []
    for ctx in contexts:
        rows.append(ctx)
        if len(rows) == batch_size:
            yield first, torch.from_numpy(np.stack(rows)).long()
            first, rows = first + batch_size, []
    if rows:
        yield first, torch.from_numpy(np.stack(rows)).long()


class Prefetch:
    """Iterate ``iterator`` in a background thread up to ``depth`` items ahead, so tokenizing (the
    tokenizers library releases the GIL) runs on another core than the model's forward.

    :meth:`start` begins producing at once: the runner starts it before importing the model's code
    (seconds), so the first batches are ready when the model is. ``produce_s`` is the producer's
    time (tokenizing, packing), ``wait_s`` the consumer's time blocked on an empty queue: the stall
    tokenization causes. Exceptions are re-raised in the consumer; :meth:`close` stops the producer.
    """

    def __init__(self, iterator: Iterator, depth: int = 4) -> None:
        import queue
        import threading

        self.iterator = iterator
        self.produce_s = 0.0
        self.wait_s = 0.0
        self._items: queue.Queue = queue.Queue(maxsize=depth)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._produce, name="precompute-prefetch", daemon=True)

    def start(self) -> Prefetch:
        if not self._thread.is_alive() and self._thread.ident is None:
            self._thread.start()
        return self

    def _put(self, item: tuple) -> bool:
        """Queue ``item`` unless stopped meanwhile; False when stopped."""
        import queue

        while not self._stop.is_set():
            try:
                self._items.put(item, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def _produce(self) -> None:
        import time

        try:
            source = iter(self.iterator)
            while True:
                start = time.perf_counter()
                item = next(source, self)  # self marks the end
                self.produce_s += time.perf_counter() - start
                if item is self:
                    break
                if not self._put(("item", item)):
                    return
            self._put(("done", None))
        except BaseException as err:  # handed to the consumer, which raises it
            self._put(("error", err))

    def __iter__(self) -> Iterator:
        import time

        self.start()
        while True:
            start = time.perf_counter()
            kind, value = self._items.get()
            self.wait_s += time.perf_counter() - start
            if kind == "error":
                raise value
            if kind == "done":
                return
            yield value

    def close(self) -> None:
        self._stop.set()
        if self._thread.ident is not None:
            self._thread.join(timeout=5)


def valid_mask(input_ids: torch.Tensor, settings: ContextSettings) -> torch.Tensor:
    """bool, same shape as ``input_ids``: False at BOS/EOS/pad positions."""
    valid = torch.ones_like(input_ids, dtype=torch.bool)
    for token in settings.special_ids:
        valid &= input_ids != token
    return valid
