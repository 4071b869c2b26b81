"""Turning merged accumulator state into database rows (features and examples), feature block by block.

Examples are built column by column with numpy (65k features × 45 examples are three million
rows; a dict per row cost more than writing it). Feature rows stay dicts: their JSON values are
small structures the pages read whole.
"""

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
from app.store.writer import ExampleColumns

ROW_BLOCK = 1024  # features per (feature rows, example rows) chunk


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


def _edges(lo: np.ndarray, hi: np.ndarray, bins: int) -> np.ndarray:
    """``[n, bins + 1]`` equal-width edges from ``lo`` to ``hi`` per row, bit for bit what
    ``np.linspace(lo[i], hi[i], bins + 1)`` gives for each row."""
    edges = np.arange(bins + 1, dtype=np.float64)[None, :] * ((hi - lo) / bins)[:, None] + lo[:, None]
    edges[:, -1] = hi
    return edges


def _example_columns(start: int, stop: int, acc: FeatureAccumulator, intervals: IntervalAccumulator,
                     example_acts: ExampleActs, top_key: torch.Tensor, top_pos: torch.Tensor,
                     sample_key: torch.Tensor, samples: dict) -> ExampleColumns:
    n_feat, k = stop - start, acc.top_k
    n_iv, m = intervals.n_intervals, intervals.m
    block_top = top_key[start:stop]  # [n_feat, K], filled slots first
    block_samples = sample_key[start:stop].reshape(n_feat, n_iv * m)  # [n_feat, n_iv * m], filled slots first
    filled = torch.cat([block_top >= 0, block_samples != INT64_MAX], dim=1).numpy()
    features = np.broadcast_to(np.arange(start, stop)[:, None], filled.shape)
    slot = np.broadcast_to(np.arange(k + n_iv * m)[None, :], filled.shape)
    is_top = slot < k
    interval_slot = np.maximum(slot - k, 0)
    ordinal = torch.cat([key_ordinals(block_top), samples["ordinal"][start:stop].reshape(n_feat, -1)], dim=1)
    value = torch.cat([key_values(block_top), samples["value"][start:stop].reshape(n_feat, -1)], dim=1)
    pos = torch.cat([top_pos[start:stop].long(), samples["pos"][start:stop].reshape(n_feat, -1).long()], dim=1)
    ordinal, value, pos = ordinal.numpy()[filled], value.numpy()[filled], pos.numpy()[filled]
    feature_index = features[filled]
    acts = np.zeros((len(ordinal), example_acts.acts.shape[1]), dtype=np.float16)
    if len(example_acts.acts):
        rows = example_acts.row_of(torch.from_numpy(feature_index), torch.from_numpy(ordinal))
        acts = example_acts.acts[rows].numpy()
    return ExampleColumns(
        feature_index=feature_index, is_top=is_top[filled], bin=np.where(is_top, -1, interval_slot // m)[filled],
        rank=np.where(is_top, slot, interval_slot % m)[filled], ordinal=ordinal, max_value=value, max_pos=pos,
        acts=acts)


def feature_chunks(acc: FeatureAccumulator, intervals: IntervalAccumulator, example_acts: ExampleActs,
                   logits: dict, neighbours: tuple[torch.Tensor, torch.Tensor],
                   token_text: list[str]) -> Iterator[tuple[list[dict], ExampleColumns]]:
    """Yield ``(feature rows, example columns)`` for blocks of :data:`ROW_BLOCK` features."""
    n_valid = max(acc.n_valid_tokens, 1)
    n_iv, hist_bins = intervals.n_intervals, intervals.hist_bins
    top_key, top_pos = acc.top_key.cpu(), acc.top_pos.cpu()
    max_act = acc.max_act.cpu().double().numpy()
    mean_act = acc.mean_act.cpu()
    n_active = acc.n_active.cpu()
    sample_key = intervals.sample_key.cpu().view(acc.d_sae, n_iv, intervals.m)
    samples = {k: v.cpu().view(acc.d_sae, n_iv, intervals.m) for k, v in intervals.samples.items()}
    bin_counts, hist_counts = intervals.bin_counts.cpu(), intervals.hist_counts.cpu()
    neighbour_ids, neighbour_cos = neighbours
    act_edges = _edges(np.zeros_like(max_act), max_act, hist_bins)
    logit_lo, logit_hi = logits["hist_lo"].double().numpy(), logits["hist_hi"].double().numpy()
    logit_edges = _edges(logit_lo, logit_hi, logits["hist_counts"].shape[1])
    iv_lo = max_act[:, None] * np.arange(n_iv)[None, :] / n_iv
    iv_hi = max_act[:, None] * np.arange(1, n_iv + 1)[None, :] / n_iv

    def tokens(ids: list[int], values: list[float]) -> list[dict]:
        return [{"token_id": t, "token": token_text[t] if t < len(token_text) else "", "value": v}
                for t, v in zip(ids, values)]

    for start in range(0, acc.d_sae, ROW_BLOCK):
        stop = min(start + ROW_BLOCK, acc.d_sae)
        block = slice(start, stop)
        columns = {
            "n_active": n_active[block].tolist(), "max": max_act[block].tolist(), "mean": mean_act[block].tolist(),
            "bins": bin_counts[block].tolist(), "hist": hist_counts[block].tolist(),
            "act_edges": act_edges[block].tolist(), "iv_lo": iv_lo[block].tolist(), "iv_hi": iv_hi[block].tolist(),
            "lt_i": logits["top_ids"][block].tolist(), "lt_v": logits["top_values"][block].tolist(),
            "lb_i": logits["bottom_ids"][block].tolist(), "lb_v": logits["bottom_values"][block].tolist(),
            "lh": logits["hist_counts"][block].tolist(), "lh_edges": logit_edges[block].tolist(),
            "nb_i": neighbour_ids[block].tolist(), "nb_c": neighbour_cos[block].tolist(),
        }
        features: list[dict] = []
        for j, index in enumerate(range(start, stop)):
            c = {k: v[j] for k, v in columns.items()}
            active = c["n_active"]
            features.append({
                "index": index, "n_active": active, "density": active / n_valid, "max_act": c["max"],
                "mean_act": c["mean"],
                "act_hist": ({"edges": c["act_edges"], "counts": c["hist"]} if active else {"edges": [], "counts": []}),
                "intervals": [{"lo": lo, "hi": hi, "share": count / active, "count": count}
                              for lo, hi, count in zip(c["iv_lo"], c["iv_hi"], c["bins"])] if active else [],
                "top_logits": tokens(c["lt_i"], c["lt_v"]),
                "bottom_logits": tokens(c["lb_i"], c["lb_v"]),
                "logit_hist": {"edges": c["lh_edges"], "counts": c["lh"]},
                "neighbours": [{"index": i, "cosine": cos} for i, cos in zip(c["nb_i"], c["nb_c"])],
            })
        yield features, _example_columns(start, stop, acc, intervals, example_acts, top_key, top_pos,
                                         sample_key, samples)
