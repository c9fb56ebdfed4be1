"""The gate: every mask that comes from outside is checked here, once, before any compiled
kernel or pycocotools decodes it.

A mask from outside is a COCO segmentation (a polygon list, an uncompressed RLE, a
compressed RLE) on an image of a declared size, or a compressed counts string lying in a
file the compiled readers parsed. The rules, for every caller (dataset validation, the
engine's readers, reports, evaluations):

- **image size**: height and width are positive integers, at most ``max_side`` each and
  ``max_pixels`` together (:class:`MaskBounds`; ``image_too_large``);
- **polygons**: a non-empty list of polygons, each a list of an even number (at least 6)
  of finite numbers within ``MAX_COORDINATE`` pixels, and, when ``polygon_margin`` is set,
  within the image plus that margin;
- **RLE**: ``size`` is the image's ``[height, width]``; uncompressed ``counts`` are
  non-negative integers below 2^32; a compressed ``counts`` string holds only the
  characters ``'0'`` to ``'o'``, no value is cut off at the end or longer than 7
  characters, every run decodes to 0 .. 2^32 - 1; the runs sum to exactly ``height *
  width``.

A bad mask is an :class:`Issue`: a stable ``code``, a JSON ``location`` (the segmentation's
path, e.g. ``annotations[12].segmentation``, extended to the part at fault:
``.size``, ``.counts``, ``[j]`` for polygon j, ``[j][k]`` for one of its numbers) and a
message. The compressed-string rules have two implementations, the compiled kernel
(``check_box_area`` in ``_native/rle.c``, which also yields boxes and areas) and a numpy
twin here; both return a verdict code and a detail number per string, and one function
here turns a verdict into the message, so both paths report the same issue word for word.

What passes comes out as a checked type, and the engine's mask functions take only those:
:class:`CheckedRLE` (one compressed RLE) and :class:`MaskStrings` (many compressed strings
in one buffer, with boxes and areas). Both are made here only (and, for strings the
engine's own encoders wrote from checked polygons, by :func:`seal_encoded`).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from enum import StrEnum
from numbers import Integral, Real
from typing import Any

import numpy as np

from quality.engine import native
from quality.engine.errors import EngineInputError

MAX_SIDE = 65_535  # the largest side a JPEG can have
MAX_PIXELS = 178_956_970  # Pillow's decompression-bomb limit (Image.MAX_IMAGE_PIXELS)
# pycocotools' rasterizer walks every (5x upsampled) boundary point with int arithmetic
MAX_COORDINATE = 1e6
MAX_RUN = 0xFFFFFFFF  # pycocotools keeps runs as 32-bit unsigned integers
RLE_MAX_CHARS = 7  # rleToString never writes a longer value (any run, any delta of two)

# Verdicts of the compressed-string check; equal to the RLE_* enum of _native/rle_core.h.
STRING_OK, STRING_BAD_CHAR, STRING_TRUNCATED, STRING_OVERFLOW, STRING_NEGATIVE, STRING_SUM, STRING_BAD_SIZE = range(7)


@dataclass(frozen=True, kw_only=True)
class MaskBounds:
    """Limits the gate applies. ``polygon_margin``: how far (pixels) a polygon point may lie
    outside its image; None checks only ``MAX_COORDINATE`` (the engine's default: results
    polygons slightly outside the image are rasterized as pycocotools clips them)."""

    max_side: int = MAX_SIDE
    max_pixels: int = MAX_PIXELS
    polygon_margin: float | None = None


DEFAULT_BOUNDS = MaskBounds()


class MaskCode(StrEnum):
    """The gate's error codes (stable: clients key on them)."""

    COORDINATE_OUT_OF_RANGE = "coordinate_out_of_range"
    EMPTY_SEGMENTATION = "empty_segmentation"
    IMAGE_TOO_LARGE = "image_too_large"
    MASK_OUTSIDE_IMAGE = "mask_outside_image"
    MISSING_FIELD = "missing_field"
    NON_FINITE_NUMBER = "non_finite_number"
    POLYGON_ODD_LENGTH = "polygon_odd_length"
    POLYGON_TOO_SHORT = "polygon_too_short"
    RLE_BAD_CHARACTER = "rle_bad_character"
    RLE_NEGATIVE_RUN = "rle_negative_run"
    RLE_RUN_OVERFLOW = "rle_run_overflow"
    RLE_SIZE_MISMATCH = "rle_size_mismatch"
    RLE_SUM_MISMATCH = "rle_sum_mismatch"
    RLE_TRUNCATED = "rle_truncated"
    WRONG_TYPE = "wrong_type"


@dataclass(frozen=True)
class Issue:
    """One bad mask: a stable ``code``, where (a JSON path) and a message."""

    code: MaskCode
    location: str
    message: str

    def to_dict(self) -> dict[str, str]:
        return {"code": str(self.code), "location": self.location, "message": self.message}

    def error(self) -> EngineInputError:
        return EngineInputError(str(self.code), self.message, location=self.location)


def _is_int(v: Any) -> bool:
    return type(v) is int or (isinstance(v, Integral) and not isinstance(v, bool))


# --------------------------------------------------------------------------------------
# image sizes


def dims_issue(height: int, width: int, where: str, bounds: MaskBounds = DEFAULT_BOUNDS, *, fields: bool = True) -> Issue | None:
    """The issue with an image (or video) of ``height`` x ``width`` declared at ``where``
    (e.g. ``images[3]``; a side's issue is at ``images[3].height`` unless ``fields`` is
    false), or None."""
    for key, v in (("height", height), ("width", width)):
        at = f"{where}.{key}" if fields else where
        if not _is_int(v) or v <= 0:
            return Issue(MaskCode.WRONG_TYPE, at, f"{key} must be a positive integer")
        if v > bounds.max_side:
            return Issue(MaskCode.IMAGE_TOO_LARGE, at, f"{key} {v} is more than the limit of {bounds.max_side} pixels")
    if height * width > bounds.max_pixels:
        return Issue(
            MaskCode.IMAGE_TOO_LARGE,
            where,
            f"{height}x{width} (height x width) is {height * width} pixels, more than the limit of {bounds.max_pixels}",
        )
    return None


def check_dims(
    heights: np.ndarray, widths: np.ndarray, where: Callable[[int], str], bounds: MaskBounds = DEFAULT_BOUNDS, *, fields: bool = True
) -> None:
    """Raise the first image's issue (in order) among ``heights``/``widths`` (int arrays);
    ``where(i)`` names image i (see :func:`dims_issue` for ``fields``)."""
    hs = np.asarray(heights, dtype=np.int64)
    ws = np.asarray(widths, dtype=np.int64)
    if not len(hs):
        return
    side = bounds.max_side
    bad = (hs <= 0) | (ws <= 0) | (hs > side) | (ws > side)
    ok_side = ~bad
    # the product only where both sides are within bounds (it then fits int64)
    bad |= ok_side & (np.where(ok_side, hs, 0) * np.where(ok_side, ws, 0) > bounds.max_pixels)
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        issue = dims_issue(int(hs[i]), int(ws[i]), where(i), bounds, fields=fields)
        if issue is not None:
            raise issue.error()


# --------------------------------------------------------------------------------------
# one segmentation


def segmentation_issue(segm: Any, height: int, width: int, where: str, bounds: MaskBounds = DEFAULT_BOUNDS) -> Issue | None:
    """The first issue of one COCO segmentation on an image of ``height`` x ``width`` (whose
    size the caller checked with :func:`dims_issue`), or None. ``where`` is the
    segmentation's JSON path."""
    if type(segm) is list:
        return _polygons_issue(segm, height, width, where, bounds)
    if type(segm) is dict:
        return _rle_issue(segm, height, width, where)
    return Issue(MaskCode.WRONG_TYPE, where, "a segmentation must be a list of polygons or an RLE object")


def segmentation_issues(
    items: Sequence[tuple[Any, int, int]], where: Callable[[int], str], bounds: MaskBounds = DEFAULT_BOUNDS
) -> dict[int, Issue]:
    """:func:`segmentation_issue` of many segmentations at once: ``items[i]`` is
    ``(segmentation, height, width)`` and ``where(i)`` its JSON path; returns the issue of
    each refused one by index (the same issue the one-at-a-time check gives). The
    compressed counts strings, nearly all of a results file, are checked in one call of
    the kernel instead of one call each."""
    issues: dict[int, Issue] = {}
    strings: list[bytes] = []
    owners: list[int] = []
    heights: list[int] = []
    widths: list[int] = []
    for i, (segm, h, w) in enumerate(items):
        size = segm.get("size") if type(segm) is dict else None
        # the common case (a list of two plain ints equal to the image's size) without a call
        plain = type(size) is list and len(size) == 2 and type(size[0]) is int and type(size[1]) is int and size[0] == h and size[1] == w
        if type(segm) is dict and "counts" in segm and (plain or rle_size_issue(segm, h, w, "") is None):
            counts = segm["counts"]
            if type(counts) is str or type(counts) is bytes:
                strings.append(counts.encode() if type(counts) is str else counts)
                owners.append(i)
                heights.append(h)
                widths.append(w)
                continue
        issue = segmentation_issue(segm, h, w, where(i), bounds)
        if issue is not None:
            issues[i] = issue
    if strings:
        lengths = np.fromiter(map(len, strings), dtype=np.int64, count=len(strings))
        stop = np.cumsum(lengths)
        v = _verdicts(b"".join(strings), stop - lengths, stop, False, np.array(heights, np.int64), np.array(widths, np.int64), with_box=False)
        for k in np.flatnonzero(v.status != STRING_OK).tolist():
            issues[owners[k]] = v.issue(k, where(owners[k]))
    return dict(sorted(issues.items()))


def _polygons_issue(segm: list, h: int, w: int, where: str, bounds: MaskBounds) -> Issue | None:
    if not segm:
        return Issue(MaskCode.EMPTY_SEGMENTATION, where, "the segmentation has no polygon")
    margin = bounds.polygon_margin
    for j, poly in enumerate(segm):
        ploc = f"{where}[{j}]"
        if type(poly) is not list:
            return Issue(MaskCode.WRONG_TYPE, ploc, "a polygon must be a list of numbers")
        n = len(poly)
        if n % 2:
            return Issue(MaskCode.POLYGON_ODD_LENGTH, ploc, f"a polygon needs x,y pairs; it has {n} numbers")
        if n < 6:
            return Issue(MaskCode.POLYGON_TOO_SHORT, ploc, f"a polygon needs at least 3 points (6 numbers); it has {n}")
        if not _plain_coordinates(poly):
            issue = _coordinate_issue(poly, ploc)
            if issue is not None:
                return issue
        if margin is not None:
            xs, ys = poly[0::2], poly[1::2]
            lo_x, hi_x, lo_y, hi_y = min(xs), max(xs), min(ys), max(ys)
            if lo_x < -margin or lo_y < -margin or hi_x > w + margin or hi_y > h + margin:
                return Issue(
                    MaskCode.MASK_OUTSIDE_IMAGE,
                    ploc,
                    f"the polygon reaches outside the {w}x{h} image (x {lo_x:g}..{hi_x:g}, y {lo_y:g}..{hi_y:g})",
                )
    return None


_PLAIN = {int, float}


def _plain_coordinates(poly: list) -> bool:
    """True when every coordinate is a finite int or float within MAX_COORDINATE (the common
    case, decided without a Python loop over the numbers)."""
    if not set(map(type, poly)) <= _PLAIN:
        return False
    try:
        # min/max skip NaN unpredictably; a NaN or an infinity makes the sum non-finite
        return math.isfinite(sum(poly)) and min(poly) >= -MAX_COORDINATE and max(poly) <= MAX_COORDINATE
    except OverflowError:  # an int beyond float range
        return False


def _coordinate_issue(poly: list, ploc: str) -> Issue | None:
    for k, v in enumerate(poly):
        if isinstance(v, bool) or not isinstance(v, Real):
            return Issue(MaskCode.WRONG_TYPE, f"{ploc}[{k}]", "polygon coordinates must be numbers")
        if _is_int(v):
            if abs(v) > MAX_COORDINATE:
                return Issue(MaskCode.COORDINATE_OUT_OF_RANGE, f"{ploc}[{k}]", f"coordinate {v!r} is beyond ±{MAX_COORDINATE:g} pixels")
            continue
        f = float(v)
        if not math.isfinite(f):
            return Issue(MaskCode.NON_FINITE_NUMBER, f"{ploc}[{k}]", "polygon coordinates must be finite")
        if abs(f) > MAX_COORDINATE:
            return Issue(MaskCode.COORDINATE_OUT_OF_RANGE, f"{ploc}[{k}]", f"coordinate {v!r} is beyond ±{MAX_COORDINATE:g} pixels")
    return None


def _rle_issue(segm: dict, h: int, w: int, where: str) -> Issue | None:
    issue = rle_size_issue(segm, h, w, where)
    if issue is not None:
        return issue
    if "counts" not in segm:
        return Issue(MaskCode.MISSING_FIELD, f"{where}.counts", "an RLE needs 'counts'")
    counts = segm["counts"]
    if type(counts) is str or type(counts) is bytes:
        data = counts.encode() if type(counts) is str else counts
        v = _verdicts(data, np.zeros(1, np.int64), np.array([len(data)], np.int64), False, np.array([h], np.int64), np.array([w], np.int64))
        return None if v.status[0] == STRING_OK else v.issue(0, where)
    if type(counts) is list:
        return _uncompressed_issue(counts, h, w, where)
    return Issue(MaskCode.WRONG_TYPE, f"{where}.counts", "RLE counts must be a string or a list of integers")


def rle_size_issue(segm: dict, h: int, w: int, where: str) -> Issue | None:
    """The issue with an RLE's ``size`` on an image of ``h`` x ``w``, or None."""
    if "size" not in segm:
        return Issue(MaskCode.MISSING_FIELD, f"{where}.size", "an RLE needs 'size' [height, width]")
    size = segm["size"]
    if not (type(size) in (list, tuple) and len(size) == 2 and _is_int(size[0]) and _is_int(size[1])):
        return Issue(MaskCode.WRONG_TYPE, f"{where}.size", "RLE size must be [height, width]")
    if size[0] != h or size[1] != w:
        return Issue(MaskCode.RLE_SIZE_MISMATCH, f"{where}.size", f"RLE size [{size[0]}, {size[1]}] does not match the image's [{h}, {w}]")
    return None


def _uncompressed_issue(counts: list, h: int, w: int, where: str) -> Issue | None:
    if set(map(type, counts)) <= {int} and (not counts or (min(counts) >= 0 and max(counts) <= MAX_RUN)):
        total = sum(counts)
    else:
        for k, c in enumerate(counts):
            if not _is_int(c):
                return Issue(MaskCode.WRONG_TYPE, f"{where}.counts[{k}]", "RLE counts must be non-negative integers")
            if c < 0:
                return Issue(MaskCode.RLE_NEGATIVE_RUN, f"{where}.counts[{k}]", f"run {k} of the RLE counts is negative ({c})")
            if c > MAX_RUN:
                return Issue(MaskCode.RLE_RUN_OVERFLOW, f"{where}.counts[{k}]", f"run {k} of the RLE counts does not fit 32 bits")
        total = sum(int(c) for c in counts)
    if total != h * w:
        return _sum_issue(total, h, w, where)
    return None


def _sum_issue(total: int, h: int, w: int, where: str) -> Issue:
    return Issue(MaskCode.RLE_SUM_MISMATCH, f"{where}.counts", f"the RLE runs cover {total} pixels; the {h}x{w} image has {h * w}")


# --------------------------------------------------------------------------------------
# compressed strings in bulk: the compiled kernel or its numpy twin


@dataclass
class StringVerdicts:
    """Per string: ``status`` (STRING_*) and ``detail`` (the position, run index or sum the
    message names); with the compiled kernel, ``box`` and ``area`` of the good ones."""

    status: np.ndarray
    detail: np.ndarray
    heights: np.ndarray
    widths: np.ndarray
    box: np.ndarray | None = None
    area: np.ndarray | None = None

    def first_bad(self) -> int:
        """Index of the first string with an issue, -1 when all are good."""
        bad = np.flatnonzero(self.status != STRING_OK)
        return int(bad[0]) if bad.size else -1

    def issue(self, i: int, where: str) -> Issue:
        """The issue of string ``i``, whose RLE's JSON path is ``where``."""
        s, d = int(self.status[i]), int(self.detail[i])
        h, w = int(self.heights[i]), int(self.widths[i])
        loc = f"{where}.counts"
        if s == STRING_BAD_CHAR:
            return Issue(MaskCode.RLE_BAD_CHARACTER, loc, f"RLE counts hold only the characters '0' to 'o'; the character at position {d} is another")
        if s == STRING_TRUNCATED:
            return Issue(MaskCode.RLE_TRUNCATED, loc, "the RLE counts string ends inside a value")
        if s == STRING_OVERFLOW:
            return Issue(MaskCode.RLE_RUN_OVERFLOW, loc, f"run {d} of the RLE counts does not fit 32 bits")
        if s == STRING_NEGATIVE:
            return Issue(MaskCode.RLE_NEGATIVE_RUN, loc, f"run {d} of the RLE counts is negative")
        if s == STRING_SUM:
            return _sum_issue(d, h, w, where)
        if s == STRING_BAD_SIZE:
            return Issue(MaskCode.IMAGE_TOO_LARGE, f"{where}.size", f"{h}x{w} is not a size the engine decodes")
        raise ValueError(f"string {i} has no issue")


def _verdicts(
    blob, start: np.ndarray, stop: np.ndarray, escaped: bool, heights: np.ndarray, widths: np.ndarray, with_box: bool = True
) -> StringVerdicts:
    kernels = native.kernels()
    hs = np.ascontiguousarray(heights, dtype=np.int64)
    ws = np.ascontiguousarray(widths, dtype=np.int64)
    start = np.ascontiguousarray(start, dtype=np.int64)
    stop = np.ascontiguousarray(stop, dtype=np.int64)
    n = len(start)
    if kernels is not None:
        status = np.empty(n, dtype=np.int64)
        detail = np.empty(n, dtype=np.int64)
        area = np.empty(n, dtype=np.int64)
        if not with_box:
            kernels.check_strings(blob, start, stop, escaped, hs, ws, area, status, detail)
            return StringVerdicts(status, detail, hs, ws, None, area)
        box = np.empty((n, 4), dtype=np.float64)
        kernels.box_area(blob, start, stop, escaped, hs, ws, area, box, status, detail)
        return StringVerdicts(status, detail, hs, ws, box, area)
    if escaped:  # only the compiled results reader leaves strings escaped
        raise ValueError("escaped strings need the compiled kernels")
    status, detail = _verdicts_numpy(blob, start, stop, hs, ws)
    return StringVerdicts(status, detail, hs, ws)


def _verdicts_numpy(blob, start: np.ndarray, stop: np.ndarray, hs: np.ndarray, ws: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The numpy twin of the compiled ``check_box_area``: the same verdict and detail per
    string, by the same rules in the same priority order."""
    n = len(start)
    status = np.zeros(n, dtype=np.int64)
    detail = np.zeros(n, dtype=np.int64)
    bad_size = (hs <= 0) | (ws <= 0) | (hs > 2**31 - 1) | (ws > 2**31 - 1)
    bad_size |= ~bad_size & (np.where(bad_size, 0, hs) * np.where(bad_size, 0, ws) > 2**31 - 1)
    status[bad_size] = STRING_BAD_SIZE
    lens = stop - start
    total = int(lens.sum())
    owner = np.repeat(np.arange(n), lens)
    first_pos = np.repeat(start - np.r_[0, np.cumsum(lens)[:-1]], lens) if n else np.zeros(0, np.int64)
    raw = np.frombuffer(blob, dtype=np.uint8)
    c = raw[np.arange(total) + first_pos].astype(np.int64) - 48 if total else np.zeros(0, np.int64)
    local = np.arange(total) - np.repeat(np.r_[0, np.cumsum(lens)[:-1]], lens) if total else np.zeros(0, np.int64)

    def first_per_string(flag_idx: np.ndarray, owners: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        u, first = np.unique(owners, return_index=True)
        return u, flag_idx[first]

    # 1. characters outside '0'..'o'
    badc = np.flatnonzero((c < 0) | (c > 63))
    if badc.size:
        u, at = first_per_string(badc, owner[badc])
        fresh = status[u] == STRING_OK
        status[u[fresh]] = STRING_BAD_CHAR
        detail[u[fresh]] = local[at[fresh]]
    # 2. the last value cut off
    nonempty = lens > 0
    last = np.zeros(n, dtype=np.int64)
    if total:
        last[nonempty] = c[np.cumsum(lens)[nonempty] - 1]
    trunc = nonempty & ((last & 0x20) != 0) & (status == STRING_OK)
    status[trunc] = STRING_TRUNCATED
    # 3. values, runs and sums of the strings still good
    good = status == STRING_OK
    sel = good[owner] if total else np.zeros(0, bool)
    c2, own2 = c[sel], owner[sel]
    ends = np.flatnonzero((c2 & 0x20) == 0)
    vstarts = np.r_[0, ends[:-1] + 1] if ends.size else np.zeros(0, np.int64)
    nch = ends - vstarts + 1
    pos = np.arange(c2.size) - np.repeat(vstarts, nch)
    vals = np.add.reduceat((c2 & 0x1F) << (5 * np.minimum(pos, RLE_MAX_CHARS)), vstarts) if ends.size else np.zeros(0, np.int64)
    neg = (c2[ends] & 0x10) != 0
    vals = np.where(neg, vals | (-1 << (5 * np.minimum(nch, 12))), vals)
    vown = own2[ends]
    counts_per = np.bincount(vown, minlength=n) if vown.size else np.zeros(n, np.int64)
    voff = np.r_[0, np.cumsum(counts_per)]
    m = np.arange(vals.size) - np.repeat(voff[:-1], counts_per)
    runs = vals.copy()
    # rleFrString's delta coding: run[m] = value[m] + run[m - 2] for m > 2, i.e. a running
    # sum along each (string, parity) chain that starts at run 1 or run 2
    for parity in (0, 1):
        idx = np.flatnonzero((m >= 1) & (m % 2 == parity))
        if idx.size:
            v = vals[idx]
            grp = vown[idx]
            cs = np.cumsum(v)
            head = np.r_[True, grp[1:] != grp[:-1]]
            base = np.maximum.accumulate(np.where(head, np.arange(idx.size), 0))
            runs[idx] = cs - (cs - v)[base]
    over = (nch > RLE_MAX_CHARS) | (runs > MAX_RUN)
    under = (nch <= RLE_MAX_CHARS) & (runs < 0)
    errs = np.flatnonzero(over | under)
    if errs.size:
        u, at = first_per_string(errs, vown[errs])
        status[u] = np.where(under[at], STRING_NEGATIVE, STRING_OVERFLOW)
        detail[u] = m[at]
    still = status == STRING_OK
    sums = np.zeros(n, dtype=np.int64)
    has = counts_per > 0
    if has.any():
        sums[has] = np.add.reduceat(runs, voff[:-1][has])
    wrong = still & (sums != hs * ws)
    status[wrong] = STRING_SUM
    detail[wrong] = sums[wrong]
    detail[still & ~wrong] = sums[still & ~wrong]
    return status, detail


# --------------------------------------------------------------------------------------
# checked types


_MADE_HERE = object()


class CheckedRLE:
    """One compressed RLE that passed the gate: ``counts`` (bytes) is a well-formed string
    whose runs cover exactly ``height * width`` pixels of an image within bounds. Read-only;
    ``rle["size"]`` and ``rle["counts"]`` read like the dict it stands for, and
    :meth:`coco` gives that dict (pycocotools' form)."""

    __slots__ = ("height", "width", "counts")

    def __init__(self, height: int, width: int, counts: bytes, _made: object = None) -> None:
        if _made is not _MADE_HERE:
            raise TypeError("a CheckedRLE is made by quality.engine.gate only")
        object.__setattr__(self, "height", height)
        object.__setattr__(self, "width", width)
        object.__setattr__(self, "counts", counts)

    def __setattr__(self, name: str, value: Any) -> None:
        raise AttributeError("a CheckedRLE is read-only")

    @property
    def size(self) -> list[int]:
        return [self.height, self.width]

    def __getitem__(self, key: str) -> Any:
        if key == "size":
            return [self.height, self.width]
        if key == "counts":
            return self.counts
        raise KeyError(key)

    def coco(self) -> dict:
        """``{"size": [h, w], "counts": bytes}``, the dict pycocotools' C functions read."""
        return {"size": [self.height, self.width], "counts": self.counts}

    def to_json(self) -> dict:
        """``{"size": [h, w], "counts": str}``, as COCO files hold it."""
        return {"size": [self.height, self.width], "counts": self.counts.decode()}

    def __eq__(self, other: object) -> bool:
        return isinstance(other, CheckedRLE) and (self.height, self.width, self.counts) == (other.height, other.width, other.counts)

    def __hash__(self) -> int:
        return hash((self.height, self.width, self.counts))

    def __repr__(self) -> str:
        return f"CheckedRLE(size=[{self.height}, {self.width}], counts={self.counts!r})"


def seal_encoded(height: int, width: int, counts: bytes) -> CheckedRLE:
    """For the engine's own encoders only (``quality.engine.masks``): a string they wrote
    from input that passed the gate (polygons, uncompressed counts) is well formed by
    construction."""
    return CheckedRLE(int(height), int(width), counts, _MADE_HERE)


def checked_rle(segm: Any, height: int, width: int, where: str, bounds: MaskBounds = DEFAULT_BOUNDS) -> CheckedRLE:
    """A compressed RLE given as such (``counts`` a string or bytes), after the gate; raises
    the :class:`Issue` as :class:`EngineInputError`. Other segmentations go through
    ``quality.engine.masks.to_rles`` (which rasterizes them)."""
    issue = segmentation_issue(segm, height, width, where, bounds)
    if issue is not None:
        raise issue.error()
    counts = segm.get("counts") if type(segm) is dict else None
    if type(counts) is not str and type(counts) is not bytes:
        raise TypeError("checked_rle takes compressed RLEs; rasterize others with masks.to_rles")
    return CheckedRLE(int(height), int(width), counts.encode() if type(counts) is str else counts, _MADE_HERE)


class MaskStrings:
    """Many compressed RLE strings that passed the gate, in one buffer, with their boxes
    (pycocotools' ``toBbox``) and areas.

    Mask ``i`` is ``blob[start[i]:stop[i]]`` on an image of ``heights[i]`` x ``widths[i]``;
    ``escaped`` when those bytes are a JSON string's content as it lies in a results file
    (``\\\\`` for a backslash). Made by :func:`check_strings` only.
    """

    __slots__ = ("blob", "start", "stop", "escaped", "heights", "widths", "area", "box")

    def __init__(self, blob, start, stop, escaped, heights, widths, area, box, _made: object = None) -> None:
        if _made is not _MADE_HERE:
            raise TypeError("MaskStrings are made by quality.engine.gate.check_strings only")
        self.blob, self.start, self.stop, self.escaped = blob, start, stop, escaped
        self.heights, self.widths, self.area, self.box = heights, widths, area, box

    def __len__(self) -> int:
        return len(self.start)

    def take(self, index: np.ndarray) -> MaskStrings:
        index = np.asarray(index, dtype=np.int64)
        return MaskStrings(
            self.blob, self.start[index], self.stop[index], self.escaped, self.heights[index], self.widths[index],
            self.area[index], self.box[index], _MADE_HERE,
        )

    def rles(self, index: Sequence[int] | np.ndarray | None = None) -> list[CheckedRLE]:
        """The masks at ``index`` (all when None) as :class:`CheckedRLE`."""
        idx = np.arange(len(self.start)) if index is None else np.asarray(index, dtype=np.int64)
        blob = self.blob
        out = []
        for a, b, h, w in zip(self.start[idx].tolist(), self.stop[idx].tolist(), self.heights[idx].tolist(), self.widths[idx].tolist()):
            s = bytes(blob[a:b])
            if self.escaped and b"\\" in s:
                s = _unescape(s)
            out.append(CheckedRLE(h, w, s, _MADE_HERE))
        return out


def _unescape(s: bytes) -> bytes:
    out = bytearray()
    i = 0
    while i < len(s):
        if s[i] == 0x5C:  # the compiled reader accepts only \\ \" \/: the next byte is the character
            i += 1
        out.append(s[i])
        i += 1
    return bytes(out)


def check_strings(
    blob,
    start: np.ndarray,
    stop: np.ndarray,
    heights: np.ndarray,
    widths: np.ndarray,
    where: Callable[[int], str],
    *,
    escaped: bool = False,
    box_area: Callable[[list[CheckedRLE]], tuple[np.ndarray, np.ndarray]] | None = None,
    boxes: np.ndarray | None = None,
) -> MaskStrings:
    """The strings ``blob[start[i]:stop[i]]`` (masks on images of ``heights[i]`` x
    ``widths[i]``) as :class:`MaskStrings`, or the first one's issue raised as
    :class:`EngineInputError` (``where(i)`` is string i's RLE path). Boxes and areas come
    from the compiled check; on the Python path from ``box_area`` (pycocotools' toBbox and
    area of the checked masks). ``boxes`` (float64 [N, 4]) are taken as the masks' boxes
    instead of computing them (a reference cache's own; they only ever prefilter pairs)."""
    v = _verdicts(blob, start, stop, escaped, heights, widths, with_box=boxes is None)
    i = v.first_bad()
    if i >= 0:
        raise v.issue(i, where(i)).error()
    if boxes is not None and v.area is not None:
        v.box = np.asarray(boxes, dtype=np.float64).reshape(-1, 4)
    return _strings_from(blob, start, stop, escaped, v, box_area)


def _strings_from(blob, start, stop, escaped: bool, v: StringVerdicts, box_area) -> MaskStrings:
    start = np.ascontiguousarray(start, dtype=np.int64)
    stop = np.ascontiguousarray(stop, dtype=np.int64)
    strings = MaskStrings(blob, start, stop, escaped, v.heights, v.widths, v.area, v.box, _MADE_HERE)
    if v.box is None:
        if box_area is None:
            # callers that only run with the compiled kernels on
            raise TypeError("the Python path needs box_area")
        n = len(start)
        strings.box, strings.area = np.zeros((n, 4), dtype=np.float64), np.zeros(n, dtype=np.int64)
        for s in range(0, n, 50_000):  # a chunk of mask objects at a time
            box, area = box_area(strings.rles(np.arange(s, min(n, s + 50_000))))
            strings.box[s : s + 50_000], strings.area[s : s + 50_000] = np.asarray(box).reshape(-1, 4), area
    return strings


def seal_encoded_strings(blob: bytes, start: np.ndarray, stop: np.ndarray, heights: np.ndarray, widths: np.ndarray, area: np.ndarray, box: np.ndarray) -> MaskStrings:
    """For the engine's own encoders only (the compiled rasterizer, ``cache.ReferenceCache``):
    strings they wrote from input that passed the gate are well formed by construction;
    ``area`` and ``box`` are what the encoder computed from the runs (box_area's values)."""
    return MaskStrings(
        blob,
        np.ascontiguousarray(start, dtype=np.int64),
        np.ascontiguousarray(stop, dtype=np.int64),
        False,
        np.ascontiguousarray(heights, dtype=np.int64),
        np.ascontiguousarray(widths, dtype=np.int64),
        np.ascontiguousarray(area, dtype=np.int64),
        np.ascontiguousarray(box, dtype=np.float64).reshape(-1, 4),
        _MADE_HERE,
    )


def check_rle_strings(
    blob,
    start: np.ndarray,
    stop: np.ndarray,
    sizes: np.ndarray,
    heights: np.ndarray,
    widths: np.ndarray,
    where: Callable[[int], str],
    *,
    escaped: bool = False,
    box_area: Callable[[list[CheckedRLE]], tuple[np.ndarray, np.ndarray]] | None = None,
) -> MaskStrings:
    """:func:`check_strings` for compressed RLEs that declare their own ``sizes`` (int
    [N, 2]): an RLE whose size is not its image's (``heights[i]`` x ``widths[i]``) is an
    issue at ``.size``, reported before its counts; the first issue in order is raised."""
    sizes = np.asarray(sizes, dtype=np.int64).reshape(-1, 2)
    hs = np.asarray(heights, dtype=np.int64)
    ws = np.asarray(widths, dtype=np.int64)
    wrong = (sizes[:, 0] != hs) | (sizes[:, 1] != ws)
    v = _verdicts(blob, start, stop, escaped, hs, ws)
    bad = np.flatnonzero(wrong | (v.status != STRING_OK))
    if bad.size:
        i = int(bad[0])
        if wrong[i]:
            h, w = int(hs[i]), int(ws[i])
            raise Issue(
                MaskCode.RLE_SIZE_MISMATCH, f"{where(i)}.size", f"RLE size [{int(sizes[i, 0])}, {int(sizes[i, 1])}] does not match the image's [{h}, {w}]"
            ).error()
        raise v.issue(i, where(i)).error()
    return _strings_from(blob, start, stop, escaped, v, box_area)


def string_verdicts(blob, start: np.ndarray, stop: np.ndarray, heights: np.ndarray, widths: np.ndarray, *, escaped: bool = False) -> StringVerdicts:
    """Every string's verdict (for callers that report all issues or order them with others)."""
    return _verdicts(blob, start, stop, escaped, heights, widths)
