"""A feature's stored examples as decoded token windows, ready for drafters and scorers.

Held-out split (as in Delphi, the explainer never sees the examples a label is scored on): top examples of even
rank and the first example of each interval bin go to the *explain* set; the others are *held out* for scoring.

Non-activating windows, in order of preference:
1. `known_zero`: windows of the feature's own stored contexts where every stored activation is zero (exactly
   known silent, and topically close to the activating text: hard negatives);
2. otherwise windows of other features' best contexts that hold no example of this feature (the feature is sparse,
   so it is *assumed* silent there; marked `known_zero: false` in the score's inputs).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from sqlalchemy.orm import Session

from app.services.tokens import TokenText, token_text_for
from app.store import autolabel as q
from app.store.browse import ExampleRow, feature_examples
from app.store.labels import get_feature

# Tokens per window. The embedding scorer uses short windows: on the demo (40k-token precompute), 8 tokens let a
# label naming the peak tokens beat an unrelated label on 65-69 % of features vs 53-60 % with 24 tokens
# (bench/autolabel.py); an LLM reads more context.
EMBED_WINDOW = 8
LLM_WINDOW = 24


def after_peak(width: int) -> int:
    """Tokens kept after the peak inside an activating window of `width` tokens."""
    return max(1, width // 6)



@dataclass(frozen=True)
class Example:
    """One stored example. token_ids: Int[ndarray, "ctx"], acts: Float[ndarray, "ctx"] (float32)."""

    id: int
    kind: str  # top | interval
    bin: int
    rank: int
    context_id: int
    max_value: float
    max_pos: int
    token_ids: np.ndarray
    acts: np.ndarray


@dataclass(frozen=True)
class Window:
    """A slice [start, end) of a context as text; `acts` is None where the feature's activations are unknown."""

    ref: dict  # {"example_id" | "context_id": int, "start": int, "end": int, ...}
    pieces: tuple[str, ...]
    acts: tuple[float, ...] | None
    activating: bool

    @property
    def text(self) -> str:
        return "".join(self.pieces)

    def highlighted(self, positions: set[int] | None = None) -> str:
        """Text with <<token>> marks on active tokens (or on the given window positions), runs merged."""
        marks = positions if positions is not None else {i for i, a in enumerate(self.acts or ()) if a > 0}
        out, open_ = [], False
        for i, piece in enumerate(self.pieces):
            if i in marks and not open_:
                out.append("<<")
                open_ = True
            elif i not in marks and open_:
                out.append(">>")
                open_ = False
            out.append(piece)
        if open_:
            out.append(">>")
        return "".join(out)

    def active_positions(self) -> set[int]:
        return {i for i, a in enumerate(self.acts or ()) if a > 0}


@dataclass
class FeatureExamples:
    source_id: int
    index: int
    examples: list[Example]
    decoder: TokenText
    top_logits: list[dict] = field(default_factory=list)

    @property
    def explain_set(self) -> list[Example]:
        return [e for e in self.examples if _is_explain(e)]

    @property
    def held_out(self) -> list[Example]:
        return [e for e in self.examples if not _is_explain(e)]

    def window(self, example: Example, width: int = LLM_WINDOW) -> Window:
        """`width` tokens around the example's peak, ending after_peak(width) tokens after it where it can."""
        n = len(example.token_ids)
        end = min(n, max(example.max_pos + 1 + after_peak(width), width))
        start = max(0, end - width)
        return self._slice(example, start, end, activating=True)

    def _slice(self, example: Example, start: int, end: int, activating: bool) -> Window:
        return Window(ref={"example_id": example.id, "start": start, "end": end},
                      pieces=tuple(self.decoder.pieces(example.token_ids[start:end])),
                      acts=tuple(float(a) for a in example.acts[start:end]), activating=activating)

    def extra_windows(self, example: Example, width: int) -> list[Window]:
        """Activating windows of the example's context around its other active tokens, each clear of the peak's
        window and of each other (more held-out evidence from the same stored example)."""
        first = self.window(example, width)
        taken = [(first.ref["start"], first.ref["end"])]
        out = []
        for pos in np.argsort(-example.acts, kind="stable"):
            if example.acts[pos] <= 0:
                break
            end = min(len(example.acts), max(int(pos) + 1 + after_peak(width), width))
            start = max(0, end - width)
            if all(end <= a or start >= b for a, b in taken):
                taken.append((start, end))
                out.append(self._slice(example, start, end, activating=True))
        return out

    def zero_windows(self, examples: list[Example], n: int, width: int = LLM_WINDOW,
                     per_context: int = 1) -> list[Window]:
        """Up to `n` windows of the given examples' contexts where every stored activation is zero, at most
        `per_context` from each context (fewer per context keeps the negatives varied)."""
        out: list[Window] = []
        seen_contexts: set[int] = set()
        for example in examples:
            if example.context_id in seen_contexts:
                continue
            seen_contexts.add(example.context_id)
            active = np.flatnonzero(example.acts > 0)
            # scan from the end of the context backwards, so windows stay far from the peak when they can
            end, found = len(example.acts), 0
            while end - width >= 0 and len(out) < n and found < per_context:
                start = end - width
                if not ((active >= start) & (active < end)).any():
                    out.append(self._slice(example, start, end, activating=False))
                    end, found = start, found + 1
                    continue
                end -= 1
            if len(out) >= n:
                break
        return out


def _is_explain(example: Example) -> bool:
    return example.rank % 2 == 0 if example.kind == "top" else example.rank == 0


def _decode_example(record: ExampleRow) -> Example:
    return Example(id=record.id, kind=record.kind, bin=record.bin, rank=record.rank, context_id=record.context_id,
                   max_value=float(record.max_value), max_pos=int(record.max_pos),
                   token_ids=np.frombuffer(record.token_ids, dtype="<i4"),
                   acts=np.frombuffer(record.acts, dtype="<f2").astype(np.float32))


def load_feature(session: Session, source, index: int) -> FeatureExamples:
    """The feature's examples with a decoder for its source's tokenizer (source: a Source row)."""
    feature = get_feature(session, source.id, index)
    examples = [_decode_example(r) for r in feature_examples(session, source.id, index)]
    return FeatureExamples(source_id=source.id, index=index, examples=examples,
                           decoder=token_text_for(source.model_name or ""),
                           top_logits=list(feature.top_logits or []) if feature else [])


@dataclass(frozen=True)
class HeldOut:
    """Held-out activating and non-activating windows of one feature (what a label is scored on)."""

    activating: list[Window]
    non_activating: list[Window]

    def inputs(self) -> dict:
        return {"activating": [w.ref for w in self.activating], "non_activating": [w.ref for w in self.non_activating]}


N_ACTIVATING = 50  # held-out windows per score: with 10 + 10 the AUC of one label moved by +-0.1 between draws
N_NON_ACTIVATING = 50


def across_bins(examples: list[Example]) -> list[Example]:
    """The examples in turns over their groups (top, then each interval bin, highest bin first), so the first n
    cover the whole activation range and not only the top."""
    groups: dict[tuple, list[Example]] = {}
    for e in examples:
        groups.setdefault(("top", 0) if e.kind == "top" else ("interval", -e.bin), []).append(e)
    order = [groups[k] for k in sorted(groups, key=lambda k: (k[0] != "top", k[1]))]
    out = []
    for turn in range(max((len(g) for g in order), default=0)):
        out += [g[turn] for g in order if turn < len(g)]
    return out


def held_out_windows(session: Session, feature: FeatureExamples, n_activating: int = N_ACTIVATING,
                     n_non_activating: int = N_NON_ACTIVATING, seed: int = 0, width: int = LLM_WINDOW,
                     spread: bool = True) -> HeldOut:
    """Held-out windows of `width` tokens for scoring. Activating: the held-out examples' peak windows taken in
    turns across the top and interval groups, then, while fewer than `n_activating`, windows around their other
    active tokens. Non-activating: as described in the module docstring. ``spread=False`` is the scoring before
    issue 13 (top examples first, one window per example and per context; bench/autolabel.py compares)."""
    held = across_bins(feature.held_out) if spread else feature.held_out
    activating = [feature.window(e, width) for e in held[:n_activating]]
    if spread:
        for e in held:
            if len(activating) >= n_activating:
                break
            activating += feature.extra_windows(e, width)[:n_activating - len(activating)]
    negatives = feature.zero_windows(feature.examples, n_non_activating, width)
    if spread and len(negatives) < n_non_activating:
        seen = {(w.ref["example_id"], w.ref["start"]) for w in negatives}
        more = feature.zero_windows(feature.examples, n_non_activating, width, per_context=4)
        negatives += [w for w in more if (w.ref["example_id"], w.ref["start"]) not in seen][
            :n_non_activating - len(negatives)]
    for w in negatives:
        w.ref["known_zero"] = True
    missing = n_non_activating - len(negatives)
    if missing > 0:
        for context_id, raw in q.other_feature_contexts(session, feature.source_id, feature.index, missing, seed):
            ids = np.frombuffer(raw, dtype="<i4")
            start = max(0, (len(ids) - width) // 2)
            end = min(len(ids), start + width)
            negatives.append(Window(ref={"context_id": context_id, "start": start, "end": end, "known_zero": False},
                                    pieces=tuple(feature.decoder.pieces(ids[start:end])), acts=None,
                                    activating=False))
    return HeldOut(activating=activating, non_activating=negatives)
