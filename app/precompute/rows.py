"""Turning merged accumulator state into database rows (features and examples), feature block by block."""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import torch

from app.precompute.accumulators import (
    INT64_MAX,
    ExampleActs,
    FeatureAccumulator,
    IntervalAccumulator,
    key_ordinals,
    key_values,
)

ROW_BLOCK = 256  # features per (feature rows, example rows) chunk


def example_pairs(acc: FeatureAccumulator, intervals: IntervalAccumulator) -> tuple[torch.Tensor, torch.Tensor]:
    """(features, ordinals) ``int64 [n]`` of every chosen example (top and interval)."""
    top_ok = acc.top_key >= 0
    top_features = torch.arange(acc.d_sae).unsqueeze(1).expand_as(acc.top_key)[top_ok.cpu()]
    top_ordinals = key_ordinals(acc.top_key.cpu())[top_ok.cpu()]
    sample_ok = intervals.sample_key.cpu() != INT64_MAX
    groups = torch.arange(intervals.sample_key.shape[0]).unsqueeze(1).expand_as(sample_ok)
    int_features = groups[sample_ok] // intervals.n_intervals
    int_ordinals = intervals.samples["ordinal"].cpu()[sample_ok]
    return torch.cat([top_features, int_features]), torch.cat([top_ordinals, int_ordinals])


def _acts_bytes(acts: np.ndarray) -> list[bytes]:
    little = acts.astype("<f2", copy=False)
    return [row.tobytes() for row in little]


def _blobs(example_acts: ExampleActs, rows: torch.Tensor) -> list[bytes]:
    """float16 LE bytes of ``example_acts.acts[rows]``, flattened over ``rows``' shape."""
    n = len(example_acts.acts)
    if n == 0:
        return []
    picked = example_acts.acts[rows.reshape(-1).clamp(max=n - 1)]
    return _acts_bytes(picked.numpy())


def feature_chunks(acc: FeatureAccumulator, intervals: IntervalAccumulator, example_acts: ExampleActs,
                   logits: dict, neighbours: tuple[torch.Tensor, torch.Tensor],
                   token_text: list[str]) -> Iterator[tuple[list[dict], list[dict]]]:
    """Yield ``(feature rows, example rows)`` for blocks of :data:`ROW_BLOCK` features; example rows
    carry ``ordinal`` (the store maps it to a context id)."""
    n_valid = max(acc.n_valid_tokens, 1)
    n_iv, m, hist_bins = intervals.n_intervals, intervals.m, intervals.hist_bins
    top_key = acc.top_key.cpu()
    top_values, top_ordinals, top_pos = key_values(top_key), key_ordinals(top_key), acc.top_pos.cpu()
    max_act = acc.max_act.cpu()
    mean_act = acc.mean_act.cpu()
    n_active = acc.n_active.cpu()
    sample_key = intervals.sample_key.cpu().view(acc.d_sae, n_iv, m)
    samples = {k: v.cpu().view(acc.d_sae, n_iv, m) for k, v in intervals.samples.items()}
    bin_counts, hist_counts = intervals.bin_counts.cpu(), intervals.hist_counts.cpu()
    neighbour_ids, neighbour_cos = neighbours

    for start in range(0, acc.d_sae, ROW_BLOCK):
        stop = min(start + ROW_BLOCK, acc.d_sae)
        block = slice(start, stop)
        features: list[dict] = []
        examples: list[dict] = []
        # per-example acts rows, looked up in one vectorised call per block
        f_grid = torch.arange(start, stop).unsqueeze(1)
        top_rows = example_acts.row_of(f_grid.expand(-1, acc.top_k), top_ordinals[block].clamp(min=0))
        s_ord = samples["ordinal"][block]
        int_rows = example_acts.row_of(f_grid.unsqueeze(2).expand(-1, n_iv, m), s_ord.clamp(min=0))
        top_blobs, int_blobs = _blobs(example_acts, top_rows), _blobs(example_acts, int_rows)
        lists = {
            "n_active": n_active[block].tolist(), "max": max_act[block].tolist(), "mean": mean_act[block].tolist(),
            "bins": bin_counts[block].tolist(), "hist": hist_counts[block].tolist(),
            "top_v": top_values[block].tolist(), "top_o": top_ordinals[block].tolist(), "top_p": top_pos[block].tolist(),
            "s_key": sample_key[block].tolist(), "s_o": s_ord.tolist(), "s_p": samples["pos"][block].tolist(),
            "s_v": samples["value"][block].tolist(),
            "lt_i": logits["top_ids"][block].tolist(), "lt_v": logits["top_values"][block].tolist(),
            "lb_i": logits["bottom_ids"][block].tolist(), "lb_v": logits["bottom_values"][block].tolist(),
            "lh": logits["hist_counts"][block].tolist(), "lh_lo": logits["hist_lo"][block].tolist(),
            "lh_hi": logits["hist_hi"][block].tolist(),
            "nb_i": neighbour_ids[block].tolist(), "nb_c": neighbour_cos[block].tolist(),
        }
        for j, index in enumerate(range(start, stop)):
            L = {k: v[j] for k, v in lists.items()}
            top_max = L["max"]
            active = L["n_active"]
            features.append({
                "index": index, "n_active": active, "density": active / n_valid, "max_act": top_max,
                "mean_act": L["mean"],
                "act_hist": ({"edges": np.linspace(0.0, top_max, hist_bins + 1).tolist(), "counts": L["hist"]}
                             if active else {"edges": [], "counts": []}),
                "intervals": [{"lo": top_max * b / n_iv, "hi": top_max * (b + 1) / n_iv,
                               "share": L["bins"][b] / active, "count": L["bins"][b]}
                              for b in range(n_iv)] if active else [],
                "top_logits": [{"token_id": t, "token": token_text[t] if t < len(token_text) else "", "value": v}
                               for t, v in zip(L["lt_i"], L["lt_v"])],
                "bottom_logits": [{"token_id": t, "token": token_text[t] if t < len(token_text) else "", "value": v}
                                  for t, v in zip(L["lb_i"], L["lb_v"])],
                "logit_hist": {"edges": np.linspace(L["lh_lo"], L["lh_hi"], len(L["lh"]) + 1).tolist(),
                               "counts": L["lh"]},
                "neighbours": [{"index": i, "cosine": c} for i, c in zip(L["nb_i"], L["nb_c"])],
            })
            for rank in range(acc.top_k):
                if L["top_o"][rank] < 0:
                    break
                examples.append({"feature_index": index, "kind": "top", "bin": -1, "rank": rank,
                                 "ordinal": L["top_o"][rank], "max_value": L["top_v"][rank],
                                 "max_pos": L["top_p"][rank], "acts": top_blobs[j * acc.top_k + rank]})
            for b in range(n_iv):
                for rank in range(m):
                    if L["s_key"][b][rank] == INT64_MAX:
                        break
                    examples.append({"feature_index": index, "kind": "interval", "bin": b, "rank": rank,
                                     "ordinal": L["s_o"][b][rank], "max_value": L["s_v"][b][rank],
                                     "max_pos": L["s_p"][b][rank], "acts": int_blobs[(j * n_iv + b) * m + rank]})
        yield features, examples
