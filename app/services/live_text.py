"""Text in, token ids and readable token strings out (no torch): cleaning, limits, tokenization, and the live
page's form as a LiveRequest.

Display rule for each token: the exact slice of the user's text it covers (tokenizer offsets), with
control characters made visible (newline ↵, tab ⇥, others \\xNN, as on the feature pages). A
character split over several byte tokens (emoji, CJK in a small vocabulary) is shown on the first
token of the split; the others show "…" and name the byte they carry in their title. BOS shows as
the tokenizer's own spelling of it.
"""

from __future__ import annotations

import threading
import unicodedata
from collections.abc import Mapping
from dataclasses import dataclass

from app.errors import Invalid, TooLarge
from app.services.schemas.live import DEFAULT_MAX_DENSITY_PERCENT, LiveRequest
from app.services.tokens import readable_bytes, token_text_for

_slow_tokenizer_lock = threading.Lock()


def clean_text(text: str) -> str:
    """Lone surrogates (a JSON client may send "\\ud800") become U+FFFD; valid pairs become their character."""
    try:
        text.encode("utf-8")
        return text
    except UnicodeEncodeError:
        return text.encode("utf-16", "surrogatepass").decode("utf-16", "replace")


def check_chars(text: str, max_chars: int) -> None:
    if len(text) > max_chars:
        raise TooLarge(f"The text has {len(text):,} characters; the limit is {max_chars:,} "
                                  f"(setting FEATUREBOARD_MAX_LIVE_CHARS).")


def token_limit(max_tokens: int, model_positions: int | None) -> tuple[int, str]:
    """(limit, why): the setting, or the model's context length when that is shorter."""
    if model_positions is not None and model_positions < max_tokens:
        return model_positions, f"the model reads at most {model_positions:,} positions"
    return max_tokens, "setting FEATUREBOARD_MAX_LIVE_TOKENS"


def check_tokens(n_tokens: int, limit: int, why: str) -> None:
    if n_tokens > limit:
        raise TooLarge(f"The text is {n_tokens:,} tokens long (BOS included); the limit is "
                                  f"{limit:,} ({why}). Shorten the text.")


@dataclass(frozen=True)
class Tokenized:
    ids: list[int]  # [pos], BOS first when the model has one
    texts: list[str]  # [pos] display strings
    titles: list[str]  # [pos] hover text: the exact characters (or byte) and the id
    has_bos: bool


def tokenize(tokenizer, text: str, bos_token_id: int | None, model_name: str = "") -> Tokenized:
    """BOS + the text's tokens without the tokenizer's own specials (prepended exactly once, as precompute does)."""
    backend = getattr(tokenizer, "backend_tokenizer", None)
    if backend is not None:
        # The Rust encoder borrows the tokenizer immutably, so concurrent requests need no lock.
        enc = backend.encode(text, add_special_tokens=False)
        ids, offsets = list(enc.ids), list(enc.offsets)
    else:  # slow tokenizers mutate state while encoding
        with _slow_tokenizer_lock:
            ids = list(tokenizer.encode(text, add_special_tokens=False))
        offsets = None
    texts, titles = _display(tokenizer, text, ids, offsets, model_name)
    if bos_token_id is not None:
        bos = tokenizer.convert_ids_to_tokens([bos_token_id])[0] or "BOS"
        return Tokenized([bos_token_id] + ids, [bos] + texts, [f"BOS (id {bos_token_id})"] + titles, True)
    return Tokenized(ids, texts, titles, False)


def _visible(chars: str) -> str:
    shown = readable_bytes(chars.encode("utf-8"))
    if shown and unicodedata.combining(shown[0]):
        shown = "\u25cc" + shown  # a dotted circle carries a combining mark that starts a token
    return shown


def _display(tokenizer, text: str, ids: list[int], offsets, model_name: str) -> tuple[list[str], list[str]]:
    pieces = token_text_for(model_name) if model_name else None
    byte_texts = pieces.texts(ids) if pieces is not None and pieces.available else [
        _visible(tokenizer.decode([i])) for i in ids]
    if offsets is None:
        return byte_texts, [f"{t} (id {i})" for t, i in zip(byte_texts, ids)]
    texts, titles, shown_upto = [], [], 0
    for token_id, (start, end), piece in zip(ids, offsets, byte_texts):
        fresh = text[max(start, shown_upto):end]
        shown_upto = max(shown_upto, end)
        if fresh:
            texts.append(_visible(fresh))
            titles.append(f"{_visible(text[start:end])!r} (id {token_id})")
        else:
            texts.append("…")
            titles.append(f"byte {piece} of {_visible(text[start:end])!r} (id {token_id})")
    return texts, titles


def parse_positions(spec: str | None, n_tokens: int | None = None) -> list[int]:
    """Token positions from "3, 5-8" (inclusive ranges); Invalid naming the bad part."""
    out: set[int] = set()
    for part in (spec or "").replace(" ", "").split(","):
        if not part:
            continue
        try:
            if "-" in part:
                lo, hi = (int(x) for x in part.split("-", 1))
                if hi < lo or hi - lo > 100_000:
                    raise ValueError
                out.update(range(lo, hi + 1))
            else:
                out.add(int(part))
        except ValueError:
            raise Invalid(f"Token positions look like '3, 5-8'; {part!r} is not one.") from None
    if n_tokens is not None:
        out = {p for p in out if 0 <= p < n_tokens}
    return sorted(out)


def format_positions(positions: list[int]) -> str:
    """The inverse of parse_positions: [3, 5, 6, 7] → "3, 5-7"."""
    runs: list[list[int]] = []
    for p in sorted(positions):
        if runs and p == runs[-1][1] + 1:
            runs[-1][1] = p
        else:
            runs.append([p, p])
    return ", ".join(str(a) if a == b else f"{a}-{b}" for a, b in runs)


# ---- the live page's form (or query string) ----------------------------------------------------------

_TRUE = {"1", "true", "on", "yes"}


def _int(params: Mapping, name: str) -> int | None:
    value = (params.get(name) or "").strip()
    if not value:
        return None
    try:
        return int(value)
    except ValueError:
        raise Invalid(f"{name} must be a token position (a whole number), not {value!r}.") from None


def live_request_from_params(params: Mapping) -> LiveRequest:
    """LiveRequest from the page's form or query string; Invalid names a bad field.

    A form that was submitted (it carries `filters`) reports ignore_bos by the checkbox; a bare link
    (`?text=...`) gets the defaults. Buttons: `only_token` ranks over one token, `add_token` adds one to
    the selection, `clear_tokens` empties it.
    """
    text = params.get("text") or ""
    submitted = "filters" in params
    ignore_bos = (params.get("ignore_bos") or "").lower() in _TRUE if submitted else \
        (params.get("ignore_bos") or "1").lower() in _TRUE
    raw_density = params.get("max_density")
    if raw_density is None and not submitted:
        max_density = DEFAULT_MAX_DENSITY_PERCENT
    elif raw_density is None or raw_density.strip() == "":
        max_density = None
    else:
        try:
            max_density = float(raw_density)
        except ValueError:
            max_density = -1.0
        if not 0 <= max_density <= 100:
            raise Invalid(f"max_density is a percentage between 0 and 100 (e.g. 1 or 0.5), not {raw_density!r}.")
    tokens = parse_positions(params.get("tokens"))
    only, add = _int(params, "only_token"), _int(params, "add_token")
    if only is not None:
        tokens = [only]
    elif add is not None:
        tokens = sorted(set(tokens) | {add})
    if params.get("clear_tokens"):
        tokens = []
    focus = _int(params, "token")
    if focus is None:
        focus = only if only is not None else add
    return LiveRequest(text=text, ignore_bos=ignore_bos, max_density=max_density, tokens=tokens, token=focus)
