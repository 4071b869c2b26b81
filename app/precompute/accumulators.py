"""Streaming, exactly mergeable per-feature accumulators (tensor ops only, no loop over features).

Two passes, because interval bins run from 0 to each feature's *final* max:

Pass 1 (:class:`FeatureAccumulator`, one per SAE, fed every batch of the corpus):
  top-K examples (at most one per context: the context's peak), firing counts, sum of
  activations (for the mean when active) and the max. It also returns each batch's nonzero
  activations as a sparse list ``(row, feature, value)``, which the runner spills to disk.

Pass 2 (:class:`IntervalAccumulator`, fed the spilled nonzeros once the final max is known):
  exact counts in the ``n_intervals`` equal-width bins of ``(0, max]`` and in the ``hist_bins``
  histogram bins, and ``m`` sampled examples per interval bin.

Why spill instead of a second LM pass or reservoir sampling: exact bin shares need every
activation re-binned against the final max, which no fixed-size streaming summary gives. The
nonzeros are ``tokens × L0`` (12 bytes each, on disk, deleted at the end), far smaller than
``tokens × d_sae`` and far cheaper to re-read than to recompute the model. Memory stays
``O(d_sae × (K + n_intervals × m))`` plus one batch.

Sampling is "uniform over active tokens of the bin, at most one per context": every
(context ordinal, position, feature) gets a fixed pseudo-random key from a 32-bit integer hash
(:func:`token_keys`); a bin keeps the ``m`` contexts whose smallest key in the bin is smallest,
i.e. walk the bin's tokens in key order and keep the first ``m`` distinct contexts. Keys depend
on nothing but (seed, ordinal, position, feature), so any batching, sharding or resume picks the
same samples.

Orders are total, so merges are exact and associative: top-K by (value desc, ordinal asc),
samples by key (ties, only possible inside one context, by position order). Sums are kept in
fixed point (int64 units of 2**-24) so that adding shards in any order gives identical bits.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

INT64_MAX = torch.iinfo(torch.int64).max
ORDINAL_MASK = (1 << 32) - 1
FIXED_POINT = float(1 << 24)  # sum_act units
_M32 = 0xFFFFFFFF


# -- ordering keys ---------------------------------------------------------------------------------
def peak_keys(values: torch.Tensor, ordinals: torch.Tensor) -> torch.Tensor:
    """int64 key that sorts by (value desc, ordinal asc): ``values`` float32 >= 0, ``ordinals`` < 2**32.

    Non-negative float32 bit patterns are ordered like the floats, so ``bits << 32 | ~ordinal``
    is one integer per candidate; empty slots are -1.
    """
    bits = values.float().contiguous().view(torch.int32).long()
    return (bits << 32) | (ORDINAL_MASK - ordinals)


def key_values(keys: torch.Tensor) -> torch.Tensor:
    """Inverse of :func:`peak_keys` for the value (empty slots give 0)."""
    bits = (keys.clamp(min=0) >> 32).to(torch.int32)
    return bits.view(torch.float32)


def key_ordinals(keys: torch.Tensor) -> torch.Tensor:
    """Inverse of :func:`peak_keys` for the ordinal (empty slots give -1)."""
    return torch.where(keys < 0, -1, ORDINAL_MASK - (keys & ORDINAL_MASK))


def _mix32(h: torch.Tensor) -> torch.Tensor:
    h = h ^ (h >> 16)
    h = (h * 0x7FEB352D) & _M32
    h = h ^ (h >> 15)
    h = (h * 0x846CA68B) & _M32
    return h ^ (h >> 16)


def token_keys(ordinals: torch.Tensor, positions: torch.Tensor, features: torch.Tensor, seed: int) -> torch.Tensor:
    """Pseudo-random sample keys, int64 ``< 2**63``: a 32-bit hash of (seed, ordinal, position,
    feature) in the high bits and the ordinal in the low 31, so keys of different contexts differ."""
    token = _mix32(((ordinals.long() * 0x9E3779B1) & _M32) ^ (positions.long() * 0x85EBCA77 & _M32) ^ (seed & _M32))
    return (_mix32(token ^ feature_hash(features)) << 31) | (ordinals.long() & 0x7FFFFFFF)


def feature_hash(features: torch.Tensor) -> torch.Tensor:
    return _mix32((features.long() * 0xC2B2AE3D + 0x27D4EB2F) & _M32)


def bin_index(ratio: torch.Tensor, n_bins: int) -> torch.Tensor:
    """Equal-width bin in ``(0, max]`` → ``[0, n_bins)`` from ``ratio = value / max`` (float64, see
    :func:`act_ratio`), so a reference doing the same arithmetic gets the same bins."""
    return (ratio * n_bins).floor().long().clamp_(0, n_bins - 1)


def bins_of(ratio: torch.Tensor, hist_bins: int, n_intervals: int) -> tuple[torch.Tensor, torch.Tensor]:
    """(histogram bin, interval bin) of each ``ratio = value / max``. When ``hist_bins`` is a
    multiple of ``n_intervals`` an interval is exactly ``hist_bins / n_intervals`` whole histogram
    bins (one floor instead of two, and shares that agree with the histogram)."""
    hist_bin = bin_index(ratio, hist_bins)
    if hist_bins % n_intervals == 0:
        return hist_bin, torch.div(hist_bin, hist_bins // n_intervals, rounding_mode="floor")
    return hist_bin, bin_index(ratio, n_intervals)


def act_ratio(values: torch.Tensor, max_values: torch.Tensor) -> torch.Tensor:
    """``value / max`` in float64."""
    return values.double() / max_values.double()


def _group_ranks(sorted_groups: torch.Tensor) -> torch.Tensor:
    """For a sorted 1-D tensor, each element's index within its run of equal values."""
    n = sorted_groups.numel()
    idx = torch.arange(n, device=sorted_groups.device)
    starts = torch.ones(n, dtype=torch.bool, device=sorted_groups.device)
    if n > 1:
        starts[1:] = sorted_groups[1:] != sorted_groups[:-1]
    run_start = torch.cummax(torch.where(starts, idx, 0), dim=0).values
    return idx - run_start


def merge_smallest(state_key: torch.Tensor, state_payload: dict[str, torch.Tensor],
                   groups: torch.Tensor, keys: torch.Tensor, payload: dict[str, torch.Tensor]) -> None:
    """Keep, per group ``g``, the ``m`` smallest keys of ``state_key[g]`` ∪ candidates (in place).

    ``state_key: int64 [G, m]`` sorted ascending per row, INT64_MAX = empty; ``state_payload``
    tensors ``[G, m]``; candidates ``groups, keys: [n]`` with ``payload`` tensors ``[n]``.
    Only touched groups are re-sorted.
    """
    m = state_key.shape[1]
    beats = keys < state_key[groups, m - 1]
    if not bool(beats.any()):
        return
    groups, keys = groups[beats], keys[beats]
    payload = {name: value[beats] for name, value in payload.items()}
    touched = torch.unique(groups)
    old_keys = state_key[touched].reshape(-1)
    old_groups = touched.repeat_interleave(m)
    all_groups = torch.cat([old_groups, groups])
    all_keys = torch.cat([old_keys, keys])
    order = torch.sort(all_keys, stable=True).indices
    order = order[torch.sort(all_groups[order], stable=True).indices]
    ranks = _group_ranks(all_groups[order])
    keep = order[ranks < m]
    kept_ranks = ranks[ranks < m]
    rows, cols = all_groups[keep], kept_ranks
    state_key[rows, cols] = all_keys[keep]
    for name, tensor in state_payload.items():
        merged = torch.cat([tensor[touched].reshape(-1), payload[name]])
        tensor[rows, cols] = merged[keep]


# -- pass 1 ----------------------------------------------------------------------------------------
@dataclass
class SparseActs:
    """Nonzero activations of one batch: flat token row ``b * T + t``, feature, value."""

    rows: torch.Tensor  # int32 [nnz]
    features: torch.Tensor  # int32 [nnz]
    values: torch.Tensor  # float32 [nnz]


class FeatureAccumulator:
    """Pass 1 for one SAE. State: ``top_key int64 [d_sae, K]`` (see :func:`peak_keys`),
    ``top_pos int32 [d_sae, K]``, ``n_active int64 [d_sae]``, ``sum_fixed int64 [d_sae]``,
    and the numbers of valid tokens and contexts."""

    def __init__(self, d_sae: int, top_k: int, device: torch.device | str = "cpu") -> None:
        self.d_sae, self.top_k = d_sae, top_k
        self.top_key = torch.full((d_sae, top_k), -1, dtype=torch.int64, device=device)
        self.top_pos = torch.zeros((d_sae, top_k), dtype=torch.int32, device=device)
        self.n_active = torch.zeros(d_sae, dtype=torch.int64, device=device)
        self.sum_fixed = torch.zeros(d_sae, dtype=torch.int64, device=device)
        self.n_valid_tokens = 0
        self.n_contexts = 0

    def update(self, acts: torch.Tensor, valid: torch.Tensor, ordinals: torch.Tensor) -> SparseActs:
        """Dense input (tests, tiny models): ``acts: float [batch, pos, d_sae]``, ``valid: bool
        [batch, pos]``, ``ordinals: int64 [batch]`` → the batch's positive activations at valid
        positions, after :meth:`update_sparse` has counted them."""
        batch, n_pos, d_sae = acts.shape
        flat = (acts * valid.unsqueeze(-1)).view(batch * n_pos, d_sae)
        rows, features = (flat > 0).nonzero(as_tuple=True)
        sparse = SparseActs(rows.to(torch.int32), features.to(torch.int32), flat[rows, features].float())
        self.update_sparse(sparse, n_pos, ordinals, int(valid.sum()))
        return sparse

    def update_sparse(self, sparse: SparseActs, n_pos: int, ordinals: torch.Tensor, n_valid: int) -> None:
        """One batch of contexts ``ordinals: int64 [batch]`` of ``n_pos`` positions, ``n_valid`` of
        them valid, given as its positive activations (``rows`` are ``context * n_pos + position``)."""
        features, values = sparse.features.long(), sparse.values
        device = self.top_key.device
        self.n_active += torch.bincount(features, minlength=self.d_sae)
        batch_sum = torch.zeros(self.d_sae, dtype=torch.float64, device=device)
        batch_sum.index_add_(0, features, values.double())
        self.sum_fixed += torch.round(batch_sum * FIXED_POINT).long()
        self.n_valid_tokens += n_valid
        self.n_contexts += ordinals.numel()
        if values.numel():
            self._merge_peaks(sparse.rows.long(), features, values, n_pos, ordinals.to(device))

    def _merge_peaks(self, rows: torch.Tensor, features: torch.Tensor, values: torch.Tensor, n_pos: int,
                     ordinals: torch.Tensor) -> None:
        """Merge each context's peak per feature into the top-K, touching only what can enter.

        A context's peak can enter feature ``f``'s top-K only if its key beats the K-th key, and
        then every token at least as high beats it too, so the tokens below it are dropped before
        the (context, feature) peaks are found: after the first batches almost all are.
        """
        context = rows // n_pos
        keys = peak_keys(values, ordinals[context])
        beats = keys > self.top_key[:, self.top_k - 1].contiguous()[features]
        if not bool(beats.any()):
            return
        features, values, keys, context = features[beats], values[beats], keys[beats], context[beats]
        positions = rows[beats] % n_pos
        # the peak of each (feature, context): highest value, ties to the lowest position
        combined = (values.contiguous().view(torch.int32).long() << 32) | (n_pos - 1 - positions)
        order = torch.sort(combined, descending=True, stable=True).indices
        pair = features * ordinals.numel() + context
        order = order[torch.sort(pair[order], stable=True).indices]
        peak = order[_group_ranks(pair[order]) == 0]  # sorted by feature, then context
        peak_features = features[peak]
        slot = _group_ranks(peak_features)
        touched, inverse = torch.unique_consecutive(peak_features, return_inverse=True)
        width = int(slot.max()) + 1
        cand_key = torch.full((touched.numel(), width), -1, dtype=torch.int64, device=keys.device)
        cand_pos = torch.zeros((touched.numel(), width), dtype=torch.int32, device=keys.device)
        cand_key[inverse, slot] = keys[peak]
        cand_pos[inverse, slot] = positions[peak].to(torch.int32)
        all_key = torch.cat([self.top_key[touched], cand_key], dim=1)
        all_pos = torch.cat([self.top_pos[touched], cand_pos], dim=1)
        new_key, idx = all_key.topk(self.top_k, dim=1)
        self.top_key[touched] = new_key
        self.top_pos[touched] = all_pos.gather(1, idx)

    def _merge_top(self, cand_key: torch.Tensor, cand_pos: torch.Tensor) -> None:
        """Merge candidates ``[d_sae, n]`` into the top-K (one topk over ``[d_sae, K + n]``)."""
        all_key = torch.cat([self.top_key, cand_key], dim=1)
        all_pos = torch.cat([self.top_pos, cand_pos], dim=1)
        self.top_key, idx = all_key.topk(self.top_k, dim=1)
        self.top_pos = all_pos.gather(1, idx)

    def merge(self, other: FeatureAccumulator) -> None:
        """Add another shard's state (exact and order-independent)."""
        self._merge_top(other.top_key.to(self.top_key.device), other.top_pos.to(self.top_pos.device))
        self.n_active += other.n_active.to(self.n_active.device)
        self.sum_fixed += other.sum_fixed.to(self.sum_fixed.device)
        self.n_valid_tokens += other.n_valid_tokens
        self.n_contexts += other.n_contexts

    @property
    def max_act(self) -> torch.Tensor:
        """float32 [d_sae]: 0 for features that never fired."""
        return key_values(self.top_key[:, 0])

    @property
    def mean_act(self) -> torch.Tensor:
        """float64 [d_sae]: mean activation when active (0 when never active)."""
        return (self.sum_fixed.double() / FIXED_POINT) / self.n_active.clamp(min=1).double()

    def state_dict(self) -> dict:
        return {"top_key": self.top_key.cpu(), "top_pos": self.top_pos.cpu(), "n_active": self.n_active.cpu(),
                "sum_fixed": self.sum_fixed.cpu(), "n_valid_tokens": self.n_valid_tokens,
                "n_contexts": self.n_contexts, "d_sae": self.d_sae, "top_k": self.top_k}

    @classmethod
    def from_state_dict(cls, state: dict, device: torch.device | str = "cpu") -> FeatureAccumulator:
        acc = cls(state["d_sae"], state["top_k"], device)
        for name in ("top_key", "top_pos", "n_active", "sum_fixed"):
            setattr(acc, name, state[name].to(device))
        acc.n_valid_tokens, acc.n_contexts = state["n_valid_tokens"], state["n_contexts"]
        return acc


# -- pass 2 ----------------------------------------------------------------------------------------
class IntervalAccumulator:
    """Pass 2 for one SAE, given the final ``max_act float32 [d_sae]``.

    State: ``hist_counts int64 [d_sae, hist_bins]``, ``bin_counts int64 [d_sae, n_intervals]``
    (a view of sums of the histogram when ``hist_bins`` is a multiple of ``n_intervals``), and per
    group ``g = feature * n_intervals + bin`` the ``m`` samples: ``sample_key int64 [G, m]``
    (INT64_MAX = empty), ``sample_ordinal int64``, ``sample_pos int32``, ``sample_value float32``.
    """

    def __init__(self, max_act: torch.Tensor, n_intervals: int, examples_per_interval: int, hist_bins: int,
                 seed: int) -> None:
        device = max_act.device
        self.max_act = max_act.float()
        self.d_sae = max_act.numel()
        self.n_intervals, self.m, self.hist_bins, self.seed = n_intervals, examples_per_interval, hist_bins, seed
        groups = self.d_sae * n_intervals
        self.hist_counts = torch.zeros((self.d_sae, hist_bins), dtype=torch.int64, device=device)
        # counted separately only when intervals are not whole histogram bins
        self._bin_counts = (None if hist_bins % n_intervals == 0 else
                            torch.zeros((self.d_sae, n_intervals), dtype=torch.int64, device=device))
        self.sample_key = torch.full((groups, self.m), INT64_MAX, dtype=torch.int64, device=device)
        self.samples = {
            "ordinal": torch.full((groups, self.m), -1, dtype=torch.int64, device=device),
            "pos": torch.zeros((groups, self.m), dtype=torch.int32, device=device),
            "value": torch.zeros((groups, self.m), dtype=torch.float32, device=device),
        }

    @property
    def bin_counts(self) -> torch.Tensor:
        if self._bin_counts is None:
            return self.hist_counts.view(self.d_sae, self.n_intervals, -1).sum(dim=2)
        return self._bin_counts

    def update(self, ordinals: torch.Tensor, positions: torch.Tensor, features: torch.Tensor,
               values: torch.Tensor) -> None:
        """One batch of nonzeros ``[nnz]``: context ordinal, position, feature, value."""
        if values.numel() == 0:
            return
        features = features.long()
        hist_bin, interval_bin = bins_of(act_ratio(values, self.max_act[features]), self.hist_bins, self.n_intervals)
        ones = torch.ones(1, dtype=torch.int64, device=features.device).expand(features.numel())
        # index_add_ costs O(nnz); a bincount with minlength would cost O(d_sae × hist_bins) per batch
        self.hist_counts.view(-1).index_add_(0, features * self.hist_bins + hist_bin, ones)
        groups = features * self.n_intervals + interval_bin
        if self._bin_counts is not None:
            self._bin_counts.view(-1).index_add_(0, groups, ones)
        keys = token_keys(ordinals, positions, features, self.seed)
        # only tokens that beat their group's current m-th key can enter (exact: the state only improves)
        hopeful = keys < self.sample_key[groups, self.m - 1]
        if not bool(hopeful.any()):
            return
        groups, keys, ordinals = groups[hopeful], keys[hopeful], ordinals.long()[hopeful]
        positions, values = positions[hopeful], values[hopeful]
        # one candidate per (group, context): the token with the smallest key
        pair = groups * (1 << 32) + ordinals
        order = torch.sort(keys, stable=True).indices
        order = order[torch.sort(pair[order], stable=True).indices]
        pick = order[_group_ranks(pair[order]) == 0]
        merge_smallest(self.sample_key, self.samples, groups[pick], keys[pick],
                       {"ordinal": ordinals[pick], "pos": positions.to(torch.int32)[pick],
                        "value": values.float()[pick]})

    def merge(self, other: IntervalAccumulator) -> None:
        self.hist_counts += other.hist_counts.to(self.hist_counts.device)
        if self._bin_counts is not None:
            self._bin_counts += other.bin_counts.to(self._bin_counts.device)
        filled = other.sample_key != INT64_MAX
        groups = torch.arange(other.sample_key.shape[0], device=filled.device).unsqueeze(1).expand_as(filled)
        dev = self.sample_key.device
        merge_smallest(self.sample_key, self.samples, groups[filled].to(dev), other.sample_key[filled].to(dev),
                       {name: value[filled].to(dev) for name, value in other.samples.items()})

    def state_dict(self) -> dict:
        return {"bin_counts": self.bin_counts.cpu(), "hist_counts": self.hist_counts.cpu(),
                "sample_key": self.sample_key.cpu(), **{f"sample_{k}": v.cpu() for k, v in self.samples.items()}}

    def load_state_dict(self, state: dict) -> IntervalAccumulator:
        dev = self.sample_key.device
        self.hist_counts = state["hist_counts"].to(dev)
        if self._bin_counts is not None:
            self._bin_counts = state["bin_counts"].to(dev)
        self.sample_key = state["sample_key"].to(dev)
        self.samples = {k: state[f"sample_{k}"].to(dev) for k in self.samples}
        return self


# -- pass 3: activations of the chosen examples ----------------------------------------------------
class ExampleActs:
    """Collects per-token activations (float16 ``[n_pairs, T]``) for the (feature, ordinal) pairs
    chosen as examples, from the spilled nonzeros; ``row_of`` maps a pair to its row."""

    def __init__(self, features: torch.Tensor, ordinals: torch.Tensor, n_pos: int) -> None:
        self.pair_keys = torch.unique(features.long() * (1 << 32) + ordinals.long())
        self.acts = torch.zeros((self.pair_keys.numel(), n_pos), dtype=torch.float16)

    def row_of(self, features: torch.Tensor, ordinals: torch.Tensor) -> torch.Tensor:
        return torch.searchsorted(self.pair_keys, features.long() * (1 << 32) + ordinals.long())

    def update(self, ordinals: torch.Tensor, positions: torch.Tensor, features: torch.Tensor,
               values: torch.Tensor) -> None:
        if self.pair_keys.numel() == 0 or values.numel() == 0:
            return
        keys = features.long() * (1 << 32) + ordinals.long()
        rows = torch.searchsorted(self.pair_keys, keys).clamp_(max=self.pair_keys.numel() - 1)
        hit = self.pair_keys[rows] == keys
        self.acts[rows[hit], positions.long()[hit]] = values[hit].to(torch.float16)

    def merge(self, other: ExampleActs) -> None:
        # each row is filled by exactly one shard (the one holding that context); others hold zeros
        self.acts += other.acts
