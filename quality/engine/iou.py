"""IoU kernels, exact to the bit against pycocotools' ``bbIou``/``rleIou``.

Pairs are given as flat index arrays (detection ``pd``, reference ``pg``) so callers visit
only candidate pairs (same image, same category, overlapping boxes). Three kernels:

- :func:`box_iou_pairs`: ``bbIou`` vectorized with the same float64 operations in the same
  order, so results are identical.
- :func:`mask_iou_cells_cpu`: pycocotools' C ``rleIou`` per (image, category) cell.
- :func:`mask_iou_pairs_torch`: run-length intersection in torch (CPU or CUDA tensors).
  Intersections and unions are exact int64 counts; only the final division is float64,
  as in the C code (``(double)i / (double)u``), so every device gives identical values.

Crowd references use intersection / area(detection), as pycocotools.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from quality.engine import masks
from quality.engine.masks import CheckedRLE, Runs


def box_overlap(db: np.ndarray, gb: np.ndarray) -> np.ndarray:
    """True where boxes (``[P, 4]`` xywh pairs) overlap with positive area (``bbIou > 0``)."""
    w = np.fmin(db[:, 2] + db[:, 0], gb[:, 2] + gb[:, 0]) - np.fmax(db[:, 0], gb[:, 0])
    h = np.fmin(db[:, 3] + db[:, 1], gb[:, 3] + gb[:, 1]) - np.fmax(db[:, 1], gb[:, 1])
    return (w > 0) & (h > 0)


def box_iou_pairs(db: np.ndarray, gb: np.ndarray, crowd: np.ndarray) -> np.ndarray:
    """``bbIou`` for pairs: ``db``/``gb`` float64 [P, 4] xywh, ``crowd`` bool [P] (of the ref)."""
    ga = gb[:, 2] * gb[:, 3]
    da = db[:, 2] * db[:, 3]
    w = np.fmin(db[:, 2] + db[:, 0], gb[:, 2] + gb[:, 0]) - np.fmax(db[:, 0], gb[:, 0])
    h = np.fmin(db[:, 3] + db[:, 1], gb[:, 3] + gb[:, 1]) - np.fmax(db[:, 1], gb[:, 1])
    ok = (w > 0) & (h > 0)
    i = w * h
    u = np.where(crowd, da, da + ga - i)
    out = np.zeros(len(db), dtype=np.float64)
    np.divide(i, u, out=out, where=ok)
    return out


def mask_iou_cells_cpu(
    dt_rles: Sequence[CheckedRLE],
    gt_rles: Sequence[CheckedRLE],
    gt_crowd: np.ndarray,
    cell_d: list[tuple[int, int]],
    cell_g: list[tuple[int, int]],
    pd: np.ndarray,
    pg: np.ndarray,
    pair_cell_bounds: np.ndarray,
) -> np.ndarray:
    """IoU of candidate pairs with pycocotools' C ``rleIou``, one call per group (cell or image).

    ``cell_d[c]``/``cell_g[c]`` are (start, stop) ranges of the group's detections/references
    in ``dt_rles``/``gt_rles``; the pairs of group ``c`` are
    ``pd/pg[pair_cell_bounds[c]:pair_cell_bounds[c+1]]`` (global indices).
    """
    out = np.zeros(len(pd), dtype=np.float64)
    crowd_u8 = gt_crowd.astype(np.uint8)
    bounds = pair_cell_bounds.tolist()
    for c in range(len(cell_d)):
        p0, p1 = bounds[c], bounds[c + 1]
        if p0 == p1:
            continue
        d0, d1 = cell_d[c]
        g0, g1 = cell_g[c]
        m = masks.iou(dt_rles[d0:d1], gt_rles[g0:g1], crowd_u8[g0:g1])
        out[p0:p1] = m[pd[p0:p1] - d0, pg[p0:p1] - g0]
    return out


def _foreground_intervals(counts: np.ndarray, offsets: np.ndarray):
    """Per mask: starts/ends of foreground runs (odd runs) and their index ranges."""
    n = len(offsets) - 1
    ends = np.cumsum(counts)
    # restart the cumulative sum per mask
    seg_start = offsets[:-1]
    base = np.zeros(n, dtype=np.int64)
    nonempty = offsets[1:] > seg_start
    base[nonempty] = ends[seg_start[nonempty]] - counts[seg_start[nonempty]]
    mask_of = np.repeat(np.arange(n), np.diff(offsets))
    pos_end = ends - base[mask_of]
    local = np.arange(len(counts)) - np.repeat(seg_start, np.diff(offsets))
    fg = (local % 2 == 1) & (counts > 0)
    fe = pos_end[fg]
    fs = fe - counts[fg]
    fmask = mask_of[fg]
    foff = np.zeros(n + 1, dtype=np.int64)
    np.cumsum(np.bincount(fmask, minlength=n), out=foff[1:])
    return fs, fe, foff


def mask_iou_pairs_torch(
    dt_counts: Runs,
    gt_counts: Runs,
    dt_area: np.ndarray,
    gt_area: np.ndarray,
    gt_crowd: np.ndarray,
    pd: np.ndarray,
    pg: np.ndarray,
    device: str = "cpu",
    chunk: int = 1 << 22,
) -> np.ndarray:
    """IoU of mask pairs by run-length intersection in torch, exact integer arithmetic.

    ``dt_counts``/``gt_counts`` are the :class:`~quality.engine.masks.Runs` of checked masks
    (:func:`~quality.engine.masks.rle_counts`, :func:`~quality.engine.masks.torch_counts`);
    ``dt_area``/``gt_area`` the masks' pixel
    counts. |A ∩ B| = sum over A's foreground runs [s, e) of F_B(e) - F_B(s), where F_B(x)
    counts B's foreground pixels before x (a searchsorted over B's runs).
    """
    import torch

    if type(dt_counts) is not Runs or type(gt_counts) is not Runs:
        raise TypeError("mask_iou_pairs_torch takes the Runs of checked masks")
    dfs, dfe, dfo = _foreground_intervals(*dt_counts)
    gfs, gfe, gfo = _foreground_intervals(*gt_counts)
    out = np.zeros(len(pd), dtype=np.float64)
    if len(pd) == 0:
        return out
    dev = torch.device(device)
    t_dfs = torch.from_numpy(dfs).to(dev)
    t_dfe = torch.from_numpy(dfe).to(dev)
    t_gfs = torch.from_numpy(gfs).to(dev)
    t_gfe = torch.from_numpy(gfe).to(dev)
    glen = gfe - gfs
    gprefix = np.zeros(len(glen) + 1, dtype=np.int64)
    np.cumsum(glen, out=gprefix[1:])
    t_gprefix = torch.from_numpy(gprefix).to(dev)
    span = int(max(dfe.max(initial=0), gfe.max(initial=0))) + 1
    inter = np.zeros(len(pd), dtype=np.int64)
    # process pairs in chunks bounded by the number of runs touched
    nd = (dfo[pd + 1] - dfo[pd]).astype(np.int64)
    ng = (gfo[pg + 1] - gfo[pg]).astype(np.int64)
    work = np.cumsum(nd + ng)
    start = 0
    while start < len(pd):
        stop = int(np.searchsorted(work, (work[start - 1] if start else 0) + chunk, side="right"))
        stop = max(stop, start + 1)
        sl = slice(start, stop)
        P = stop - start
        cnd = torch.from_numpy(nd[sl]).to(dev)
        cng = torch.from_numpy(ng[sl]).to(dev)
        pid = torch.arange(P, device=dev, dtype=torch.int64)
        # B (reference) runs of every pair, shifted into disjoint coordinate ranges
        g_pair = torch.repeat_interleave(pid, cng)
        g_first = torch.from_numpy(gfo[pg[sl]]).to(dev)
        g_local = torch.arange(int(cng.sum()), device=dev) - torch.repeat_interleave(
            torch.cumsum(cng, 0) - cng, cng
        )
        g_idx = g_first[g_pair] + g_local
        shift_g = g_pair * span
        b_s = t_gfs[g_idx] + shift_g
        b_e = t_gfe[g_idx] + shift_g
        b_pre = t_gprefix[g_idx] - t_gprefix[g_first[g_pair]]
        # A (detection) runs of every pair
        d_pair = torch.repeat_interleave(pid, cnd)
        d_first = torch.from_numpy(dfo[pd[sl]]).to(dev)
        d_local = torch.arange(int(cnd.sum()), device=dev) - torch.repeat_interleave(
            torch.cumsum(cnd, 0) - cnd, cnd
        )
        d_idx = d_first[d_pair] + d_local
        shift_d = d_pair * span
        a_s = t_dfs[d_idx] + shift_d
        a_e = t_dfe[d_idx] + shift_d

        def cover(x: torch.Tensor, pair: torch.Tensor) -> torch.Tensor:
            k = torch.searchsorted(b_s, x, right=True) - 1
            kc = k.clamp(min=0)
            valid = (k >= 0) & (g_pair[kc] == pair) if len(b_s) else torch.zeros_like(x, dtype=torch.bool)
            if len(b_s) == 0:
                return torch.zeros_like(x)
            inside = torch.minimum(x - b_s[kc], b_e[kc] - b_s[kc])
            return torch.where(valid, b_pre[kc] + inside, torch.zeros_like(x))

        contrib = cover(a_e, d_pair) - cover(a_s, d_pair)
        acc = torch.zeros(P, dtype=torch.int64, device=dev)
        acc.index_add_(0, d_pair, contrib)
        inter[sl] = acc.cpu().numpy()
        start = stop
    da = dt_area[pd].astype(np.int64)
    ga = gt_area[pg].astype(np.int64)
    union = np.where(gt_crowd[pg], da, da + ga - inter)
    union = np.where(inter == 0, 1, union)
    np.divide(inter.astype(np.float64), union.astype(np.float64), out=out)
    return out


def resolve_device(device: str) -> str:
    """'auto' -> 'cuda' when torch sees a GPU, else 'cpu'. 'cpu' never imports torch."""
    if device == "auto":
        try:
            import torch

            return "cuda" if torch.cuda.is_available() else "cpu"
        except ImportError:
            return "cpu"
    if device not in ("cpu", "cuda", "torch-cpu"):
        from quality.engine.errors import EngineInputError

        raise EngineInputError("bad_device", f"unknown device {device!r} (auto, cpu, cuda)")
    return device
