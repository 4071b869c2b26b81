"""Streaming accumulators vs a brute-force reference that holds every activation."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from app.precompute.accumulators import (
    INT64_MAX,
    ExampleActs,
    FeatureAccumulator,
    IntervalAccumulator,
    key_ordinals,
    key_values,
    token_keys,
)

N_CTX, T, D_SAE, K, N_IV, M, H = 40, 12, 24, 5, 4, 3, 20


def synthetic_acts(seed: int = 0):
    """Sparse non-negative activations with deliberate ties (multiples of 0.25) and a dead feature."""
    gen = torch.Generator().manual_seed(seed)
    values = (torch.rand(N_CTX, T, D_SAE, generator=gen) * 4).mul(4).floor().div(4)
    fire = torch.rand(N_CTX, T, D_SAE, generator=gen) < 0.15
    acts = values * fire
    acts[..., 3] = 0.0  # dead
    valid = torch.ones(N_CTX, T, dtype=torch.bool)
    valid[:, 0] = False  # BOS
    valid[5, 7] = False  # an EOS in the middle
    return acts, valid


def run_streaming(acts, valid, batches: list[list[int]]):
    """Pass 1 + pass 2 + pass 3 over batches of context ordinals, one accumulator per shard."""
    shards = {}
    for shard, ordinals in enumerate(batches):
        acc = FeatureAccumulator(D_SAE, K)
        spill = []
        for start in range(0, len(ordinals), 4):
            idx = torch.tensor(ordinals[start:start + 4])
            sparse = acc.update(acts[idx].clone(), valid[idx], idx)
            spill.append((idx, sparse))
        shards[shard] = (acc, spill)
    total = FeatureAccumulator.from_state_dict(shards[0][0].state_dict())
    for acc, _ in list(shards.values())[1:]:
        total.merge(acc)
    ivs = []
    for _, spill in shards.values():
        iv = IntervalAccumulator(total.max_act, N_IV, M, H, seed=7)
        for idx, sparse in spill:
            rows = sparse.rows.long()
            iv.update(idx[rows // T], rows % T, sparse.features, sparse.values)
        ivs.append(iv)
    interval = ivs[0]
    for other in ivs[1:]:
        interval.merge(other)
    return total, interval, shards


def reference(acts, valid):
    a = (acts * valid.unsqueeze(-1)).numpy()
    out = {"n_active": (a > 0).sum(axis=(0, 1)), "max": a.max(axis=(0, 1)), "top": [], "hist": [], "bins": [],
           "samples": []}
    for f in range(D_SAE):
        peaks = a[:, :, f].max(axis=1)
        order = sorted((o for o in range(N_CTX) if peaks[o] > 0), key=lambda o: (-peaks[o], o))[:K]
        out["top"].append([(o, float(peaks[o]), int(np.argmax(a[o, :, f]))) for o in order])
        ctx, pos = np.nonzero(a[:, :, f] > 0)
        vals = a[ctx, pos, f]
        if len(vals) == 0:
            out["hist"].append(np.zeros(H, int)), out["bins"].append(np.zeros(N_IV, int)), out["samples"].append([[] for _ in range(N_IV)])
            continue
        ratio = vals.astype(np.float64) / np.float64(out["max"][f])
        hist_bin = np.clip(np.floor(ratio * H), 0, H - 1).astype(int)
        interval_bin = hist_bin // (H // N_IV)
        out["hist"].append(np.bincount(hist_bin, minlength=H))
        out["bins"].append(np.bincount(interval_bin, minlength=N_IV))
        keys = token_keys(torch.from_numpy(ctx), torch.from_numpy(pos), torch.full((len(ctx),), f), seed=7).numpy()
        per_bin = []
        for b in range(N_IV):
            chosen, seen = [], set()
            for i in sorted(np.nonzero(interval_bin == b)[0], key=lambda i: (keys[i], pos[i])):
                if ctx[i] not in seen:
                    seen.add(ctx[i])
                    chosen.append((int(ctx[i]), int(pos[i]), float(vals[i])))
                if len(chosen) == M:
                    break
            per_bin.append(chosen)
        out["samples"].append(per_bin)
    return out


@pytest.mark.parametrize("batches", [
    [list(range(N_CTX))],  # one process
    [list(range(0, N_CTX, 2)), list(range(1, N_CTX, 2))],  # two shards, interleaved
    [list(range(30, N_CTX)), list(range(0, 30))],  # shards out of order
])
def test_streaming_equals_brute_force(batches):
    acts, valid = synthetic_acts()
    ref = reference(acts, valid)
    acc, iv, _ = run_streaming(acts, valid, batches)

    assert acc.n_active.tolist() == ref["n_active"].tolist()
    assert acc.n_valid_tokens == int(valid.sum())
    assert torch.equal(acc.max_act, torch.from_numpy(ref["max"]))
    for f in range(D_SAE):
        keys = acc.top_key[f]
        got = [(int(o), float(v), int(p)) for o, v, p, k in
               zip(key_ordinals(keys), key_values(keys), acc.top_pos[f], keys) if k >= 0]
        assert got == ref["top"][f], f"feature {f}"
        assert iv.hist_counts[f].tolist() == list(ref["hist"][f])
        assert iv.bin_counts[f].tolist() == list(ref["bins"][f])
        for b in range(N_IV):
            g = f * N_IV + b
            got = [(int(o), int(p), float(v)) for k, o, p, v in zip(
                iv.sample_key[g], iv.samples["ordinal"][g], iv.samples["pos"][g], iv.samples["value"][g])
                if k != INT64_MAX]
            assert got == ref["samples"][f][b], f"feature {f} bin {b}"
    assert acc.n_active[3] == 0 and acc.max_act[3] == 0


def test_mean_is_exact_to_fixed_point_and_order_free():
    acts, valid = synthetic_acts(seed=3)
    one, _, _ = run_streaming(acts, valid, [list(range(N_CTX))])
    two, _, _ = run_streaming(acts, valid, [list(range(1, N_CTX, 2)), list(range(0, N_CTX, 2))])
    assert torch.equal(one.sum_fixed, two.sum_fixed)
    a = (acts * valid.unsqueeze(-1)).double()
    expected = a.sum(dim=(0, 1)) / (a > 0).sum(dim=(0, 1)).clamp(min=1)
    assert torch.allclose(one.mean_act, expected, atol=1e-6)


def test_example_acts_collects_each_pair_once():
    acts, valid = synthetic_acts()
    acc, iv, shards = run_streaming(acts, valid, [list(range(0, N_CTX, 2)), list(range(1, N_CTX, 2))])
    features = torch.tensor([0, 1, 5])
    ordinals = torch.tensor([2, 3, 9])
    collectors = []
    for _, spill in shards.values():
        c = ExampleActs(features, ordinals, T)
        for idx, sparse in spill:
            rows = sparse.rows.long()
            c.update(idx[rows // T], rows % T, sparse.features, sparse.values)
        collectors.append(c)
    collectors[0].merge(collectors[1])
    masked = acts * valid.unsqueeze(-1)
    rows = collectors[0].row_of(features, ordinals)
    for f, o, r in zip(features, ordinals, rows):
        assert torch.equal(collectors[0].acts[r], masked[o, :, f].half())
