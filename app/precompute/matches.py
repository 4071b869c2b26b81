"""Feature matches between the SAEs of one run, and co-activation inside each SAE, from pass 1's spill.

The SAEs of one run read the same tokens (one LM forward serves them all), so their spilled nonzeros give, for
every pair of SAEs ``a, b`` and features ``i`` of ``a``, ``j`` of ``b``:

- **activation correlation**: Pearson's r of ``f_i`` and ``f_j`` over every valid token of the sample (zeros
  included): ``r = (E[xy] - E[x]E[y]) / (sd(x) sd(y))``. Only tokens where both fire add to ``sum xy``, so the
  cross sums are one sparse product ``A_a^T A_b`` of the sample's ``tokens × d_sae`` nonzeros (scipy's
  CSR matmul), never dense activations. Values are divided by each feature's corpus max (r does not change) and
  quantised to integers in units of 2**-16, so every product and sum is an exact integer in float64: any
  batching, sharding or summation order gives the same bits;
- **decoder cosine**, when both SAEs read the same hook (same ``hook_name`` and ``d_in``);
- **co-activation** inside one SAE: on how many tokens ``i`` and ``j`` both fire (``A^T A`` of the 0/1 pattern).

The sample is the run's ``match_tokens`` (evenly spaced whole batches; all of them when the corpus is smaller):
the pair work is ``tokens × L0_a × L0_b``, which at L0 ≈ 50 costs as much per token as the LM forward, so it
runs over a sample while the statistics and examples see every token. Memory is bounded: the products are
taken for a block of ``a``'s features at a time (``block × d_b`` dense), as wide as ``memory_bytes`` allows.
Matches of ``b``'s features in ``a`` (columns) are kept as a running top-k across ``a``'s row blocks, so each
pair is summed once for both directions.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

import numpy as np
import torch
from scipy import sparse

QUANT = float(1 << 16)  # values / max (in [0, 1]) are quantised to integers q in units of 2**-16
MAX_SAMPLE_TOKENS = 1 << 21  # q·q < 2**32, so sums over up to 2**21 tokens are integers below 2**53: exact in float64
SPARSE_BELOW = 8  # co-activation ranks from the product's entries when under 1/8 of the block is nonzero
ELEMENT_BYTES = 32  # per block element: the dense float64 sums, their transpose (reverse direction), top-k masks


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
    n_tokens: int = 0  # valid tokens of the sample the sums ran over


@dataclass
class _Task:
    kind: str  # "cross" (a < b) or "self" (a == b)
    a: int
    b: int
    lo: int
    hi: int


class _Top:
    """Running top-``k`` of each row over column blocks (values float64; ties: lower column first).
    ``positive``: only values above 0 count (correlations and co-activation counts: the rest is never kept), so
    the rows of a rare feature, mostly zeros tied at the k-th place, are not ordered whole."""

    def __init__(self, rows: int, k: int, positive: bool = False) -> None:
        self.values = torch.full((rows, 0), -torch.inf, dtype=torch.float64)
        self.index = torch.zeros((rows, 0), dtype=torch.int64)
        self.k = k
        self.positive = positive

    def add(self, values: torch.Tensor, offset: int) -> None:
        """``values [rows, width]`` of columns ``offset .. offset + width - 1`` (blocks come in column order)."""
        k = min(self.k, values.shape[1])
        top = torch.sort(values, dim=1, descending=True, stable=True) if values.shape[1] <= 4 * k else None
        if top is not None:
            v, i = top.values[:, :k], top.indices[:, :k]
        else:
            v, i = _top_positive(values, k) if self.positive else _topk_stable(values, k)
        all_v = torch.cat([self.values, v.cpu()], dim=1)
        all_i = torch.cat([self.index, i.cpu() + offset], dim=1)
        order = torch.sort(all_v, dim=1, descending=True, stable=True).indices[:, :self.k]
        self.values, self.index = all_v.gather(1, order), all_i.gather(1, order)


def _top_positive(values: torch.Tensor, k: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Each row's ``k`` largest values above 0, ties by lower column; a row with fewer is padded with -inf
    (column 0). Only the positive candidates at or above the k-th value are ordered (:func:`_top_entries`)."""
    values = values.cpu()
    bound = values.topk(k, dim=1).values[:, -1:].clamp(min=torch.finfo(torch.float64).tiny)
    rows, cols = (values >= bound).nonzero(as_tuple=True)  # row-major
    return _top_entries(rows, cols, values[rows, cols], values.shape[0], k)


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


def _blocks(d_saes: list[int], memory_bytes: int) -> list[_Task]:
    """Row blocks of every cross pair and every self pair, each within ``memory_bytes``."""
    tasks = []
    for a, d_a in enumerate(d_saes):
        for b in range(a, len(d_saes)):
            rows = max(1, min(d_a, memory_bytes // (ELEMENT_BYTES * d_saes[b])))
            tasks += [_Task("self" if a == b else "cross", a, b, lo, min(d_a, lo + rows)) for lo in range(0, d_a, rows)]
    return tasks


class _Sample:
    """One SAE's quantised nonzeros over the sample's tokens (scipy CSR): ``by_token`` ``[tokens, d_sae]`` with
    values ``q``, its transpose ``by_feature`` (for row blocks of features), and both as 0/1 patterns."""

    def __init__(self, by_token: sparse.csr_matrix) -> None:
        self.by_token = by_token
        self.by_feature = by_token.T.tocsr()
        self.ones_by_token, self.ones_by_feature = _pattern(self.by_token), _pattern(self.by_feature)

    def block_t(self, lo: int, hi: int, ones: bool) -> sparse.csr_matrix:
        """``[hi - lo, tokens]``: features ``lo .. hi - 1`` of the transpose."""
        return (self.ones_by_feature if ones else self.by_feature)[lo:hi]


def _pattern(matrix: sparse.csr_matrix) -> sparse.csr_matrix:
    """The same nonzeros with value 1 (indices shared)."""
    return sparse.csr_matrix((np.ones(matrix.nnz), matrix.indices, matrix.indptr), shape=matrix.shape)


def _sample(batches: Iterable[tuple[int, list[dict]]], d_saes: list[int], scale: list[np.ndarray]):
    """The sample's nonzeros per SAE (:class:`_Sample`), its valid token count, and each SAE's moments
    ``int64 [2, d]`` (sum q, sum q²). Rows of batch ``k`` are offset past batch ``k - 1``'s rows."""
    parts = [([], [], []) for _ in d_saes]
    n_tokens, offset = 0, 0
    for n_valid, saes in batches:
        n_tokens += int(n_valid)
        width = 0
        for (rows, feats, vals), s, sc in zip(parts, saes, scale):
            r = s["rows"].numpy().astype(np.int64)
            f = s["features"].numpy().astype(np.int64)
            rows.append(r + offset)
            feats.append(f)
            vals.append(np.round(s["values"].numpy().astype(np.float64) * sc[f] * QUANT))
            width = max(width, int(r.max()) + 1 if r.size else 0)
        offset += width
    samples, moments = [], []
    for (rows, feats, vals), d in zip(parts, d_saes):
        r = np.concatenate(rows) if rows else np.zeros(0, np.int64)
        f = np.concatenate(feats) if feats else np.zeros(0, np.int64)
        q = np.concatenate(vals) if vals else np.zeros(0)
        moments.append(torch.from_numpy(np.stack([np.bincount(f, q, minlength=d), np.bincount(f, q * q, minlength=d)])
                                        .astype(np.int64)))  # exact: integers below 2**53
        samples.append(_Sample(sparse.csr_matrix((q, (r, f)), shape=(offset, d))))  # spilled entries are unique
    return samples, n_tokens, moments


def _entries(product: sparse.csr_matrix) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """``(rows, cols, values)`` of a CSR product, rows ascending (columns in any order within a row)."""
    rows = np.repeat(np.arange(product.shape[0]), np.diff(product.indptr))
    return (torch.from_numpy(rows.astype(np.int64)), torch.from_numpy(product.indices.astype(np.int64)),
            torch.from_numpy(product.data.astype(np.float64, copy=False)))


def _coactive_entries(product: sparse.csr_matrix, task: _Task, top: _Top, active: torch.Tensor) -> None:
    """Co-activation of one block from the sparse product ``A^T A`` itself: the diagonal is each feature's firing
    count, the rest ranks straight from the entries (every positive count is one), O(nonzeros)."""
    rows, cols, counts = _entries(product)
    diagonal = cols == rows + task.lo
    active[task.lo + rows[diagonal]] = counts[diagonal].long()
    off = ~diagonal
    values, index = _top_entries(rows[off], cols[off], counts[off].double(), task.hi - task.lo, top.k)
    if top.values.shape[1] == 0:
        top.values = torch.full((top.index.shape[0], top.k), -torch.inf, dtype=torch.float64)
        top.index = torch.zeros((top.index.shape[0], top.k), dtype=torch.int64)
    top.values[task.lo:task.hi], top.index[task.lo:task.hi] = values, index


def _top_entries(rows: torch.Tensor, cols: torch.Tensor, values: torch.Tensor, n_rows: int,
                 k: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Each row's ``k`` largest positive entries of a sparse block given by row (rows ascending, columns in any
    order), ties by lower column; ``[n_rows, k]`` padded with -inf (column 0). The k-th value
    per row comes from a ``[n_rows, widest row]`` topk, then only the entries at or above it are ordered."""
    out_v = torch.full((n_rows, k), -torch.inf, dtype=torch.float64)
    out_i = torch.zeros((n_rows, k), dtype=torch.int64)
    if rows.numel() == 0:
        return out_v, out_i
    per_row = torch.bincount(rows, minlength=n_rows)
    starts = torch.cumsum(per_row, 0) - per_row
    slot = torch.arange(rows.numel()) - starts[rows]
    padded = torch.full((n_rows, int(per_row.max())), -torch.inf, dtype=torch.float64)
    padded[rows, slot] = values
    bound = padded.topk(min(k, padded.shape[1]), dim=1).values[:, -1].clamp(min=torch.finfo(torch.float64).tiny)
    keep = values >= bound[rows]
    r, c, v = rows[keep].numpy(), cols[keep].numpy(), values[keep].numpy()
    order = np.lexsort((c, -v, r))  # row, then value descending, then column
    r, c, v = r[order], c[order], v[order]
    first = np.concatenate([[0], np.cumsum(np.bincount(r, minlength=n_rows))[:-1]])
    rank = np.arange(r.size) - first[r]
    top = rank < k
    out_v[r[top], rank[top]] = torch.from_numpy(v[top])
    out_i[r[top], rank[top]] = torch.from_numpy(c[top])
    return out_v, out_i


class _Scratch:
    """The dense block every product is scattered into, allocated once and cleared after each block: a fresh
    ``block × d_b`` tensor per block (134 MB at d_sae 65k) pays its page faults every time, which cost more than
    the sparse product itself."""

    def __init__(self) -> None:
        self.buffer = torch.zeros(0, dtype=torch.float64)
        self.touched = torch.zeros(0, dtype=torch.int64)

    def dense(self, product: sparse.csr_matrix) -> torch.Tensor:
        """A CSR product as a dense float64 view of the buffer (a scatter of its entries)."""
        rows, cols = product.shape
        if self.buffer.numel() < rows * cols:
            self.buffer = torch.zeros(rows * cols, dtype=torch.float64)
        r, c, values = _entries(product)
        self.touched = r * cols + c
        out = self.buffer[:rows * cols]
        out[self.touched] = values
        return out.view(rows, cols)

    def clear(self, written_all: bool) -> None:
        """Back to zeros: the product's entries, or (``written_all``) the whole view that was handed out."""
        if written_all:
            self.buffer.zero_()
        else:
            self.buffer[self.touched] = 0


def compute_matches(batches: Iterable[tuple[int, list[dict]]], d_saes: list[int], max_acts: list[torch.Tensor],
                    decoders: list[torch.Tensor], hooks: list[str], n_matches: int, n_coactive: int,
                    memory_bytes: int, all_reduce: Callable[[torch.Tensor], torch.Tensor] | None = None,
                    corpus_active: list[torch.Tensor] | None = None) -> MatchResult:
    """Matches of every ordered pair of SAEs and each SAE's co-activation, exact over the sample's tokens.

    ``batches`` yields, per spilled batch of the sample, ``(valid tokens, [{"rows", "features", "values"} per
    SAE])`` (rows are the batch's token rows, shared by the SAEs). ``max_acts[s]: [d_sae]`` the corpus maxima,
    ``decoders[s]: [d_sae, d_in]`` unit decoder rows; two SAEs of the same ``hooks[s]`` and ``d_in`` get decoder
    cosines. ``all_reduce`` sums a tensor over ranks (each rank holds part of the sample); without it (one
    process) co-activation is ranked straight from the sparse product's entries, never a dense block.
    ``corpus_active[s]: [d_sae]`` tokens each feature fires on in the whole corpus: co-activation counts are
    scaled from the sample to the corpus by it (unchanged when the sample is the corpus)."""
    n = len(d_saes)
    sharded, all_reduce = all_reduce is not None, all_reduce or (lambda t: t)
    decoders = [d.detach().float().cpu() for d in decoders]
    scale = [1.0 / m.double().cpu().clamp(min=1e-30).numpy() for m in max_acts]
    samples, n_local, moments = _sample(batches, d_saes, scale)
    n_tokens = int(all_reduce(torch.tensor([n_local], dtype=torch.int64))[0])
    if n_tokens > MAX_SAMPLE_TOKENS:
        raise ValueError(f"{n_tokens:,} sample tokens: at most {MAX_SAMPLE_TOKENS:,} keep the sums exact")
    stats = [_mean_sd(all_reduce(m), n_tokens) for m in moments]
    same = {(a, b) for a in range(n) for b in range(n)
            if a != b and hooks[a] == hooks[b] and decoders[a].shape[1] == decoders[b].shape[1]}
    cos_top = _cosine_tops(d_saes, decoders, same, n_matches)
    corr_rows = {(a, b): _Top(d_saes[a], n_matches, positive=True) for a in range(n) for b in range(n) if a != b}
    co_top = {a: _Top(d_saes[a], n_coactive, positive=True) for a in range(n)}
    active = [torch.zeros(d, dtype=torch.int64) for d in d_saes]  # sample tokens each feature fires on
    wanted = {key: torch.full(idx.shape, torch.nan, dtype=torch.float64) for key, (idx, _) in cos_top.items()}
    tasks = _blocks(d_saes, memory_bytes)
    scratch = _Scratch()
    for task in tasks:
        ones = task.kind == "self"
        right = samples[task.b].ones_by_token if ones else samples[task.b].by_token
        product = samples[task.a].block_t(task.lo, task.hi, ones) @ right  # scipy's SpGEMM (torch's CSR matmul
        # on CPU leaks about its output's size per call in torch 2.13: 1.8 GB over a 65k-feature match pass)
        if ones and not sharded and product.nnz * SPARSE_BELOW < product.shape[0] * product.shape[1]:
            _coactive_entries(product, task, co_top[task.a], active[task.a])
            continue
        sums = all_reduce(scratch.dense(product))  # float64 holding exact integers (see QUANT): any order adds the same
        if ones:
            local = torch.arange(task.hi - task.lo)
            active[task.a][task.lo:task.hi] = sums[local, local + task.lo].long()
            sums[local, local + task.lo] = 0
            _add_rows(co_top[task.a], sums, task.lo)  # a block holds whole rows
        else:
            corr = _correlation(sums, stats[task.a], stats[task.b], task.lo, task.hi, n_tokens)
            _add_rows(corr_rows[(task.a, task.b)], corr, task.lo)
            corr_rows[(task.b, task.a)].add(corr.T.contiguous(), task.lo)
            for key, values in wanted.items():
                _fill_wanted(values, cos_top[key][0], key, task, corr)
        scratch.clear(written_all=not ones)  # a correlation block is computed in place
    result = MatchResult(n_tokens=n_tokens)
    for (a, b), top in corr_rows.items():
        units = (decoders[a], decoders[b]) if (a, b) in same else None
        result.pairs[(a, b)] = _rows(top, cos_top.get((a, b)), wanted.get((a, b)), units)
    for a, top in co_top.items():
        keep = top.values > 0
        feature = torch.arange(d_saes[a]).unsqueeze(1).expand_as(top.index)[keep]
        count = top.values[keep]
        if corpus_active is not None:
            count = count * (corpus_active[a].cpu().double()[feature] / active[a].double()[feature].clamp(min=1))
        result.coactive[a] = (feature.numpy(), top.index[keep].numpy(), count.round().long().numpy())
    return result


def _add_rows(top: _Top, values: torch.Tensor, lo: int) -> None:
    """Rows ``lo .. lo + len(values)`` of ``top`` take the top-k of ``values`` (full rows: a new block)."""
    part = _Top(values.shape[0], top.k, top.positive)
    part.add(values, 0)
    if top.values.shape[1] == 0:
        top.values = torch.full((top.index.shape[0], part.values.shape[1]), -torch.inf, dtype=torch.float64)
        top.index = torch.zeros((top.index.shape[0], part.values.shape[1]), dtype=torch.int64)
    top.values[lo:lo + values.shape[0]], top.index[lo:lo + values.shape[0]] = part.values, part.index


def _mean_sd(moments: torch.Tensor, n_tokens: int) -> tuple[torch.Tensor, torch.Tensor]:
    mean = moments[0].double() / QUANT / max(n_tokens, 1)
    var = (moments[1].double() / (QUANT * QUANT) / max(n_tokens, 1) - mean * mean).clamp(min=0)
    return mean, var.sqrt()


def _correlation(sums: torch.Tensor, stats_a, stats_b, lo: int, hi: int, n_tokens: int) -> torch.Tensor:
    """``float64 [hi - lo, d_b]`` Pearson r from the block's cross sums (computed in place in ``sums``); -inf where
    a feature never varies (dead), so it never ranks as a match."""
    (mean_a, sd_a), (mean_b, sd_b) = stats_a, stats_b
    corr = sums.double().div_(QUANT * QUANT * max(n_tokens, 1))
    corr.sub_(mean_a[lo:hi, None] * mean_b[None, :])
    corr.div_(sd_a[lo:hi, None].clamp(min=1e-300)).div_(sd_b[None, :].clamp(min=1e-300))
    corr[sd_a[lo:hi] <= 0] = -torch.inf
    corr[:, sd_b <= 0] = -torch.inf
    return corr


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
