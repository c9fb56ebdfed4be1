"""Mask codecs: COCO polygons, compressed and uncompressed RLE, boxes.

Every conversion goes through pycocotools' C code (``frPoly``/``frBbox``/``merge``) so that
masks are bit-identical to what ``COCO.annToRLE`` produces. The one thing done here that
pycocotools does per annotation is batched per image: all polygons of one image are
rasterized in a single ``frPoly`` call, and ``merge`` is skipped for single-polygon
annotations (merging one RLE returns it unchanged).

Masks travel as compressed RLE dicts ``{"size": [h, w], "counts": bytes}`` (the form
``pycocotools._mask.iou`` reads). :func:`rle_counts` decodes the compressed strings of many
masks at once (vectorized) into uncompressed run lengths for the torch kernel.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence
from dataclasses import dataclass
from numbers import Real
from typing import Any

import numpy as np
from pycocotools import _mask

from quality.engine import native
from quality.engine.errors import EngineInputError

RLE = dict  # {"size": [h, w], "counts": bytes}

# Polygon coordinates beyond this many pixels are bad input: pycocotools' rasterizer walks
# every (5x upsampled) boundary point and its int arithmetic overflows far before 2^31 / 5.
MAX_COORDINATE = 1e6


def _is_number(x: Any) -> bool:
    return isinstance(x, Real) and not isinstance(x, bool)


def _check_polygons(segm: list, where: str) -> bool:
    """Validate one polygon-list segmentation; True when it is in box mode (4 numbers)."""
    if len(segm) == 0:
        raise EngineInputError("malformed_polygon", "empty polygon list", location=where)
    box_mode = isinstance(segm[0], list) and len(segm[0]) == 4
    for j, poly in enumerate(segm):
        if not isinstance(poly, list):
            raise EngineInputError(
                "malformed_polygon", "a polygon must be a list of numbers", location=f"{where}[{j}]"
            )
        n = len(poly)
        if box_mode and n != 4:
            raise EngineInputError(
                "malformed_polygon",
                "the first polygon has 4 numbers (read as a box), so all must",
                location=f"{where}[{j}]",
            )
        if n < 4 or n % 2:
            raise EngineInputError(
                "malformed_polygon",
                f"a polygon needs an even number (>= 6) of coordinates, got {n}",
                location=f"{where}[{j}]",
            )
        for v in poly:
            if not _is_number(v):
                raise EngineInputError(
                    "malformed_polygon", f"coordinate {v!r} is not a number", location=f"{where}[{j}]"
                )
            if not math.isfinite(v):
                raise EngineInputError("non_finite", "coordinate is not finite", location=f"{where}[{j}]")
            if abs(v) > MAX_COORDINATE:
                raise EngineInputError(
                    "coordinate_out_of_range", f"coordinate {v!r} is beyond ±{MAX_COORDINATE:g} pixels", location=f"{where}[{j}]"
                )
    return box_mode


def _check_rle(segm: dict, h: int, w: int, where: str) -> None:
    size = segm.get("size")
    counts = segm.get("counts")
    if not isinstance(size, (list, tuple)) or len(size) != 2 or counts is None:
        raise EngineInputError("malformed_rle", "RLE needs 'size' [h, w] and 'counts'", location=where)
    if int(size[0]) != h or int(size[1]) != w:
        raise EngineInputError(
            "rle_size_mismatch",
            f"RLE size {list(size)} does not match the image's [height, width] [{h}, {w}]",
            location=where,
        )
    if isinstance(counts, list):
        if not all(isinstance(c, int) and not isinstance(c, bool) and c >= 0 for c in counts):
            raise EngineInputError(
                "malformed_rle", "uncompressed RLE counts must be non-negative integers", location=where
            )
        if sum(counts) != h * w:
            raise EngineInputError(
                "rle_size_mismatch",
                f"RLE counts cover {sum(counts)} pixels, the image has {h * w}",
                location=where,
            )
    elif not isinstance(counts, (str, bytes)):
        raise EngineInputError("malformed_rle", "RLE counts must be a string or a list", location=where)


def to_rles(
    segmentations: Sequence[Any],
    heights: Sequence[int],
    widths: Sequence[int],
    locations: Sequence[str] | None = None,
    image_keys: Sequence[int] | None = None,
) -> list[RLE]:
    """Convert COCO segmentations to compressed RLE dicts, exactly as ``COCO.annToRLE``.

    ``segmentations[i]`` is rasterized at ``heights[i] x widths[i]``: a polygon list (a
    first polygon of 4 numbers makes the whole list boxes, as pycocotools reads it), an
    uncompressed RLE (``counts`` a list) or a compressed RLE (returned with bytes counts).
    ``image_keys`` (optional) groups items of one image so their polygons are rasterized in
    one C call. ``locations[i]`` names the item in error messages. Raises
    :class:`EngineInputError` on malformed input.
    """
    n = len(segmentations)
    out: list[RLE | None] = [None] * n
    loc = (lambda i: locations[i]) if locations is not None else (lambda i: f"segmentation[{i}]")
    poly_items: list[int] = []
    todo: Sequence[int] = range(n)
    kernels = native.kernels()
    if kernels is not None and n and isinstance(segmentations, list):
        # The compiled port of frPoly + merge takes every plain polygon list in one call;
        # what it declines (RLEs, box mode, anything malformed) goes down the loop below.
        hs = np.asarray(heights, dtype=np.int64)
        ws = np.asarray(widths, dtype=np.int64)
        if hs.shape == ws.shape == (n,):
            hl, wl = hs.tolist(), ws.tolist()
            todo = []
            for i, s in enumerate(kernels.rasterize(segmentations, hs, ws)):
                if s is None:
                    todo.append(i)
                else:
                    out[i] = {"size": [hl[i], wl[i]], "counts": s}
    for i in todo:
        segm = segmentations[i]
        h = int(heights[i])
        w = int(widths[i])
        if isinstance(segm, list):
            if _fast_polygon_ok(segm):
                poly_items.append(i)
                continue
            if _check_polygons(segm, loc(i)):
                # box mode: frPyObjects would route a list to frBbox, which (2.0.11) only
                # takes an ndarray; rleFrBbox rasterizes the box's corner polygon.
                out[i] = _mask.merge(_mask.frBbox(np.asarray(segm, dtype=np.float64), h, w))
            else:
                poly_items.append(i)
        elif isinstance(segm, dict):
            _check_rle(segm, h, w, loc(i))
            counts = segm["counts"]
            if isinstance(counts, list):
                out[i] = _mask.frPyObjects(segm, h, w)
            else:
                out[i] = {"size": [h, w], "counts": counts.encode() if isinstance(counts, str) else counts}
        else:
            raise EngineInputError(
                "malformed_segmentation", "segmentation must be a polygon list or an RLE", location=loc(i)
            )
    if poly_items:
        _rasterize_polygons(poly_items, segmentations, heights, widths, image_keys, out, loc)
    return out  # type: ignore[return-value]


def _fast_polygon_ok(segm: list) -> bool:
    """Cheap structural check for the common case; full validation happens in bulk."""
    first = segm[0] if segm else None
    return isinstance(first, list) and len(first) > 4


def _rasterize_polygons(items, segmentations, heights, widths, image_keys, out, loc) -> None:
    kernels = native.kernels()
    if kernels is not None:
        # The compiled port of frPoly + merge takes every plain polygon list at once; what it
        # declines (box mode, anything malformed) goes down the checked path below.
        hs = np.fromiter((int(heights[i]) for i in items), dtype=np.int64, count=len(items))
        ws = np.fromiter((int(widths[i]) for i in items), dtype=np.int64, count=len(items))
        strings = kernels.rasterize([segmentations[i] for i in items], hs, ws)
        rest = []
        for i, s, h, w in zip(items, strings, hs.tolist(), ws.tolist()):
            if s is None:
                rest.append(i)
            else:
                out[i] = {"size": [h, w], "counts": s}
        if not rest:
            return
        items = rest
    # Validate all coordinates in bulk (finite numbers, even lengths >= 4); fall back to the
    # per-item checker for a precise message.
    polys_per_item = [segmentations[i] for i in items]
    try:
        lens = np.fromiter(
            (len(p) for s in polys_per_item for p in s), dtype=np.int64
        )
        flat = np.fromiter(
            itertools.chain.from_iterable(itertools.chain.from_iterable(polys_per_item)),
            dtype=np.float64,
            count=int(lens.sum()),
        )
        ok = bool((np.abs(flat) <= MAX_COORDINATE).all()) and bool(((lens >= 4) & (lens % 2 == 0)).all())
    except (TypeError, ValueError):
        ok = False
    if not ok:
        for i in items:
            _check_polygons(segmentations[i], loc(i))
        raise EngineInputError("malformed_polygon", "polygon rejected", location=loc(items[0]))
    for i in items:  # nested non-lists would have failed fromiter; check the structure quickly
        if not all(isinstance(p, list) for p in segmentations[i]):
            _check_polygons(segmentations[i], loc(i))
    # Group by image (or by (h, w) run when no keys are given) and rasterize per group.
    keys = image_keys if image_keys is not None else [(int(heights[i]), int(widths[i])) for i in items]
    if image_keys is not None:
        keys = [image_keys[i] for i in items]
    order = sorted(range(len(items)), key=lambda j: keys[j]) if keys else []
    start = 0
    while start < len(order):
        end = start
        k0 = keys[order[start]]
        while end < len(order) and keys[order[end]] == k0:
            end += 1
        group = [items[j] for j in order[start:end]]
        i0 = group[0]
        h, w = int(heights[i0]), int(widths[i0])
        polys: list = []
        for i in group:
            polys.extend(segmentations[i])
        rles = _mask.frPoly(polys, h, w)
        p = 0
        for i in group:
            m = len(segmentations[i])
            out[i] = rles[p] if m == 1 else _mask.merge(rles[p : p + m], 0)
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
    if not all(type(c) is str or type(c) is bytes for c in counts):
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


def rle_boxes(rles: Sequence[RLE]) -> np.ndarray:
    """Boxes [x, y, w, h] (float64 [N, 4]) of masks, as pycocotools' ``rleToBbox``."""
    rles = list(rles)
    out = np.zeros((len(rles), 4), dtype=np.float64)
    # in chunks: toBbox decodes all the masks it is given at once (4 bytes per run)
    for s in range(0, len(rles), 4096):
        out[s : s + 4096] = np.asarray(_mask.toBbox(rles[s : s + 4096]), dtype=np.float64).reshape(-1, 4)
    return out


def rle_areas(rles: Sequence[RLE]) -> np.ndarray:
    """Pixel counts (int64 [N]) of masks."""
    # pycocotools' area() builds a scratch np.array((n,), dtype=uint8), which numpy 2
    # rejects for n >= 256: call it in chunks of 255.
    rles = list(rles)
    out = np.zeros(len(rles), dtype=np.int64)
    for s in range(0, len(rles), 255):
        out[s : s + 255] = _mask.area(rles[s : s + 255])
    return out


def pack_counts(rles: Sequence[RLE]) -> tuple[bytes, np.ndarray]:
    """Concatenate compressed counts: (blob, offsets int64 [N+1])."""
    parts = [r["counts"] if isinstance(r["counts"], bytes) else r["counts"].encode() for r in rles]
    lens = np.fromiter((len(p) for p in parts), dtype=np.int64, count=len(parts))
    offsets = np.zeros(len(parts) + 1, dtype=np.int64)
    np.cumsum(lens, out=offsets[1:])
    return b"".join(parts), offsets


def unpack_counts(blob: bytes, offsets: np.ndarray, heights, widths, index=None) -> list[RLE]:
    """Inverse of :func:`pack_counts` for the items in ``index`` (all when None)."""
    idx = range(len(offsets) - 1) if index is None else index
    o = offsets.tolist()
    hs = heights.tolist() if hasattr(heights, "tolist") else heights
    ws = widths.tolist() if hasattr(widths, "tolist") else widths
    return [{"size": [hs[i], ws[i]], "counts": blob[o[i] : o[i + 1]]} for i in idx]


def rle_counts(rles: Sequence[RLE]) -> tuple[np.ndarray, np.ndarray]:
    """Decode compressed RLE strings of many masks at once.

    Returns ``(counts, offsets)``: uncompressed run lengths (int64, runs alternate
    background/foreground, starting with background, column-major as COCO) of mask ``i``
    in ``counts[offsets[i]:offsets[i+1]]``. Vectorized equivalent of ``rleFrString``.
    """
    blob, char_off = pack_counts(rles)
    return decode_counts_blob(blob, char_off)


def decode_counts_blob(blob: bytes, char_off: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
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


# --------------------------------------------------------------------------------------
# Compressed strings in bulk (compiled kernels)


@dataclass
class MaskStrings:
    """Many masks as compressed RLE strings lying in one buffer, with boxes and areas.

    Mask ``i`` is ``blob[start[i]:stop[i]]``; ``escaped`` when those bytes are a JSON
    string's content as it lies in a results file (``\\`` for a backslash). ``box`` is
    pycocotools' ``toBbox``, ``area`` its ``area``, ``covered`` the sum of the runs (``h * w``
    for a well-formed mask, -1 when the string ends inside a value).
    """

    blob: bytes
    start: np.ndarray
    stop: np.ndarray
    escaped: bool
    area: np.ndarray
    box: np.ndarray
    covered: np.ndarray | None = None  # None: known to be well formed (a reference cache)

    def take(self, index: np.ndarray) -> MaskStrings:
        covered = None if self.covered is None else self.covered[index]
        return MaskStrings(self.blob, self.start[index], self.stop[index], self.escaped, self.area[index], self.box[index], covered)


def mask_strings(kernels, blob: bytes, start: np.ndarray, stop: np.ndarray, escaped: bool, heights, widths) -> MaskStrings:
    """Boxes, areas and coverage of compressed strings in one C pass (the runs are not kept)."""
    start = np.ascontiguousarray(start, dtype=np.int64)
    stop = np.ascontiguousarray(stop, dtype=np.int64)
    n = len(start)
    area = np.empty(n, dtype=np.int64)
    box = np.empty((n, 4), dtype=np.float64)
    covered = np.empty(n, dtype=np.int64)
    kernels.box_area(blob, start, stop, escaped, np.ascontiguousarray(heights, dtype=np.int64), np.ascontiguousarray(widths, dtype=np.int64), area, box, covered)
    return MaskStrings(blob, start, stop, escaped, area, box, covered)


def torch_counts(kernels, m: MaskStrings) -> tuple[np.ndarray, np.ndarray]:
    """``(counts int64, offsets [N+1])``: the runs of every mask, the form the torch kernel reads."""
    runs = np.empty(len(m.start), dtype=np.int64)
    kernels.count_runs(m.blob, m.start, m.stop, m.escaped, runs)
    if (runs < 0).any():
        raise ValueError("malformed RLE string")
    offsets = np.zeros(len(runs) + 1, dtype=np.int64)
    np.cumsum(runs, out=offsets[1:])
    counts = np.empty(int(offsets[-1]), dtype=np.uint32)
    kernels.decode(m.blob, m.start, m.stop, m.escaped, offsets, counts)
    return counts.astype(np.int64), offsets


def coverage_error(covered: int, h: int, w: int, where: str) -> EngineInputError:
    """The error for a compressed RLE whose runs do not cover its ``h x w`` image."""
    if covered < 0:
        return EngineInputError("malformed_rle", "RLE counts string ends inside a value", location=where)
    return EngineInputError("rle_size_mismatch", f"RLE counts cover {covered} pixels, the image has {h * w}", location=where)


def check_coverage(rles: Sequence[RLE], where: Sequence[str] | Any) -> None:
    """Reject compressed RLEs whose runs do not cover ``h * w`` pixels (the Python path's
    twin of the ``covered`` check; pycocotools' rleIou would loop forever on them)."""
    if not rles:
        return
    blob, char_off = pack_counts(rles)
    c = np.frombuffer(blob, dtype=np.uint8).astype(np.int64) - 48
    ends_inside = np.zeros(len(rles), dtype=bool)
    nonempty = char_off[1:] > char_off[:-1]
    last = c[char_off[1:][nonempty] - 1] if c.size else np.zeros(0, np.int64)
    ends_inside[nonempty] = (last & 0x20) != 0
    if ends_inside.any():
        i = int(np.flatnonzero(ends_inside)[0])
        raise coverage_error(-1, 0, 0, where[i])
    counts, voff = decode_counts_blob(blob, char_off)
    runs = np.r_[counts.astype(np.uint32).astype(np.int64), 0]  # uint as in rleFrString; pad: reduceat needs idx < len
    sums = np.add.reduceat(runs, voff[:-1])
    sums = np.where(voff[1:] > voff[:-1], sums, 0)
    hw = np.array([r["size"] for r in rles], dtype=np.int64).reshape(-1, 2)
    bad = np.flatnonzero(sums != hw[:, 0] * hw[:, 1])
    if bad.size:
        i = int(bad[0])
        raise coverage_error(int(sums[i]), int(hw[i, 0]), int(hw[i, 1]), where[i])
