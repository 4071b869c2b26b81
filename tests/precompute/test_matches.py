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
        batches.append(saes)
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


@pytest.mark.parametrize("memory_bytes,bincount_max", [(1 << 30, 1 << 20), (7 * 12 * m.ELEMENT_BYTES + 1, 0),
                                                        (2 * 12 * m.ELEMENT_BYTES, 1 << 20)])
def test_matches_equal_dense_reference(memory_bytes, bincount_max, monkeypatch):
    """One round, rounds of one block per pair, blocks of two rows; bincount and np.add.at sums."""
    monkeypatch.setattr(m, "PAIRS_PER_CHUNK", 37)  # many chunks per batch
    monkeypatch.setattr(m, "BINCOUNT_MAX", bincount_max)
    dense, batches = _sparse_world()
    d_saes = [x.shape[1] for x in dense]
    gen = torch.Generator().manual_seed(1)
    decoders = [torch.nn.functional.normalize(torch.randn(d, 16, generator=gen), dim=1) for d in d_saes]
    hooks = ["blocks.0", "blocks.1", "blocks.1"]
    result = m.compute_matches(lambda: iter(batches), d_saes, [torch.from_numpy(x.max(0)) for x in dense],
                               dense[0].shape[0], decoders, hooks, N_MATCHES, 4, memory_bytes)
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
                                       atol=1e-7)
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


def test_plan_stays_within_budget():
    rounds = m._plan([1000, 3000], 3000 * 100 * m.ELEMENT_BYTES)
    for tasks in rounds:
        used = sum((t.hi - t.lo) * [1000, 3000][t.b] * m.ELEMENT_BYTES for t in tasks)
        assert used <= 3000 * 100 * m.ELEMENT_BYTES
    covered = {(t.a, t.b): 0 for tasks in rounds for t in tasks}
    for tasks in rounds:
        for t in tasks:
            covered[(t.a, t.b)] += t.hi - t.lo
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
