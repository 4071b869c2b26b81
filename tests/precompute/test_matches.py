"""Feature matches and co-activation (app/precompute/matches.py) against a dense numpy reference."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from app.precompute import matches as m

N_MATCHES = 3


def _sparse_world(seed: int = 0, n_tokens: int = 600, d_saes=(7, 12, 12)):
    """Dense activations of three SAEs on the same tokens (SAE 1 a noisy copy of SAE 0's signal, feature 2 of
    SAE 0 dead), and their nonzeros as spilled batches."""
    rng = np.random.default_rng(seed)
    dense = []
    base = np.maximum(rng.normal(size=(n_tokens, d_saes[0])) - 0.8, 0)
    base[:, 2] = 0
    dense.append(base.astype(np.float32))
    for d in d_saes[1:]:
        mix = rng.normal(size=(d_saes[0], d)) * (rng.random((d_saes[0], d)) < 0.3)
        x = np.maximum(base @ mix + rng.normal(size=(n_tokens, d)) - 0.9, 0)
        dense.append(x.astype(np.float32))
    batches = []
    for start in range(0, n_tokens, 128):
        saes = []
        for x in dense:
            rows, feats = np.nonzero(x[start:start + 128])
            saes.append({"rows": torch.from_numpy(rows.astype(np.int32)), "features": torch.from_numpy(feats.astype(np.int32)),
                         "values": torch.from_numpy(x[start:start + 128][rows, feats])})
        batches.append((min(128, n_tokens - start), saes))
    return dense, batches


def _reference(dense, decoders, hooks):
    out, co = {}, {}
    for a, xa in enumerate(dense):
        both = (xa > 0).astype(np.int64).T @ (xa > 0).astype(np.int64)
        np.fill_diagonal(both, 0)
        co[a] = both
        for b, xb in enumerate(dense):
            if a == b:
                continue
            with np.errstate(invalid="ignore", divide="ignore"):
                corr = np.corrcoef(xa.astype(np.float64).T, xb.astype(np.float64).T)[:xa.shape[1], xa.shape[1]:]
            cos = decoders[a].double().numpy() @ decoders[b].double().numpy().T if hooks[a] == hooks[b] else None
            out[(a, b)] = (corr, cos)
    return out, co


@pytest.mark.parametrize("sparse_below", [0, 10**9], ids=["co-activation from entries", "from dense blocks"])
@pytest.mark.parametrize("memory_bytes", [1 << 30, 7 * 12 * m.ELEMENT_BYTES + 1, 2 * 12 * m.ELEMENT_BYTES])
def test_matches_equal_dense_reference(memory_bytes, sparse_below, monkeypatch):
    """One block per pair, blocks of whole SAEs, blocks of two rows; co-activation ranked from the product's
    entries or from a dense block: the same matches as numpy's dense correlation, cosine and co-occurrence
    (values quantised to 2**-16 of each feature's max)."""
    monkeypatch.setattr(m, "SPARSE_BELOW", sparse_below)
    dense, batches = _sparse_world()
    d_saes = [x.shape[1] for x in dense]
    gen = torch.Generator().manual_seed(1)
    decoders = [torch.nn.functional.normalize(torch.randn(d, 16, generator=gen), dim=1) for d in d_saes]
    hooks = ["blocks.0", "blocks.1", "blocks.1"]
    result = m.compute_matches(iter(batches), d_saes, [torch.from_numpy(x.max(0)) for x in dense],
                               decoders, hooks, N_MATCHES, 4, memory_bytes)
    assert result.n_tokens == dense[0].shape[0]
    reference, co = _reference(dense, decoders, hooks)
    for (a, b), (corr, cos) in reference.items():
        rows = result.pairs[(a, b)]
        for i in range(d_saes[a]):
            mine = rows.other[rows.feature == i]
            r = np.nan_to_num(corr[i], nan=-np.inf)
            want = {int(j) for j in np.argsort(-r, kind="stable")[:N_MATCHES] if r[j] > 0}
            if cos is not None:
                want |= {int(j) for j in np.argsort(-cos[i], kind="stable")[:N_MATCHES]}
            assert set(mine.tolist()) == want, (a, b, i)
            got_corr = rows.corr[rows.feature == i]
            np.testing.assert_allclose(np.nan_to_num(got_corr, nan=-9), np.nan_to_num(corr[i][mine], nan=-9),
                                       atol=1e-4)
            got_cos = rows.cos[rows.feature == i]
            if cos is None:
                assert np.isnan(got_cos).all()
            else:
                np.testing.assert_allclose(got_cos, cos[i][mine], atol=1e-6)
        assert not (rows.feature == 2).any() if a == 0 and cos is None else True  # the dead feature has no corr match
    for a, (feature, other, count) in result.coactive.items():
        for i in range(d_saes[a]):
            row = co[a][i]
            want = [int(j) for j in np.argsort(-row, kind="stable")[:4] if row[j] > 0]
            assert other[feature == i].tolist() == want
            assert count[feature == i].tolist() == row[want].tolist()


def test_matches_are_the_same_bits_for_any_split_of_the_sample():
    """Two 'ranks' holding alternate batches, summed by all_reduce, give what one process gives: the quantised
    sums are exact integers, whatever the grouping."""
    dense, batches = _sparse_world(seed=4)
    d_saes = [x.shape[1] for x in dense]
    maxima = [torch.from_numpy(x.max(0)) for x in dense]
    decoders = [torch.nn.functional.normalize(torch.randn(d, 16, generator=torch.Generator().manual_seed(d)), dim=1)
                for d in d_saes]
    hooks = ["h0", "h1", "h1"]
    whole = m.compute_matches(iter(batches), d_saes, maxima, decoders, hooks, N_MATCHES, 4, 1 << 30)
    recorded = []  # what the "rank" holding the odd batches contributes to each all_reduce, in call order
    other = m.compute_matches(iter(batches[1::2]), d_saes, maxima, decoders, hooks, N_MATCHES, 4, 1 << 30,
                              all_reduce=lambda t: (recorded.append(t.clone()), t)[1])
    split = m.compute_matches(iter(batches[0::2]), d_saes, maxima, decoders, hooks, N_MATCHES, 4, 1 << 30,
                              all_reduce=lambda t: t + recorded.pop(0))
    assert other.n_tokens < whole.n_tokens == split.n_tokens
    for key, rows in whole.pairs.items():
        got = split.pairs[key]
        for name in ("feature", "other", "corr", "cos"):
            np.testing.assert_array_equal(getattr(rows, name), getattr(got, name))
    for a, arrays in whole.coactive.items():
        for mine, theirs in zip(arrays, split.coactive[a]):
            np.testing.assert_array_equal(mine, theirs)


def test_coactivation_counts_scale_from_the_sample_to_the_corpus():
    """Measured on half the tokens, the counts are scaled by each feature's corpus / sample firing count."""
    dense, batches = _sparse_world(seed=2, d_saes=(7, 9))
    d_saes = [x.shape[1] for x in dense]
    maxima = [torch.from_numpy(x.max(0)) for x in dense]
    decoders = [torch.nn.functional.normalize(torch.randn(d, 16), dim=1) for d in d_saes]
    sample = batches[:2]
    corpus_active = [torch.from_numpy((x > 0).sum(0)) for x in dense]
    plain = m.compute_matches(iter(sample), d_saes, maxima, decoders, ["a", "b"], N_MATCHES, 4, 1 << 30)
    scaled = m.compute_matches(iter(sample), d_saes, maxima, decoders, ["a", "b"], N_MATCHES, 4, 1 << 30,
                               corpus_active=corpus_active)
    in_sample = (dense[0][:256] > 0).sum(0)
    feature, other, count = plain.coactive[0]
    _, other2, count2 = scaled.coactive[0]
    assert np.array_equal(other, other2) and len(count) > 0
    want = np.round(count * corpus_active[0].numpy()[feature] / np.maximum(in_sample[feature], 1))
    np.testing.assert_array_equal(count2, want)


def test_blocks_stay_within_budget():
    tasks = m._blocks([1000, 3000], 3000 * 100 * m.ELEMENT_BYTES)
    covered = {}
    for t in tasks:
        assert (t.hi - t.lo) * [1000, 3000][t.b] * m.ELEMENT_BYTES <= 3000 * 100 * m.ELEMENT_BYTES
        covered[(t.a, t.b)] = covered.get((t.a, t.b), 0) + t.hi - t.lo
    assert covered == {(0, 0): 1000, (0, 1): 1000, (1, 1): 3000}


def test_world_precompute_writes_matches_coactivation_and_maps(world):
    """The fixture world's run (two SAEs on blocks.1 and blocks.2 of one model) stores both directions'
    correlations (no cosines: different hooks), co-activation and a map per source."""
    from app.store import compare as qc
    from app.store.engine import make_engine, make_sessionmaker
    from app.store.sources import source_by_name

    engine = make_engine(world.url)
    try:
        with make_sessionmaker(engine)() as session:
            l1, l2 = source_by_name(session, "world-l1"), source_by_name(session, "world-l2")
            for a, b in ((l1, l2), (l2, l1)):
                best = qc.pair_best(session, a.id, b.id)
                assert best and all(0 < c <= 1 and s is None for _, c, s in best)
                assert {i for i, _, _ in best} <= set(world.alive[a.name])
            index = world.alive["world-l1"][0]
            coactive = qc.coactive_features(session, l1.id, index)
            assert coactive and all(c > 0 and i != index for i, c in coactive)
            method, xy = qc.source_map(session, l1.id)
            assert method in ("pca", "umap") and xy.shape == (l1.d_sae, 2) and np.isfinite(xy).all()
    finally:
        engine.dispose()


def test_topk_stable_equals_a_stable_sort_with_ties():
    gen = torch.Generator().manual_seed(3)
    values = torch.randint(0, 6, (50, 300), generator=gen).double()  # many ties
    values[7] = -torch.inf
    top_v, top_i = m._topk_stable(values, 5)
    ref = torch.sort(values, dim=1, descending=True, stable=True)
    assert torch.equal(top_i, ref.indices[:, :5]) and torch.equal(top_v, ref.values[:, :5])


def test_top_entries_equal_a_stable_sort_of_the_dense_rows():
    gen = torch.Generator().manual_seed(6)
    dense = torch.randint(0, 4, (30, 90), generator=gen).double() * (torch.rand(30, 90, generator=gen) < 0.3)
    dense[2] = 0
    rows, cols = dense.nonzero(as_tuple=True)  # row-major
    top_v, top_i = m._top_entries(rows, cols, dense[rows, cols], 30, 4)
    ref = torch.sort(dense, dim=1, descending=True, stable=True)
    for row in range(30):
        n = int((ref.values[row, :4] > 0).sum())
        assert torch.equal(top_i[row, :n], ref.indices[row, :n]) and torch.equal(top_v[row, :n], ref.values[row, :n])
        assert torch.isinf(top_v[row, n:]).all()


def test_top_positive_keeps_only_positive_values_in_stable_order():
    gen = torch.Generator().manual_seed(5)
    values = torch.randint(-2, 4, (40, 200), generator=gen).double()  # many ties, zeros and negatives
    values[3] = 0
    values[4, :] = -1
    values[4, 7] = 2  # one positive value only
    top_v, top_i = m._top_positive(values, 5)
    ref = torch.sort(values, dim=1, descending=True, stable=True)
    for row in range(values.shape[0]):
        n = int((ref.values[row, :5] > 0).sum())
        assert torch.equal(top_i[row, :n], ref.indices[row, :n]) and torch.equal(top_v[row, :n], ref.values[row, :n])
        assert torch.isinf(top_v[row, n:]).all() and (top_v[row, n:] < 0).all()
    assert top_i[4, 0] == 7 and top_v[3].isinf().all()
