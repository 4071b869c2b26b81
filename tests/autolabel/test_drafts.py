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
            draft = input_draft(load_feature(session, source, index))
            assert draft.method == "auto:input"
            assert draft.text.startswith(f'fires on "{word}" (100% of peaks)'), draft.text
            assert draft.details["concentration"] == 1.0
            assert "concentrated" in draft.description


def test_input_draft_reports_a_spread_when_no_token_dominates():
    class Pieces(TokenText):
        def piece(self, token_id):
            return f" w{token_id}"

    ids = np.arange(10, dtype=np.int32)
    examples = [Example(id=k, kind="top", bin=-1, rank=2 * k, context_id=k, max_value=3.0, max_pos=k % 10,
                        token_ids=ids, acts=np.eye(10, dtype=np.float32)[k % 10]) for k in range(10)]
    draft = input_draft(FeatureExamples(1, 0, examples, Pieces(None)))
    assert draft.text.startswith("fires on varied tokens:"), draft.text
    assert "(top token 10% of peaks)" in draft.text
    assert draft.details["concentration"] == 0.1 and "spread" in draft.description


def test_output_draft_lists_promoted_tokens(sessions):
    with sessions() as session:
        draft = output_draft(load_feature(session, _source(session), 3))
    assert draft.method == "auto:output" and draft.text == 'promotes: "piano"'
    assert "+1.50" in draft.description


def test_dead_feature_gets_no_draft(sessions):
    with sessions() as session:
        feature = load_feature(session, _source(session), len(FEATURE_WORDS))
    assert feature.examples == [] and input_draft(feature) is None and output_draft(feature) is None


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
