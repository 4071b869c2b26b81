"""Readable token text for a source: byte-level BPE decoded per token, cached per tokenizer.

Only the `tokenizers` library is used (never torch/transformers on a page view). A source whose
model has no local tokenizer.json shows token ids instead (`TokenText.available` is False).

Display rules: spaces stay (shaded backgrounds make them visible; `visible_spaces` turns them into
"␣" for token lists), newlines become "↵", tabs "⇥", other control characters and bytes that are
not valid UTF-8 on their own become "\\xNN".
"""

from __future__ import annotations

import json
import threading
from functools import lru_cache
from pathlib import Path

from app.paths import DEMO_ARTIFACTS_DIR, ROOT


def _bytes_to_unicode() -> dict[int, str]:
    """GPT-2's reversible byte -> printable character table used by byte-level BPE vocabularies."""
    bs = list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1)) + list(range(ord("®"), ord("ÿ") + 1))
    cs = bs[:]
    n = 0
    for b in range(256):
        if b not in bs:
            bs.append(b)
            cs.append(256 + n)
            n += 1
    return dict(zip(bs, (chr(c) for c in cs)))


_UNICODE_TO_BYTE = {ch: b for b, ch in _bytes_to_unicode().items()}
_CONTROL = {"\n": "↵", "\r": "⏎", "\t": "⇥"}


def readable_bytes(raw: bytes) -> str:
    """UTF-8 text with invalid bytes as \\xNN and control characters made visible."""
    text = raw.decode("utf-8", errors="backslashreplace")
    out = []
    for ch in text:
        if ch in _CONTROL:
            out.append(_CONTROL[ch])
        elif ord(ch) < 32 or ord(ch) == 127:
            out.append(f"\\x{ord(ch):02x}")
        else:
            out.append(ch)
    return "".join(out)


def readable_piece(piece: str, byte_level: bool) -> str:
    """One vocabulary entry as display text."""
    if byte_level and all(ch in _UNICODE_TO_BYTE for ch in piece):
        return readable_bytes(bytes(_UNICODE_TO_BYTE[ch] for ch in piece))
    if piece.startswith("<0x") and piece.endswith(">") and len(piece) == 6:  # SentencePiece byte fallback
        try:
            return readable_bytes(bytes([int(piece[3:5], 16)]))
        except ValueError:
            pass
    return readable_bytes(piece.replace("▁", " ").encode("utf-8"))


def visible_spaces(text: str) -> str:
    return text.replace(" ", "␣")


class TokenText:
    """The one token id → text of a vocabulary, two ways, both through the `tokenizers` library (never
    transformers, so pages need no model):

    - ``text``/``texts``: display strings (leading spaces kept, control characters and invalid bytes made visible:
      ↵ for newlines, \\xNN), from a table built lazily, once;
    - ``piece``/``pieces``/``decode``: the raw text the ids decode to (spaces and newlines as they are; a lone
      partial UTF-8 byte becomes U+FFFD), for labels, drafts and embeddings.

    Without a local tokenizer.json every id shows as "#123", so nothing fails, and ``available`` says so."""

    def __init__(self, tokenizer_file: Path | None):
        self.tokenizer_file = tokenizer_file
        self._table: list[str] | None = None
        self._tok = None
        self._pieces: dict[int, str] = {}
        self._lock = threading.Lock()

    @property
    def available(self) -> bool:
        return self.tokenizer_file is not None

    def _tokenizer(self):
        if self._tok is None:
            with self._lock:
                if self._tok is None:
                    from tokenizers import Tokenizer

                    self._tok = Tokenizer.from_file(str(self.tokenizer_file))
        return self._tok

    def _build(self) -> list[str]:
        tok = self._tokenizer()
        spec = json.loads(self.tokenizer_file.read_text(encoding="utf-8"))
        byte_level = _is_byte_level(spec)
        vocab = tok.get_vocab(with_added_tokens=True)
        table = [""] * (max(vocab.values()) + 1 if vocab else 0)
        for piece, token_id in vocab.items():
            table[token_id] = readable_piece(piece, byte_level)
        return table

    def table(self) -> list[str]:
        if self._table is None:
            table = self._build()
            with self._lock:
                if self._table is None:
                    self._table = table
        return self._table

    def text(self, token_id: int) -> str:
        if not self.available:
            return f"#{token_id}"
        table = self.table()
        return table[token_id] if 0 <= token_id < len(table) else f"#{token_id}"

    def texts(self, token_ids) -> list[str]:
        if not self.available:
            return [f"#{t}" for t in token_ids]
        table = self.table()
        n = len(table)
        return [table[t] if 0 <= t < n else f"#{t}" for t in token_ids]

    def piece(self, token_id: int) -> str:
        """One token as raw text."""
        if not self.available:
            return f"#{token_id}"
        found = self._pieces.get(token_id)
        if found is None:
            found = self._pieces[token_id] = self._tokenizer().decode([int(token_id)], skip_special_tokens=False)
        return found

    def pieces(self, token_ids) -> list[str]:
        return [self.piece(int(t)) for t in token_ids]

    def decode(self, token_ids) -> str:
        """The raw text of a run of ids, special tokens left out."""
        if not self.available:
            return " ".join(f"#{int(t)}" for t in token_ids)
        return self._tokenizer().decode([int(t) for t in token_ids], skip_special_tokens=True)


def _is_byte_level(spec: dict) -> bool:
    def has_byte_level(node) -> bool:
        if not isinstance(node, dict):
            return False
        if node.get("type") == "ByteLevel":
            return True
        return any(has_byte_level(child) for child in node.get("pretokenizers", []) or node.get("decoders", []) or [])

    return has_byte_level(spec.get("pre_tokenizer")) or has_byte_level(spec.get("decoder"))


def find_tokenizer_file(model_name: str) -> Path | None:
    """tokenizer.json for a model id or folder, looked up locally only (no network)."""
    candidates = []
    if model_name:
        path = Path(model_name).expanduser()
        candidates += [path, ROOT / model_name]
        if model_name in {"demo", "featureboard-demo"} or model_name.startswith("featureboard/demo"):
            candidates.append(DEMO_ARTIFACTS_DIR / "model")
    for folder in candidates:
        if (folder / "tokenizer.json").is_file():
            return folder / "tokenizer.json"
        if folder.name == "tokenizer.json" and folder.is_file():
            return folder
    if model_name and ("/" in model_name or model_name.isidentifier()):
        try:  # a hub model already in the local cache; never downloads
            from huggingface_hub import try_to_load_from_cache

            cached = try_to_load_from_cache(model_name, "tokenizer.json")
            if isinstance(cached, str):
                return Path(cached)
        except Exception:  # noqa: BLE001 - any cache problem means "not available locally"
            return None
    return None


@lru_cache(maxsize=32)
def token_text_for(model_name: str) -> TokenText:
    return TokenText(find_tokenizer_file(model_name))
