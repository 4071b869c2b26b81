"""Offline drafters: labels from a feature's own data, no LLM.

- output-centric ("auto:output"): the tokens the feature's decoder direction promotes most through the
  unembedding (its top positive logits): ``promotes: "York", "Jersey", "Hampshire"``.
- input-centric ("auto:input"): the tokens and short n-grams at the activation peaks of its explain-set examples
  (top and interval), with how concentrated they are: ``fires on "the" (90 % of peaks)`` when one token explains
  most peaks, ``fires on varied tokens: "a", "b", "c" (top token 20 % of peaks)`` when they are spread.

Each drafter returns a Draft (or None when the feature has nothing to go on, e.g. no examples).
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

from app.services.autolabel.data import FeatureExamples

CONCENTRATED = 0.5  # a token at >= half the peaks is "the" token of the feature
N_SHOWN = 3


@dataclass(frozen=True)
class Draft:
    method: str  # auto:<name>
    text: str
    description: str = ""
    details: dict = field(default_factory=dict)


def _show(piece: str) -> str:
    """A token as a quoted, readable word: inner whitespace made visible, outer spaces dropped."""
    core = piece.strip()
    if not core:
        core = {"\n": "\\n", "\t": "\\t"}.get(piece[:1], "space") if piece else "empty"
    # control bytes (a byte-level token can be NUL) are written as \xNN: labels must be storable and readable
    core = "".join(ch if ch.isprintable() else f"\\x{ord(ch):02x}" for ch in core)
    return f'"{core}"'


def _norm(piece: str) -> str:
    # " The" and "the" are the same idea for a label; the peak token's case and leading space are not
    return piece.strip().lower() or piece


def output_draft(feature: FeatureExamples, n: int = 5) -> Draft | None:
    """"promotes: ..." from the top positive logit tokens (feature.top_logits: [{"token_id","token","value"}])."""
    positive = [t for t in feature.top_logits if float(t.get("value", 0)) > 0]
    if not positive:
        return None
    pieces = []
    for t in positive[: 3 * n]:
        token_id = t.get("token_id")
        piece = feature.decoder.piece(int(token_id)) if token_id is not None and feature.decoder.available \
            else str(t.get("token", ""))
        shown = _show(piece)
        if shown not in pieces:
            pieces.append(shown)
        if len(pieces) == n:
            break
    values = ", ".join(f'{_show(str(t.get("token", "")))} {float(t["value"]):+.2f}' for t in positive[:n])
    return Draft(method="auto:output", text=f"promotes: {', '.join(pieces)}",
                 description=f"Top positive logit effects of the decoder direction: {values}.",
                 details={"logits": positive[:n]})


def peak_ngrams(feature: FeatureExamples, max_n: int = 3) -> tuple[int, dict[int, Counter], dict[str, Counter]]:
    """(number of peaks, {n: Counter of normalised n-grams ending at the peak}, {normalised token: Counter of
    its surface forms}) over the explain set."""
    counts: dict[int, Counter] = {n: Counter() for n in range(1, max_n + 1)}
    surface: dict[str, Counter] = {}
    peaks = 0
    for example in feature.explain_set:
        if example.max_value <= 0 or not len(example.token_ids):
            continue
        peaks += 1
        pos = example.max_pos
        for n in range(1, max_n + 1):
            if pos - n + 1 < 0:
                continue
            gram = feature.decoder.pieces(example.token_ids[pos - n + 1: pos + 1])
            counts[n][tuple(_norm(p) for p in gram) if n > 1 else _norm(gram[0])] += 1
            if n == 1:
                surface.setdefault(_norm(gram[0]), Counter())[gram[0]] += 1
    return peaks, counts, surface


def input_draft(feature: FeatureExamples) -> Draft | None:
    """Tokens and short n-grams at the peaks of the explain-set examples, with their concentration."""
    peaks, counts, surface = peak_ngrams(feature)
    if peaks == 0 or not counts[1]:
        return None
    top = [(surface[t].most_common(1)[0][0], c) for t, c in counts[1].most_common(N_SHOWN + 2)]
    share = top[0][1] / peaks
    tokens = [{"text": t, "share": round(c / peaks, 3)} for t, c in top]
    grams = []
    for n in (2, 3):
        for gram, c in counts[n].most_common(2):
            if c / peaks >= 0.3 and c > 1:
                grams.append({"text": " ".join(gram), "n": n, "share": round(c / peaks, 3)})
    if share >= CONCENTRATED:
        text = f'fires on {_show(top[0][0])} ({share:.0%} of peaks)'
        others = [_show(t) for t, _ in top[1:N_SHOWN]]
        if others:
            text += f"; also {', '.join(others)}"
    else:
        text = (f"fires on varied tokens: {', '.join(_show(t) for t, _ in top[:N_SHOWN + 1])} "
                f"(top token {share:.0%} of peaks)")
    if grams:
        text += f'; often as "{grams[0]["text"]}"'
    description = (f"{peaks} peaks in top and interval examples; one token explains {share:.0%} of them "
                   f"({'concentrated' if share >= CONCENTRATED else 'spread'}). "
                   + ("N-grams ending at the peak: " + ", ".join(f'"{g["text"]}" {g["share"]:.0%}' for g in grams)
                      + "." if grams else ""))
    return Draft(method="auto:input", text=text, description=description.strip(),
                 details={"peaks": peaks, "concentration": round(share, 3), "tokens": tokens, "ngrams": grams})


OFFLINE_DRAFTERS = {"input": input_draft, "output": output_draft}
