"""Token display rules and histogram geometry, without an app."""

from __future__ import annotations

import numpy as np

from app.http.plots import histogram_chart
from app.http.token_html import example_markup
from app.services.browse import density_histogram
from app.services.schemas.browse import ExamplePublic, HistogramPublic
from app.services.tokens import TokenText, readable_piece, visible_spaces


def test_byte_level_pieces_are_readable():
    assert readable_piece("Ġhello", byte_level=True) == " hello"
    assert readable_piece("Ċ", byte_level=True) == "↵"
    assert readable_piece("ĉ", byte_level=True) == "⇥"
    assert readable_piece("Ã", byte_level=True) == "\\xc3"  # half of a UTF-8 character
    assert readable_piece("Ã©", byte_level=True) == "é"
    assert readable_piece("▁world", byte_level=False) == " world"
    assert readable_piece("<0x0A>", byte_level=False) == "↵"
    assert visible_spaces("  a") == "␣␣a"


def test_tokenizer_text_and_id_fallback(tokenizer_dir):
    tokens = TokenText(tokenizer_dir / "tokenizer.json")
    from tokenizers import Tokenizer

    ids = Tokenizer.from_file(str(tokenizer_dir / "tokenizer.json")).encode("The fox\n").ids
    assert "".join(tokens.texts(ids)) == "The fox↵"
    missing = TokenText(None)
    assert not missing.available and missing.texts([7, 9]) == ["#7", "#9"]


def test_example_markup_escapes_and_marks_the_peak():
    ex = ExamplePublic(rank=0, max_value=2.0, max_pos=12, start=10, tokens=["<b>", " a", "&x"],
                       token_ids=[1, 2, 3], acts=[0.0, 1.0, 2.0])
    html = str(example_markup(ex, max_act=4.0))
    assert "<b>" not in html and "&lt;b&gt;" in html and "&amp;x" in html
    # one peak, shaded half of the max (a10 of a0..a20); the other active token a quarter; no inline style
    assert html.count('class="pk ') == 1 and 'data-v="2"' in html and 'class="pk a10"' in html
    assert 'class="a5" data-v="1"' in html and "style=" not in html


def test_density_histogram_bins_100k_features_into_a_fixed_number_of_bars():
    rng = np.random.default_rng(0)
    densities = (10 ** rng.uniform(-7, -0.3, 100_000)).tolist() + [0.0] * 500
    hist = density_histogram(densities)
    assert len(hist.counts) == 40 and sum(hist.counts) == 100_000
    assert hist.edges[0] == -7 and hist.edges[-1] == 0
    chart = histogram_chart(hist, "log10 density", "Density", log10_axis=True)
    assert len(chart.bars) == 40 and [t.label for t in chart.ticks][-1] == "1"


def test_empty_histogram_draws_nothing():
    assert histogram_chart(HistogramPublic(), "x", "t").empty
