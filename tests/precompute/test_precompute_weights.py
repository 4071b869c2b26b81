"""Weights-only tables: the bounded top-n and the bf16-screened neighbours are exact."""

from __future__ import annotations

import pytest
import torch

from app.precompute.weights import decoder_neighbours, logit_tables, row_top


def _reference_top(values: torch.Tensor, n: int, largest: bool = True):
    """Sort each row by (value, then lower index first)."""
    signed = values if largest else -values
    index = torch.arange(values.shape[1]).expand_as(values)
    order = torch.stack([torch.tensor(sorted(range(values.shape[1]), key=lambda j: (-float(row[j]), j))[:n])
                         for row in signed])
    return values.gather(1, order), index.gather(1, order)


@pytest.mark.parametrize("width", [50, 3000])  # topk path, segment-bound path
@pytest.mark.parametrize("largest", [True, False])
def test_row_top_is_exact_with_ties(width, largest):
    gen = torch.Generator().manual_seed(width)
    values = (torch.randn(6, width, generator=gen) * 4).round() / 4  # many exact ties
    values[0, :] = 1.0  # a row of one value
    got = row_top(values, 10, largest=largest)
    want = _reference_top(values, 10, largest=largest)
    assert torch.equal(got[0], want[0]) and torch.equal(got[1], want[1])


def test_neighbours_are_the_nearest_by_exact_cosine():
    """Against float64 cosines: returned cosines are right, sorted, and nothing nearer was left out
    (a screening margin too small would miss by ~1e-3, far above the 1e-6 tolerance)."""
    gen = torch.Generator().manual_seed(0)
    w_dec = torch.randn(3000, 16, generator=gen)
    w_dec[7] = w_dec[3]  # a duplicate direction: cosine 1, first
    indices, cosines = decoder_neighbours(w_dec, 10)
    unit = torch.nn.functional.normalize(w_dec.double(), dim=1)
    sims = unit @ unit.T
    sims.fill_diagonal_(-float("inf"))
    assert torch.allclose(cosines.double(), sims.gather(1, indices), atol=1e-6)
    assert (cosines[:, :-1] >= cosines[:, 1:]).all()
    outside = sims.scatter(1, indices, -float("inf"))
    assert (outside.max(dim=1).values <= cosines[:, -1].double() + 1e-6).all()
    assert indices[3, 0] == 7 and indices[7, 0] == 3
    assert not (indices == torch.arange(3000).unsqueeze(1)).any()


def test_logit_tables_equal_brute_force():
    gen = torch.Generator().manual_seed(1)
    w_dec, w_u = torch.randn(40, 16, generator=gen), torch.randn(16, 3000, generator=gen)
    tables = logit_tables(w_dec, w_u, n_top=5, hist_bins=7)
    effects = w_dec @ w_u
    assert torch.equal(tables["top_ids"], effects.topk(5, dim=1).indices)
    assert torch.equal(tables["bottom_ids"], effects.topk(5, dim=1, largest=False).indices)
    assert torch.equal(tables["hist_lo"], effects.min(dim=1).values)
    assert torch.equal(tables["hist_hi"], effects.max(dim=1).values)
    for row, counts in zip(effects, tables["hist_counts"]):
        want = torch.histc(row, bins=7, min=float(row.min()), max=float(row.max()))
        assert counts.sum() == 3000 and (counts - want.long()).abs().max() <= 1  # edge rounding only
