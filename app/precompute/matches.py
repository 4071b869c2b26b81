"""Feature matches between the SAEs of one run, and co-activation inside each SAE, from pass 1's spill.

The SAEs of one run read the same tokens (one LM forward serves them all), so their spilled nonzeros give, for
every pair of SAEs ``a, b`` and features ``i`` of ``a``, ``j`` of ``b``:

- **activation correlation**: Pearson's r of ``f_i`` and ``f_j`` over every valid token of the corpus (zeros
  included), exact: ``r = (E[xy] - E[x]E[y]) / (sd(x) sd(y))``. Only tokens where both fire add to ``sum xy``,
  so the cross sums are built from pairs of nonzeros that share a token (``L0_a × L0_b`` per token), never from
  dense activations. Values are divided by each feature's final max (r does not change) and summed in fixed
  point (int64 units of 2**-32), so any batching or sharding adds up to the same bits;
- **decoder cosine**, when both SAEs read the same hook (same ``hook_name`` and ``d_in``);
- **co-activation** inside one SAE: on how many tokens ``i`` and ``j`` both fire.

Memory is bounded: sums are held for a block of ``a``'s features at a time (``block × d_b`` int64), as many
blocks per pass over the spill as ``memory_bytes`` allows, so a run needs ``ceil(total / budget)`` passes and
never a ``d_sae × d_sae`` matrix beyond that budget. Matches of ``b``'s features in ``a`` (columns) are kept as a
running top-k across ``a``'s row blocks, so each pair is summed once for both directions.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

import numpy as np
import torch

FIXED = float(1 << 32)  # units of the normalised sums: values / max are in [0, 1]
PAIRS_PER_CHUNK = 1 << 20  # nonzero pairs expanded at once: at least a block's width of bincount, few page faults
ELEMENT_BYTES = 24  # an int64 sum plus the float64 values computed from it, per block element


@dataclass
class MatchRows:
    """Best matches of one SAE's features in another: one row per (feature, other feature), ``[n]`` each.
    ``corr`` and ``cos`` are NaN where not measured (cos between different hooks, corr of a dead feature)."""

    feature: np.ndarray
    other: np.ndarray
    corr: np.ndarray
    cos: np.ndarray


@dataclass
class MatchResult:
    """What :func:`compute_matches` returns: ``pairs[(a, b)]`` the matches of ``a``'s features in ``b`` (every
    ordered pair of SAE positions), ``coactive[a]`` = ``(feature, other, count)`` arrays."""

    pairs: dict[tuple[int, int], MatchRows] = field(default_factory=dict)
    coactive: dict[int, tuple[np.ndarray, np.ndarray, np.ndarray]] = field(default_factory=dict)


@dataclass
class _Task:
    kind: str  # "cross" (a < b) or "self" (a == b)
    a: int
    b: int
    lo: int
    hi: int
    sums: torch.Tensor | None = None  # int64 [hi - lo, d_b]


class _Top:
    """Running top-``k`` of each row over column blocks (values float64; ties: lower column first)."""

    def __init__(self, rows: int, k: int) -> None:
        self.values = torch.full((rows, 0), -torch.inf, dtype=torch.float64)
        self.index = torch.zeros((rows, 0), dtype=torch.int64)
        self.k = k

    def add(self, values: torch.Tensor, offset: int) -> None:
        """``values [rows, width]`` of columns ``offset .. offset + width - 1`` (blocks come in column order)."""
        k = min(self.k, values.shape[1])
        top = torch.sort(values, dim=1, descending=True, stable=True) if values.shape[1] <= 4 * k else None
        v, i = (top.values[:, :k], top.indices[:, :k]) if top is not None else _topk_stable(values, k)
        all_v = torch.cat([self.values, v.cpu()], dim=1)
        all_i = torch.cat([self.index, i.cpu() + offset], dim=1)
        order = torch.sort(all_v, dim=1, descending=True, stable=True).indices[:, :self.k]
        self.values, self.index = all_v.gather(1, order), all_i.gather(1, order)


def _topk_stable(values: torch.Tensor, k: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Each row's ``k`` largest, ties by lower column: topk bounds the k-th value, then only the candidates at or
    above it are ordered (app.precompute.weights._best_per_row), never a sort of the whole row."""
    from app.precompute.weights import _best_per_row

    values = values.cpu()
    bound = values.topk(k, dim=1).values[:, -1:]
    cand_row, cand_col = (values >= bound).nonzero(as_tuple=True)  # row-major, at least k per row
    index = torch.from_numpy(_best_per_row(cand_row.numpy(), cand_col.numpy(), values[cand_row, cand_col].numpy(),
                                           values.shape[0], k))
    return values.gather(1, index), index


def _plan(d_saes: list[int], memory_bytes: int) -> list[list[_Task]]:
    """Row blocks of every cross pair and every self pair, packed into rounds (one spill pass each)."""
    tasks = []
    for a, d_a in enumerate(d_saes):
        for b in range(a, len(d_saes)):
            d_b = d_saes[b]
            rows = max(1, min(d_a, memory_bytes // (ELEMENT_BYTES * d_b)))
            for lo in range(0, d_a, rows):
                tasks.append(_Task("self" if a == b else "cross", a, b, lo, min(d_a, lo + rows)))
    rounds, current, used = [], [], 0
    for task in tasks:
        size = (task.hi - task.lo) * d_saes[task.b] * ELEMENT_BYTES
        if current and used + size > memory_bytes:
            rounds.append(current)
            current, used = [], 0
        current.append(task)
        used += size
    return rounds + ([current] if current else [])


BINCOUNT_MAX = 4 * PAIRS_PER_CHUNK  # blocks up to this size are summed by np.bincount (a fresh array per chunk)


def pair_sums(out: np.ndarray, lo: int, rows_a, feat_a, val_a, rows_b, feat_b, val_b, exclude_self: bool) -> None:
    """Add ``val_a * val_b`` (fixed point; or 1 each when ``val_a`` is None) into ``out[i - lo, j]`` for every
    nonzero ``(row, i)`` of ``a`` with ``lo <= i < lo + out.shape[0]`` and ``(row, j)`` of ``b`` on the same row.
    Inputs: one batch's nonzeros as numpy arrays (int64 rows and features, float64 values), ``rows_b`` sorted
    ascending (:func:`app.precompute.encode.encode_sparse` order); ``out: int64 [block, d_b]``.

    Each pair's fixed-point product is an integer below 2**32 and a batch adds at most its token count of them
    to one element, so np.bincount's float64 sums are exact integers (below 2**53)."""
    keep = (feat_a >= lo) & (feat_a < lo + out.shape[0])
    rows_a, feat_a = rows_a[keep], feat_a[keep] - lo
    val_a = val_a[keep] if val_a is not None else None
    if rows_a.size == 0 or rows_b.size == 0:
        return
    n_rows = int(max(rows_a.max(), rows_b.max())) + 1
    count_b = np.bincount(rows_b, minlength=n_rows)
    start_b = np.cumsum(count_b) - count_b
    width = out.shape[1]
    flat = out.reshape(-1)
    per_a = count_b[rows_a]
    ends = np.cumsum(per_a)
    first = 0
    while first < rows_a.size:  # chunks of a's nonzeros whose pairs fit PAIRS_PER_CHUNK
        base = int(ends[first - 1]) if first else 0
        last = max(int(np.searchsorted(ends, base + PAIRS_PER_CHUNK, side="right")), first + 1)
        reps = per_a[first:last]
        total = int(reps.sum())
        if total:
            offsets = np.arange(total) - np.repeat(np.cumsum(reps) - reps, reps)
            idx_b = np.repeat(start_b[rows_a[first:last]], reps) + offsets
            i = np.repeat(feat_a[first:last], reps)
            j = feat_b[idx_b]
            weight = None if val_a is None else np.round(np.repeat(val_a[first:last], reps) * val_b[idx_b] * FIXED)
            if exclude_self:
                other = (i + lo) != j
                i, j = i[other], j[other]
                weight = weight[other] if weight is not None else None
            keys = i * width + j
            if flat.size <= BINCOUNT_MAX:
                flat += np.bincount(keys, weight, minlength=flat.size).astype(np.int64)
            else:
                np.add.at(flat, keys, 1 if weight is None else weight.astype(np.int64))
        first = last


def compute_matches(batches: Callable[[], Iterable[list[dict]]], d_saes: list[int], max_acts: list[torch.Tensor],
                    n_tokens: int, decoders: list[torch.Tensor], hooks: list[str], n_matches: int, n_coactive: int,
                    memory_bytes: int, all_reduce: Callable[[torch.Tensor], torch.Tensor] = lambda t: t,
                    on_round: Callable[[int, int], None] = lambda done, total: None) -> MatchResult:
    """Matches of every ordered pair of SAEs and each SAE's co-activation, exact.

    ``batches()`` yields, per spilled batch, one ``{"rows", "features", "values"}`` dict per SAE (rows are the
    batch's token rows, shared by the SAEs); it is called once per round. ``max_acts[s]: [d_sae]`` final maxima,
    ``n_tokens`` valid tokens of the whole corpus, ``decoders[s]: [d_sae, d_in]`` unit decoder rows; two SAEs of
    the same ``hooks[s]`` and ``d_in`` get decoder cosines. ``all_reduce`` sums an int64 tensor over ranks."""
    n = len(d_saes)
    decoders = [d.detach().float().cpu() for d in decoders]
    scale = [1.0 / m.double().cpu().clamp(min=1e-30).numpy() for m in max_acts]
    moments = [torch.zeros((2, d), dtype=torch.int64) for d in d_saes]  # sum x, sum x² (normalised, fixed point)
    same = {(a, b) for a in range(n) for b in range(n)
            if a != b and hooks[a] == hooks[b] and decoders[a].shape[1] == decoders[b].shape[1]}
    cos_top = _cosine_tops(d_saes, decoders, same, n_matches)
    corr_rows = {(a, b): _Top(d_saes[a], n_matches) for a in range(n) for b in range(n) if a != b}
    co_top = {a: _Top(d_saes[a], n_coactive) for a in range(n)}
    wanted = {key: torch.full(idx.shape, torch.nan, dtype=torch.float64) for key, (idx, _) in cos_top.items()}
    rounds = _plan(d_saes, memory_bytes)
    for number, tasks in enumerate(rounds):
        for task in tasks:
            task.sums = torch.zeros((task.hi - task.lo, d_saes[task.b]), dtype=torch.int64)
        for saes in batches():
            cols = []
            for k, s in enumerate(saes):
                f = s["features"].numpy().astype(np.int64)
                cols.append((s["rows"].numpy().astype(np.int64), f, s["values"].numpy().astype(np.float64) * scale[k][f]))
            if number == 0:
                for (_, f, v), m, d in zip(cols, moments, d_saes):
                    m[0] += torch.from_numpy(np.bincount(f, np.round(v * FIXED), minlength=d).astype(np.int64))
                    m[1] += torch.from_numpy(np.bincount(f, np.round(v * v * FIXED), minlength=d).astype(np.int64))
            for task in tasks:
                ra, fa, va = cols[task.a]
                rb, fb, vb = cols[task.b]
                pair_sums(task.sums.numpy(), task.lo, ra, fa, None if task.kind == "self" else va, rb, fb, vb,
                          exclude_self=task.kind == "self")
        if number == 0:
            moments = [all_reduce(m) for m in moments]
            stats = [_mean_sd(m, n_tokens) for m in moments]
        for task in tasks:
            sums = all_reduce(task.sums)
            if task.kind == "self":
                _add_rows(co_top[task.a], sums.double(), task.lo)  # a block holds whole rows
            else:
                corr = _correlation(sums, stats[task.a], stats[task.b], task.lo, task.hi, n_tokens)
                _add_rows(corr_rows[(task.a, task.b)], corr, task.lo)
                corr_rows[(task.b, task.a)].add(corr.T.contiguous(), task.lo)
                for key, values in wanted.items():
                    _fill_wanted(values, cos_top[key][0], key, task, corr)
            task.sums = None
        on_round(number + 1, len(rounds))
    result = MatchResult()
    for (a, b), top in corr_rows.items():
        units = (decoders[a], decoders[b]) if (a, b) in same else None
        result.pairs[(a, b)] = _rows(top, cos_top.get((a, b)), wanted.get((a, b)), units)
    for a, top in co_top.items():
        keep = top.values > 0
        feature = torch.arange(d_saes[a]).unsqueeze(1).expand_as(top.index)[keep]
        result.coactive[a] = (feature.numpy(), top.index[keep].numpy(), top.values[keep].long().numpy())
    return result


def _add_rows(top: _Top, values: torch.Tensor, lo: int) -> None:
    """Rows ``lo .. lo + len(values)`` of ``top`` take the top-k of ``values`` (full rows: a new block)."""
    part = _Top(values.shape[0], top.k)
    part.add(values, 0)
    if top.values.shape[1] == 0:
        top.values = torch.full((top.index.shape[0], part.values.shape[1]), -torch.inf, dtype=torch.float64)
        top.index = torch.zeros((top.index.shape[0], part.values.shape[1]), dtype=torch.int64)
    top.values[lo:lo + values.shape[0]], top.index[lo:lo + values.shape[0]] = part.values, part.index


def _mean_sd(moments: torch.Tensor, n_tokens: int) -> tuple[torch.Tensor, torch.Tensor]:
    mean = moments[0].double() / FIXED / max(n_tokens, 1)
    var = (moments[1].double() / FIXED / max(n_tokens, 1) - mean * mean).clamp(min=0)
    return mean, var.sqrt()


def _correlation(sums: torch.Tensor, stats_a, stats_b, lo: int, hi: int, n_tokens: int) -> torch.Tensor:
    """``float64 [hi - lo, d_b]`` Pearson r from the block's cross sums; -inf where a feature never varies (dead),
    so it never ranks as a match."""
    (mean_a, sd_a), (mean_b, sd_b) = stats_a, stats_b
    cov = sums.double() / FIXED / max(n_tokens, 1) - mean_a[lo:hi, None] * mean_b[None, :]
    denom = sd_a[lo:hi, None] * sd_b[None, :]
    return torch.where(denom > 0, cov / denom.clamp(min=1e-300), torch.tensor(-torch.inf, dtype=torch.float64))


def _fill_wanted(values: torch.Tensor, cos_index: torch.Tensor, key: tuple[int, int], task: _Task, corr) -> None:
    """Correlations of the cosine matches ``key = (x, y)`` that lie in this block of (task.a, task.b)."""
    x, y = key
    if (x, y) == (task.a, task.b):
        rows = slice(task.lo, task.hi)
        values[rows] = corr.gather(1, cos_index[rows])
    elif (x, y) == (task.b, task.a):
        inside = (cos_index >= task.lo) & (cos_index < task.hi)
        r, c = inside.nonzero(as_tuple=True)
        values[r, c] = corr[cos_index[r, c] - task.lo, r]


def _cosine_tops(d_saes, decoders, pairs, k: int) -> dict[tuple[int, int], tuple[torch.Tensor, torch.Tensor]]:
    """``(a, b) -> (index, cosine) [d_a, k]`` of each ``a`` feature's nearest decoder rows in ``b``."""
    out = {}
    for a, b in sorted(pairs):
        w_a, w_b = decoders[a].double().cpu(), decoders[b].double().cpu()
        top = _Top(d_saes[a], k)
        step = max(1, (1 << 24) // max(d_saes[b], 1))
        for start in range(0, d_saes[a], step):
            _add_rows(top, w_a[start:start + step] @ w_b.T, start)
        out[(a, b)] = (top.index, top.values)
    return out


def _rows(corr_top: _Top, cos_top, corr_at_cos, units) -> MatchRows:
    """Union of the correlation and cosine matches, each with both measures."""
    d_a = corr_top.index.shape[0]
    feats = torch.arange(d_a).unsqueeze(1)
    keep = torch.isfinite(corr_top.values) & (corr_top.values > 0)
    f, o, c = feats.expand_as(corr_top.index)[keep], corr_top.index[keep], corr_top.values[keep]
    if units is not None:
        cos = (units[0][f].double() * units[1][o].double()).sum(dim=1)
    else:
        cos = torch.full(f.shape, torch.nan, dtype=torch.float64)
    if cos_top is not None:
        index, cosine = cos_top
        cf, co = feats.expand_as(index).reshape(-1), index.reshape(-1)
        seen = set(zip(f.tolist(), o.tolist()))
        extra = torch.tensor([(a, b) not in seen for a, b in zip(cf.tolist(), co.tolist())], dtype=torch.bool)
        f, o = torch.cat([f, cf[extra]]), torch.cat([o, co[extra]])
        at_cos = corr_at_cos.reshape(-1)[extra]
        c = torch.cat([c, torch.where(torch.isfinite(at_cos), at_cos, torch.nan)])
        cos = torch.cat([cos, cosine.reshape(-1)[extra]])
    order = np.lexsort((o.numpy(), f.numpy()))
    return MatchRows(feature=f.numpy()[order], other=o.numpy()[order], corr=c.numpy()[order], cos=cos.numpy()[order])


def write_matches(engine, saes, names, found) -> dict:
    """Write the run's matches, co-activation and feature maps (app/store/compare.py); returns row counts."""
    from app.precompute.weights import decoder_map
    from app.store import compare as qc
    from app.store.engine import make_sessionmaker
    from app.store.sources import source_by_name

    with make_sessionmaker(engine)() as session:
        ids = [source_by_name(session, name).id for name in names]
    n_rows = 0
    for (a, b), rows in found.pairs.items():
        n_rows += qc.write_matches(engine, ids[a], ids[b], rows.feature, rows.other, rows.corr, rows.cos)
    for a, (feature, other, count) in found.coactive.items():
        qc.write_coactivation(engine, ids[a], feature, other, count)
    for sae, source_id in zip(saes, ids):
        qc.write_map(engine, source_id, *decoder_map(sae.W_dec))
    return {"match_rows": n_rows, "pairs": len(found.pairs)}
