"""Offline drafters: labels from a feature's own data, no LLM.

- output-centric ("auto:output"): the tokens the feature's decoder direction promotes most through the
  unembedding (its top positive logits): ``promotes: "York", "Jersey", "Hampshire"``.
- input-centric ("auto:input"): what the feature reads in its explain-set examples (top and interval): the peak
  tokens with how concentrated they are, the tokens just before and after the peak, a position pattern, and
  quoted examples with the peak marked: ``fires on "the" (90% of peaks), after "of" (60%); e.g. "Union of «the»
  States"``; ``fires on varied tokens: "a", "b", "c" (top token 20% of peaks)`` when they are spread.

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


NEIGHBOUR_SHARE = 0.3  # a token right before / after the peak at >= 30 % of peaks is part of the pattern
START_SHARE = 0.6  # peaks within the first two positions of their context at >= 60 % of peaks: a position pattern
N_QUOTES = 3
QUOTE_BEFORE, QUOTE_AFTER = 3, 1  # tokens quoted around the peak


def _clean(text: str) -> str:
    """Decoded text on one line: newlines and tabs shown as \\n / \\t, control bytes as \\xNN."""
    text = text.replace("\n", "\\n").replace("\t", "\\t")
    return "".join(ch if ch.isprintable() else f"\\x{ord(ch):02x}" for ch in text)


def _neighbour(counts: Counter, surface: dict[str, Counter], peaks: int) -> tuple[str, float] | None:
    """The most common normalised neighbour token and its share of peaks, when it is part of the pattern."""
    if not counts:
        return None
    token, c = counts.most_common(1)[0]
    share = c / peaks
    if share < NEIGHBOUR_SHARE or c < 2:
        return None
    return surface[token].most_common(1)[0][0], share


def context_pattern(feature: FeatureExamples) -> dict:
    """What surrounds the peaks of the explain set: the token just before and just after each peak (normalised,
    with a surface form), how many peaks sit at the start of their context, and short quotes of the best examples
    with the peak marked «like this»."""
    before, after, at_start, peaks = Counter(), Counter(), 0, 0
    surface: dict[str, Counter] = {}
    quotes: list[str] = []
    for example in sorted(feature.explain_set, key=lambda e: -e.max_value):
        if example.max_value <= 0 or not len(example.token_ids):
            continue
        peaks += 1
        pos, ids = example.max_pos, example.token_ids
        at_start += pos <= 1
        for counter, at in ((before, pos - 1), (after, pos + 1)):
            if 0 <= at < len(ids):
                piece = feature.decoder.piece(int(ids[at]))
                counter[_norm(piece)] += 1
                surface.setdefault(_norm(piece), Counter())[piece] += 1
        if len(quotes) < N_QUOTES:
            pieces = feature.decoder.pieces(ids[max(0, pos - QUOTE_BEFORE): pos + 1 + QUOTE_AFTER])
            k = min(pos, QUOTE_BEFORE)
            peak = pieces[k]
            lead, core = peak[:len(peak) - len(peak.lstrip())], peak.strip() or peak
            quote = _clean("".join(pieces[:k]) + lead + "«" + core + "»" + "".join(pieces[k + 1:])).strip()
            if quote not in quotes:
                quotes.append(quote)
    return {"peaks": peaks, "before": _neighbour(before, surface, peaks) if peaks else None,
            "after": _neighbour(after, surface, peaks) if peaks else None,
            "at_start": at_start / peaks if peaks else 0.0, "quotes": quotes}


def _peak_tokens_text(top: list[tuple[str, int]], share: float, concentrated: bool) -> str:
    if concentrated:
        text = f'fires on {_show(top[0][0])} ({share:.0%} of peaks)'
        others = [_show(t) for t, _ in top[1:N_SHOWN]]
        return text + (f"; also {', '.join(others)}" if others else "")
    return (f"fires on varied tokens: {', '.join(_show(t) for t, _ in top[:N_SHOWN + 1])} "
            f"(top token {share:.0%} of peaks)")


def input_draft(feature: FeatureExamples, with_context: bool = True) -> Draft | None:
    """What the feature reads, from the explain set: the peak tokens and their concentration, the tokens around
    the peak, a position pattern, and two or three quoted examples. ``with_context=False`` gives the peak tokens
    alone (the drafter before issue 13; bench/autolabel.py measures against it)."""
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
    pattern = context_pattern(feature) if with_context else {"before": None, "after": None, "at_start": 0.0,
                                                               "quotes": []}
    concentrated = share >= CONCENTRATED
    if not with_context:  # the drafter before issue 13, kept as the bench's baseline
        text = _peak_tokens_text(top, share, concentrated)
        if grams:
            text += f'; often as "{grams[0]["text"]}"'
    else:
        # Few words of boilerplate: with "fires on ... of peaks ... e.g." around them, the embedding scorer told a
        # feature's own label from an unrelated one less often (bench/autolabel.py: 84 % vs 89 % of features).
        shown = [_show(t) for t, _ in top[:N_SHOWN]]
        text = (f"{shown[0]} ({share:.0%} of peaks)" + (f", also {', '.join(shown[1:])}" if shown[1:] else "")
                if concentrated else f"varied: {', '.join(shown)} (top {share:.0%})")
        if pattern["before"]:
            text += f", after {_show(pattern['before'][0])}"
        if pattern["after"]:
            text += f", before {_show(pattern['after'][0])}"
        if pattern["at_start"] >= START_SHARE:
            text += ", at the start of a context"
        if pattern["quotes"]:
            text += ": " + "; ".join(f'"{q.replace("«", "").replace("»", "")}"' for q in pattern["quotes"])
    around = []
    if pattern["before"]:
        around.append(f'after {_show(pattern["before"][0])} at {pattern["before"][1]:.0%} of peaks')
    if pattern["after"]:
        around.append(f'before {_show(pattern["after"][0])} at {pattern["after"][1]:.0%}')
    if pattern["at_start"] >= START_SHARE:
        around.append(f"at the start of its context at {pattern['at_start']:.0%}")
    description = (f"{peaks} peaks in top and interval examples; one token explains {share:.0%} of them "
                   f"({'concentrated' if concentrated else 'spread'}). "
                   + (f"It fires {' and '.join(around)}. " if around else "")
                   + ("N-grams ending at the peak: " + ", ".join(f'"{g["text"]}" {g["share"]:.0%}' for g in grams)
                      + ". " if grams else "")
                   + ("Examples: " + "; ".join(pattern["quotes"]) + "." if pattern["quotes"] else ""))
    details = {"peaks": peaks, "concentration": round(share, 3), "tokens": tokens, "ngrams": grams,
               "before": pattern["before"], "after": pattern["after"], "at_start": round(pattern["at_start"], 3),
               "quotes": pattern["quotes"]}
    return Draft(method="auto:input", text=text, description=description.strip(), details=details)


OFFLINE_DRAFTERS = {"input": input_draft, "output": output_draft}
