"""Per-feature tables computed from the weights alone, blockwise over features.

Logit effects: ``W_dec[i] @ W_U'`` where ``W_U'`` is the unembedding with the final norm's
elementwise weight (LayerNorm / RMSNorm ``weight``) folded in, ``diag(w) @ W_U``. The norm's
centering and per-token scale are ignored (they depend on the whole residual, not on the
direction), and so is its bias (the same for every feature): the usual "direct logit
attribution" convention. Values are therefore comparable across features, not absolute logits.

Neighbours: the features whose decoder rows have the highest cosine with ``W_dec[i]``, computed
``block × d_sae`` at a time, so no ``d_sae × d_sae`` matrix is ever held.

Both keep a few largest (or smallest) values of long rows. ``torch.topk`` over 65k-wide rows
cost more than the matmul, so :func:`row_top` first bounds the answer with segment maxima (the
n-th largest of the segments' maxima is at most the n-th largest value) and sorts only the
values at or above that bound: exact, ties ordered by index.
"""

from __future__ import annotations

import numpy as np
import torch

_BLOCK_ELEMENTS = 1 << 22  # ~16 MB of float32 per logit block: stays in cache between the matmul and the scans
_NEIGHBOUR_BLOCK_ELEMENTS = 1 << 25  # cosines per block: fewer, larger reductions (measured faster at 65k)
_SEGMENT = 64  # values per segment of row_top's bound


def folded_unembedding(lm) -> torch.Tensor:
    """``W_U' : float32 [d_model, d_vocab]`` (final norm weight folded in, see module docstring)."""
    from app.ml import unembed

    norm, w_u = unembed(lm)
    w_u = w_u.float()
    weight = getattr(norm, "weight", None) if norm is not None else None
    if isinstance(weight, torch.Tensor) and weight.shape == (w_u.shape[0],):
        w_u = weight.detach().float().unsqueeze(1) * w_u
    return w_u


def _block_rows(d_sae: int, width: int, elements: int = _BLOCK_ELEMENTS) -> int:
    return max(1, min(d_sae, elements // max(width, 1)))


def row_top(values: torch.Tensor, n: int, largest: bool = True) -> tuple[torch.Tensor, torch.Tensor]:
    """``values: float32 [rows, width]`` → ``(values, indices) [rows, n]`` of each row's ``n``
    largest (or smallest) entries, best first, ties by lower index. Exact."""
    rows, width = values.shape
    signed = values if largest else -values
    if width < 4 * n * _SEGMENT or values.device.type != "cpu":
        indices = signed.sort(dim=1, descending=True, stable=True).indices[:, :n]  # short rows or GPU
    else:
        mask = (signed >= _segment_bound(signed, n)).numpy()
        cand_row, cand_col = np.divmod(np.flatnonzero(mask), width)
        indices = torch.from_numpy(_best_per_row(cand_row, cand_col, signed.numpy()[cand_row, cand_col], rows, n))
    return values.gather(1, indices.to(values.device)), indices.to(values.device)


def _segment_bound(values: torch.Tensor, n: int) -> torch.Tensor:
    """``[rows, 1]``: the n-th largest of each row's segment maxima, at most its n-th largest value."""
    rows, width = values.shape
    full = width // _SEGMENT * _SEGMENT
    segment_max = values[:, :full].reshape(rows, -1, _SEGMENT).amax(dim=2)
    if full < width:
        segment_max = torch.cat([segment_max, values[:, full:].amax(dim=1, keepdim=True)], dim=1)
    return segment_max.topk(n, dim=1).values[:, -1:].float()


def _best_per_row(cand_row: np.ndarray, cand_col: np.ndarray, cand_val: np.ndarray, rows: int, n: int) -> np.ndarray:
    """Candidates in row-major order (at least ``n`` per row) → ``int64 [rows, n]`` columns of
    each row's ``n`` largest values, ties by lower column (the stable sorts keep column order)."""
    order = np.argsort(-cand_val, kind="stable")
    order = order[np.argsort(cand_row[order], kind="stable")]
    starts = np.concatenate([[0], np.cumsum(np.bincount(cand_row, minlength=rows))[:-1]])
    return cand_col[order[(starts[:, None] + np.arange(n)[None, :]).reshape(-1)]].reshape(rows, n)


def logit_tables(w_dec: torch.Tensor, w_u: torch.Tensor, n_top: int = 10, hist_bins: int = 50) -> dict:
    """``w_dec [d_sae, d_model]``, ``w_u [d_model, d_vocab]`` → dict of tensors:
    ``top_ids/top_values [d_sae, n]`` (largest first), ``bottom_ids/bottom_values`` (smallest
    first), ``hist_counts int64 [d_sae, bins]`` over each row's logit effects with
    ``hist_lo/hist_hi [d_sae]`` (its min and max)."""
    d_sae, d_vocab = w_dec.shape[0], w_u.shape[1]
    n = min(n_top, d_vocab)
    w_dec, w_u = w_dec.float(), w_u.to(w_dec.device).float()
    out = {name: [] for name in ("top_ids", "top_values", "bottom_ids", "bottom_values",
                                 "hist_counts", "hist_lo", "hist_hi")}
    step = _block_rows(d_sae, d_vocab)
    for start in range(0, d_sae, step):
        effects = w_dec[start:start + step] @ w_u  # [block, d_vocab]
        top_values, top_ids = row_top(effects, n)
        bottom_values, bottom_ids = row_top(effects, n, largest=False)
        lo, hi = effects.amin(dim=1), effects.amax(dim=1)
        width = (hi - lo).clamp(min=1e-12)
        bins = effects.sub_(lo[:, None]).div_(width[:, None]).mul_(hist_bins).floor_().clamp_(0, hist_bins - 1)
        counts = torch.zeros((effects.shape[0], hist_bins), dtype=torch.int64, device=effects.device)
        counts.scatter_add_(1, bins.long(), torch.ones(1, dtype=torch.int64, device=effects.device).expand(bins.shape))
        for name, value in (("top_ids", top_ids), ("top_values", top_values), ("bottom_ids", bottom_ids),
                            ("bottom_values", bottom_values), ("hist_counts", counts), ("hist_lo", lo),
                            ("hist_hi", hi)):
            out[name].append(value.cpu())
    return {name: torch.cat(parts) for name, parts in out.items()}


def _bf16_screening(device: torch.device) -> bool:
    """bf16 matmul with fp32 accumulation is native here (AVX512-BF16 / AMX), so screening pays."""
    return device.type == "cpu" and bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())


# |bf16 cosine - fp32 cosine| of unit vectors: inputs rounded to bf16 (2 × 2^-8 relative per product,
# summing to at most 2^-7 since sum |u_i v_i| <= 1), fp32 accumulation (~128 × 2^-24), output rounded
# to bf16 (2^-8): below 0.012. Screening keeps every value within twice this bound of the n-th best.
SCREEN_ERROR = 1 / 64


def decoder_neighbours(w_dec: torch.Tensor, n_neighbours: int = 10) -> tuple[torch.Tensor, torch.Tensor]:
    """``w_dec [d_sae, d_in]`` → (indices int64 [d_sae, n], cosines float32 [d_sae, n]), nearest
    first (ties by index), a feature never its own neighbour; computed in row blocks.

    The ``d_sae²`` cosines are the cost (65k features: 1.1 TFLOP). On CPUs with native bf16
    they are screened in bf16 (2.4× the fp32 matmul's speed on this machine); every cosine within
    ``2 × SCREEN_ERROR`` of a row's n-th best screened value is then recomputed in fp32 and the
    answer taken from those, which is exact: a true top-n cosine never screens below that line.
    """
    d_sae = w_dec.shape[0]
    n = min(n_neighbours, d_sae - 1)
    unit = torch.nn.functional.normalize(w_dec.float(), dim=1)
    screen = _bf16_screening(unit.device) and d_sae >= 4 * n * _SEGMENT
    unit_t = (unit.bfloat16() if screen else unit).T.contiguous()
    step = _block_rows(d_sae, d_sae, _NEIGHBOUR_BLOCK_ELEMENTS)
    buffer = torch.empty((step, d_sae), dtype=unit_t.dtype, device=unit.device)  # reused: no page faults
    screened = torch.empty((step, d_sae), dtype=torch.float32, device=unit.device) if screen else None
    indices, cosines = [], []
    for start in range(0, d_sae, step):
        block = unit[start:start + step]
        sims = torch.mm(block.to(unit_t.dtype), unit_t, out=buffer[:block.shape[0]])  # [block, d_sae]
        rows = torch.arange(sims.shape[0], device=sims.device)
        sims[rows, rows + start] = -float("inf")
        if not screen:
            values, index = row_top(sims, n)
        else:
            sims = screened[:len(rows)].copy_(sims)  # bf16 reductions and compares are slow on CPU
            mask = (sims >= _segment_bound(sims, n) - 2 * SCREEN_ERROR).numpy()
            cand_row, cand_col = np.divmod(np.flatnonzero(mask), d_sae)
            exact = (unit[start + torch.from_numpy(cand_row)] * unit[torch.from_numpy(cand_col)]).sum(dim=1)
            index = torch.from_numpy(_best_per_row(cand_row, cand_col, exact.numpy(), len(rows), n))
            values = (block.unsqueeze(1) * unit[index]).sum(dim=2)
        indices.append(index.cpu())
        cosines.append(values.cpu())
    return torch.cat(indices), torch.cat(cosines)


def decoder_map(w_dec: torch.Tensor, seed: int = 0) -> tuple[str, np.ndarray]:
    """``w_dec [d_sae, d_in]`` → ``(method, xy float32 [d_sae, 2])``: a 2-D layout of the unit decoder directions.
    UMAP (cosine metric) when ``umap-learn`` is installed (the ``map`` extra), else PCA: the two leading
    eigenvectors of the ``d_in × d_in`` covariance (cheap at any d_sae), each signed so its largest entry is
    positive, so the layout is reproducible."""
    unit = torch.nn.functional.normalize(w_dec.detach().double().cpu(), dim=1)
    try:
        import umap  # noqa: F401 - optional extra
    except ImportError:
        umap = None
    if umap is not None and unit.shape[0] >= 16:
        layout = umap.UMAP(n_components=2, metric="cosine", random_state=seed).fit_transform(unit.numpy())
        return "umap", np.asarray(layout, dtype=np.float32)
    centred = unit - unit.mean(dim=0, keepdim=True)
    _, vectors = torch.linalg.eigh(centred.T @ centred)
    top = vectors[:, -2:].flip(1)  # eigh sorts ascending
    top = top * torch.sign(top.gather(0, top.abs().argmax(dim=0, keepdim=True)))
    return "pca", (centred @ top).float().numpy()
