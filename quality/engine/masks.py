"""Mask codecs, and every pycocotools operation the engine uses, on checked masks only.

Segmentations from outside enter through :func:`to_rles`, which checks each one at the gate
(:mod:`quality.engine.gate`) and converts it exactly as ``COCO.annToRLE`` does (pycocotools'
``frPoly``/``merge``, or their compiled port); compressed strings in bulk enter through
:func:`quality.engine.gate.check_strings`. The operations here (boxes, areas, IoU, decode,
merge, run lengths) take only what the gate let through (:class:`CheckedRLE`,
:class:`MaskStrings`) and refuse anything else with ``TypeError``. This is the only module
of the project that imports pycocotools (a test enforces it): nothing reaches its C code
unchecked.

One thing done here that pycocotools does per annotation is batched per image: all polygons
of one image are rasterized in a single ``frPoly`` call, and ``merge`` is skipped for
single-polygon annotations (merging one RLE returns it unchanged).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from pycocotools import _mask

from quality.engine import gate, native
from quality.engine.gate import CheckedRLE, Issue, MaskBounds, MaskStrings

RLE = CheckedRLE


def _coco(rles: Sequence[CheckedRLE]) -> list[dict]:
    """The dicts pycocotools reads, of masks that passed the gate (TypeError otherwise)."""
    out = []
    for r in rles:
        if type(r) is not CheckedRLE:
            raise TypeError(f"expected a CheckedRLE (a mask that passed quality.engine.gate), got {type(r).__name__}")
        out.append({"size": [r.height, r.width], "counts": r.counts})
    return out


def to_rles(
    segmentations: Sequence[Any],
    heights: Sequence[int],
    widths: Sequence[int],
    locations: Sequence[str] | None = None,
    image_keys: Sequence[int] | None = None,
    *,
    bounds: MaskBounds = gate.DEFAULT_BOUNDS,
) -> list[CheckedRLE]:
    """Check COCO segmentations at the gate and convert them to compressed RLE, exactly as
    ``COCO.annToRLE``.

    ``segmentations[i]`` lies on an image of ``heights[i]`` x ``widths[i]``: a polygon list,
    an uncompressed RLE or a compressed RLE. ``image_keys`` (optional) groups items of one
    image so their polygons are rasterized in one call. ``locations[i]`` is item i's JSON
    path. The first item (in order) that breaks a rule raises its :class:`Issue` as
    :class:`EngineInputError`.
    """
    n = len(segmentations)
    loc = (lambda i: locations[i]) if locations is not None else (lambda i: f"segmentation[{i}]")
    hs = np.asarray(heights, dtype=np.int64).reshape(n)
    ws = np.asarray(widths, dtype=np.int64).reshape(n)
    gate.check_dims(hs, ws, loc, bounds, fields=False)
    out: list[CheckedRLE | None] = [None] * n
    todo: Sequence[int] = range(n)
    kernels = native.kernels()
    if kernels is not None and n and bounds.polygon_margin is None and isinstance(segmentations, list):
        # The compiled port of frPoly + merge takes every polygon list the gate would let
        # through (it declines anything else: RLEs, and whatever breaks a rule); what it
        # declines is checked below, which names the error.
        hl, wl = hs.tolist(), ws.tolist()
        todo = []
        for i, s in enumerate(kernels.rasterize(segmentations, hs, ws)):
            if s is None:
                todo.append(i)
            else:
                out[i] = gate.seal_encoded(hl[i], wl[i], s)
    _check_rest(segmentations, todo, hs, ws, loc, bounds)
    poly_items = []
    for i in todo:
        segm = segmentations[i]
        if type(segm) is list:
            poly_items.append(i)
        elif type(segm["counts"]) is list:
            out[i] = gate.seal_encoded(hs[i], ws[i], _mask.frPyObjects(segm, int(hs[i]), int(ws[i]))["counts"])
        else:
            counts = segm["counts"]
            out[i] = gate.seal_encoded(hs[i], ws[i], counts.encode() if type(counts) is str else counts)
    if poly_items:
        _rasterize_polygons(poly_items, segmentations, hs, ws, image_keys, out)
    return out  # type: ignore[return-value]


def _check_rest(segmentations, todo: Sequence[int], hs: np.ndarray, ws: np.ndarray, loc, bounds: MaskBounds) -> None:
    """Raise the first issue (in item order) among ``todo``: compressed strings in bulk (the
    compiled check or its numpy twin), everything else one by one."""
    first: tuple[int, Issue] | None = None
    strings: list[int] = []
    for i in todo:
        segm = segmentations[i]
        h, w = int(hs[i]), int(ws[i])
        if type(segm) is dict and (type(segm.get("counts")) is str or type(segm.get("counts")) is bytes):
            issue = gate.rle_size_issue(segm, h, w, loc(i))
            if issue is None:
                strings.append(i)
                continue
        else:
            issue = gate.segmentation_issue(segm, h, w, loc(i), bounds)
        if issue is not None:
            first = (i, issue)
            break
    if strings:
        parts = [segmentations[i]["counts"] for i in strings]
        parts = [p.encode() if type(p) is str else p for p in parts]
        lens = np.fromiter((len(p) for p in parts), dtype=np.int64, count=len(parts))
        stop = np.cumsum(lens)
        idx = np.asarray(strings, dtype=np.int64)
        v = gate.string_verdicts(b"".join(parts), stop - lens, stop, hs[idx], ws[idx])
        j = v.first_bad()
        if j >= 0 and (first is None or strings[j] < first[0]):
            first = (strings[j], v.issue(j, loc(strings[j])))
    if first is not None:
        raise first[1].error()


def _rasterize_polygons(items: list[int], segmentations, hs: np.ndarray, ws: np.ndarray, image_keys, out: list) -> None:
    """pycocotools' frPoly (one call per image) and merge of checked polygon lists."""
    keys = [image_keys[i] for i in items] if image_keys is not None else [(int(hs[i]), int(ws[i])) for i in items]
    order = sorted(range(len(items)), key=lambda j: keys[j])
    start = 0
    while start < len(order):
        end = start
        k0 = keys[order[start]]
        while end < len(order) and keys[order[end]] == k0:
            end += 1
        group = [items[j] for j in order[start:end]]
        i0 = group[0]
        h, w = int(hs[i0]), int(ws[i0])
        polys: list = []
        for i in group:
            polys.extend(segmentations[i])
        rles = _mask.frPoly(polys, h, w)
        p = 0
        for i in group:
            m = len(segmentations[i])
            r = rles[p] if m == 1 else _mask.merge(rles[p : p + m], 0)
            out[i] = gate.seal_encoded(h, w, r["counts"])
            p += m
        start = end


def compressed_sizes(segmentations: Sequence[Any]) -> np.ndarray | None:
    """int64 [N, 2] sizes when every item is a compressed RLE dict (``counts`` str or bytes,
    ``size`` two integers); None otherwise (then :func:`to_rles` checks item by item)."""
    try:
        counts = [s["counts"] for s in segmentations]
        sizes = [s["size"] for s in segmentations]
    except (TypeError, KeyError, IndexError):
        return None
    if not all(type(s) is dict for s in segmentations) or not all(type(c) is str or type(c) is bytes for c in counts):
        return None
    try:
        hw = np.asarray(sizes)
    except (TypeError, ValueError):
        return None
    if hw.dtype.kind not in "iu" or hw.shape != (len(counts), 2):
        return None
    return hw.astype(np.int64)


def box_polygon(bb: Sequence[float]) -> list[list[float]]:
    """The polygon ``COCO.loadRes`` gives a box-only result (same float arithmetic)."""
    x1, x2, y1, y2 = [bb[0], bb[0] + bb[2], bb[1], bb[1] + bb[3]]
    return [[x1, y1, x1, y2, x2, y2, x2, y1]]


# --------------------------------------------------------------------------------------
# pycocotools' operations, on checked masks


def rle_boxes(rles: Sequence[CheckedRLE]) -> np.ndarray:
    """Boxes [x, y, w, h] (float64 [N, 4]) of masks, as pycocotools' ``rleToBbox``."""
    objs = _coco(rles)
    out = np.zeros((len(objs), 4), dtype=np.float64)
    # in chunks: toBbox decodes all the masks it is given at once (4 bytes per run)
    for s in range(0, len(objs), 4096):
        out[s : s + 4096] = np.asarray(_mask.toBbox(objs[s : s + 4096]), dtype=np.float64).reshape(-1, 4)
    return out


def rle_areas(rles: Sequence[CheckedRLE]) -> np.ndarray:
    """Pixel counts (int64 [N]) of masks."""
    # pycocotools' area() builds a scratch np.array((n,), dtype=uint8), which numpy 2
    # rejects for n >= 256: call it in chunks of 255.
    objs = _coco(rles)
    out = np.zeros(len(objs), dtype=np.int64)
    for s in range(0, len(objs), 255):
        out[s : s + 255] = _mask.area(objs[s : s + 255])
    return out


def boxes_areas(rles: Sequence[CheckedRLE]) -> tuple[np.ndarray, np.ndarray]:
    return rle_boxes(rles), rle_areas(rles)


def area(rle: CheckedRLE) -> int:
    """Pixels of one mask."""
    return int(_mask.area(_coco([rle]))[0])


def iou(a: Sequence[CheckedRLE], b: Sequence[CheckedRLE], crowd: Sequence[int] | np.ndarray | None = None) -> np.ndarray:
    """pycocotools' ``iou`` of every (a, b) pair, float64 [len(a), len(b)]; a crowd ``b``
    (``crowd[j]`` true) divides by the area of ``a`` instead of the union."""
    if not len(a) or not len(b):
        return np.zeros((len(a), len(b)), dtype=np.float64)
    flags = np.zeros(len(b), dtype=np.uint8) if crowd is None else np.asarray(crowd, dtype=np.uint8)
    return np.asarray(_mask.iou(_coco(a), _coco(b), flags), dtype=np.float64).reshape(len(a), len(b))


def decode(rle: CheckedRLE) -> np.ndarray:
    """The binary mask (uint8 [height, width]) of one checked RLE."""
    return np.asarray(_mask.decode(_coco([rle])))[:, :, 0]


def merge(rles: Sequence[CheckedRLE], *, intersect: bool = False) -> CheckedRLE:
    """Union (or intersection) of masks of one size, as pycocotools' ``merge``."""
    objs = _coco(rles)
    sizes = {(o["size"][0], o["size"][1]) for o in objs}
    if len(sizes) != 1:
        raise ValueError("merge takes masks of one size")
    h, w = sizes.pop()
    return gate.seal_encoded(h, w, _mask.merge(objs, int(intersect))["counts"])


def pack_counts(rles: Sequence[CheckedRLE]) -> tuple[bytes, np.ndarray]:
    """Concatenate compressed counts of checked masks: (blob, offsets int64 [N+1])."""
    parts = [r.counts for r in rles if type(r) is CheckedRLE]
    if len(parts) != len(rles):
        _coco(rles)  # names the first item that is not checked
    lens = np.fromiter((len(p) for p in parts), dtype=np.int64, count=len(parts))
    offsets = np.zeros(len(parts) + 1, dtype=np.int64)
    np.cumsum(lens, out=offsets[1:])
    return b"".join(parts), offsets


# --------------------------------------------------------------------------------------
# run lengths (the torch kernel's input)


_RUNS_MADE_HERE = object()


@dataclass(frozen=True)
class Runs:
    """Uncompressed run lengths of checked masks: mask ``i``'s runs (int64, alternating
    background/foreground from background, column-major as COCO) are
    ``counts[offsets[i]:offsets[i+1]]``. Made by :func:`rle_counts` and
    :func:`torch_counts` only."""

    counts: np.ndarray
    offsets: np.ndarray
    _made: object = None

    def __post_init__(self) -> None:
        if self._made is not _RUNS_MADE_HERE:
            raise TypeError("Runs are made by quality.engine.masks from checked masks only")

    def __iter__(self):  # (counts, offsets) = runs
        return iter((self.counts, self.offsets))


def rle_counts(rles: Sequence[CheckedRLE]) -> Runs:
    """The runs of many checked masks at once (vectorized ``rleFrString``)."""
    blob, char_off = pack_counts(rles)
    counts, offsets = _decode_counts_blob(blob, char_off)
    return Runs(counts, offsets, _RUNS_MADE_HERE)


def torch_counts(kernels, m: MaskStrings) -> Runs:
    """The runs of checked strings, decoded by the compiled kernel."""
    if type(m) is not MaskStrings:
        raise TypeError("torch_counts takes MaskStrings (strings that passed quality.engine.gate)")
    runs = np.empty(len(m.start), dtype=np.int64)
    kernels.count_runs(m.blob, m.start, m.stop, m.escaped, runs)
    offsets = np.zeros(len(runs) + 1, dtype=np.int64)
    np.cumsum(runs, out=offsets[1:])
    counts = np.empty(int(offsets[-1]), dtype=np.uint32)
    kernels.decode(m.blob, m.start, m.stop, m.escaped, offsets, counts)
    return Runs(counts.astype(np.int64), offsets, _RUNS_MADE_HERE)


def _decode_counts_blob(blob: bytes, char_off: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    n = len(char_off) - 1
    c = np.frombuffer(blob, dtype=np.uint8).astype(np.int64) - 48
    if c.size == 0:
        return np.zeros(0, dtype=np.int64), np.zeros(n + 1, dtype=np.int64)
    more = (c & 0x20) != 0
    # a value ends at a char without the continuation bit
    ends = np.flatnonzero(~more)
    starts = np.concatenate(([0], ends[:-1] + 1))
    # chunk position inside its value
    pos = np.arange(c.size) - np.repeat(starts, ends - starts + 1)
    vals = np.add.reduceat((c & 0x1F) << (5 * pos), starts) if c.size else c
    last = c[ends]
    nchunks = ends - starts + 1
    neg = (last & 0x10) != 0
    vals = np.where(neg, vals | (-1 << (5 * nchunks)), vals)
    # values per mask
    vend = np.searchsorted(ends, char_off[1:] - 1, side="right")
    voff = np.concatenate(([0], vend)).astype(np.int64)
    # delta coding: x[i] += x[i-2] for i > 2 within each mask -> cumulative sums per parity
    counts = vals.copy()
    local = np.arange(vals.size) - np.repeat(voff[:-1], np.diff(voff))
    mask_id = np.repeat(np.arange(n), np.diff(voff))
    delta = local > 2
    if delta.any():
        # group: (mask, parity) with elements local >= 1 (index 1 or 2 starts each chain)
        for parity in (0, 1):
            sel = (local >= 1) & ((local % 2) == parity)
            idx = np.flatnonzero(sel)
            if idx.size == 0:
                continue
            v = vals[idx]
            grp = mask_id[idx]
            cs = np.cumsum(v)
            first = np.concatenate(([True], grp[1:] != grp[:-1]))
            base = np.maximum.accumulate(np.where(first, np.arange(idx.size), 0))
            offs = (cs - v)[base]
            counts[idx] = cs - offs
    return counts, voff
