"""Offline drafts, the held-out split and non-activating windows, on features that fire on known words."""

from __future__ import annotations

import numpy as np

from app.services.autolabel.data import Example, FeatureExamples, held_out_windows, load_feature
from app.services.autolabel.drafts import input_draft, output_draft
from app.services.tokens import TokenText
from app.store import sources as qs
from tests.autolabel.factories import FEATURE_WORDS


def _source(session):
    return qs.source_by_ref(session, "words-sae")


def test_input_draft_names_the_peak_token_with_its_concentration(sessions):
    with sessions() as session:
        source = _source(session)
        for index, word in enumerate(FEATURE_WORDS):
            feature = load_feature(session, source, index)
            draft = input_draft(feature)
            assert draft.method == "auto:input"
            assert draft.text.startswith(f'"{word}" (100% of peaks)'), draft.text
            assert draft.details["concentration"] == 1.0
            assert "concentrated" in draft.description
            # two or three quoted examples, plain in the label and with the peak marked in the description
            quotes = draft.details["quotes"]
            assert 2 <= len(quotes) <= 3 and all(f"«{word}»" in q for q in quotes), quotes
            assert all(f'"{q.replace("«", "").replace("»", "")}"' in draft.text for q in quotes)
            assert all(q in draft.description for q in quotes)
            assert input_draft(feature, with_context=False).text.startswith(f'fires on "{word}" (100% of peaks)')


def test_input_draft_reports_a_spread_when_no_token_dominates():
    class Pieces(TokenText):
        def piece(self, token_id):
            return f" w{token_id}"

    ids = np.arange(10, dtype=np.int32)
    examples = [Example(id=k, kind="top", bin=-1, rank=2 * k, context_id=k, max_value=3.0, max_pos=k % 10,
                        token_ids=ids, acts=np.eye(10, dtype=np.float32)[k % 10]) for k in range(10)]
    draft = input_draft(FeatureExamples(1, 0, examples, Pieces(None)))
    assert draft.text.startswith('varied: "w0", "w1", "w2" (top 10%)'), draft.text
    assert draft.details["concentration"] == 0.1 and "spread" in draft.description
    old = input_draft(FeatureExamples(1, 0, examples, Pieces(None)), with_context=False)
    assert old.text.startswith("fires on varied tokens:") and "(top token 10% of peaks)" in old.text


def test_input_draft_names_the_tokens_around_the_peak_and_a_position_pattern():
    class Pieces(TokenText):
        def piece(self, token_id):
            return {0: " of", 1: " the", 2: " United", 3: " States"}.get(int(token_id), f" w{token_id}")

    # the peak is " the", always after " of"; before " United" in 3 of 5; at position 1 (the start) in 4 of 5
    rows = [[0, 1, 2, 3], [0, 1, 2, 9], [0, 1, 2, 8], [0, 1, 7, 3], [5, 0, 1, 6]]
    examples = []
    for k, ids in enumerate(rows):
        pos = ids.index(1)
        acts = np.zeros(len(ids), dtype=np.float32)
        acts[pos] = 5.0 - k
        examples.append(Example(id=k, kind="top", bin=-1, rank=2 * k, context_id=k, max_value=5.0 - k, max_pos=pos,
                                token_ids=np.array(ids, dtype=np.int32), acts=acts))
    draft = input_draft(FeatureExamples(1, 0, examples, Pieces(None)))
    assert tuple(draft.details["before"]) == (" of", 1.0)
    assert draft.details["after"][0] == " United" and draft.details["after"][1] == 0.6
    assert draft.details["at_start"] == 0.8
    assert draft.text.startswith('"the" (100% of peaks), after "of", before "United", at the start of a context: ')
    assert draft.details["quotes"][0] == "of «the» United" and '"of the United"' in draft.text
    assert 'It fires after "of" at 100% of peaks and before "United" at 60%' in draft.description


def test_output_draft_lists_promoted_tokens(sessions):
    with sessions() as session:
        draft = output_draft(load_feature(session, _source(session), 3))
    assert draft.method == "auto:output" and draft.text == 'promotes: "piano"'
    assert "+1.50" in draft.description


def test_dead_feature_gets_no_draft(sessions):
    with sessions() as session:
        feature = load_feature(session, _source(session), len(FEATURE_WORDS))
    assert feature.examples == [] and input_draft(feature) is None and output_draft(feature) is None


def test_held_out_windows_cover_the_interval_bins_and_reach_the_asked_count(sessions):
    from app.services.autolabel.data import across_bins

    with sessions() as session:
        feature = load_feature(session, _source(session), 1)
        held = held_out_windows(session, feature, n_activating=50, n_non_activating=50)
        before = held_out_windows(session, feature, n_activating=50, n_non_activating=50, spread=False)
    order = across_bins(feature.held_out)
    assert {e.kind for e in order[:3]} == {"top", "interval"}  # turns over the groups, not the top first
    shown = {w.ref["example_id"] for w in held.activating}
    assert any(e.kind == "interval" and e.id in shown for e in feature.held_out)
    assert len(held.activating) >= len(before.activating)  # extra windows around other active tokens
    spans = {}
    for w in held.activating:  # windows of one example never overlap
        for start, end in spans.get(w.ref["example_id"], []):
            assert w.ref["end"] <= start or w.ref["start"] >= end
        spans.setdefault(w.ref["example_id"], []).append((w.ref["start"], w.ref["end"]))
    assert all(max(w.acts) > 0 for w in held.activating)
    assert 50 >= len(held.non_activating) >= len(before.non_activating)


def test_held_out_windows_are_disjoint_from_the_explain_set_and_negatives_are_silent(sessions):
    with sessions() as session:
        feature = load_feature(session, _source(session), 0)
        held = held_out_windows(session, feature, n_activating=10, n_non_activating=6)
    explain_ids = {e.id for e in feature.explain_set}
    assert held.activating and all(w.ref["example_id"] not in explain_ids for w in held.activating)
    assert all(max(w.acts) > 0 and "<<" in w.highlighted() for w in held.activating)
    assert len(held.non_activating) == 6
    for w in held.non_activating:
        assert not w.activating and "Paris" not in w.text
        if w.ref["known_zero"]:
            assert w.acts is not None and max(w.acts) == 0
    inputs = held.inputs()
    assert len(inputs["activating"]) == len(held.activating) and len(inputs["non_activating"]) == 6


def test_control_bytes_in_tokens_are_escaped_so_drafts_can_be_stored():
    from app.services.autolabel.drafts import _show

    assert _show("\x00") == '"\\x00"' and _show(" a\x07b ") == '"a\\x07b"' and _show("\n") == '"\\n"'
