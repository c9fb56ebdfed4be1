"""Fuzz targets: every compiled entry point of the engine that takes bytes from outside.

Each target takes the kernels module (the normal build, or the sanitized one the fuzzer
loads) and one input, and drives the kernels the way the engine does:

- ``results_reader``: a results file through ``parse_results``, then its counts strings
  (JSON-escaped, where they lie) through the gate's check (``box_area``, ``check_strings``),
  the run decoders (``count_runs``, ``decode``) and ``pair_ious``;
- ``reference_reader``: a reference file through ``parse_coco``, its geometry through
  ``encode_masks``, the strings that come out through the gate's check;
- ``rle_strings``: raw counts strings (one per line) on sizes taken from the input, through
  every string kernel, escaped and not;
- ``rasterize``: polygon lists built from the input (any doubles, ints, wrong types, any
  sizes) through ``rasterize`` and, as flat arrays, ``encode_masks``;
- ``validation_reader``: a seller's annotation file through the validation's compiled pass
  (``json_outline``, ``check_annotations``) and the strings it accepts through the gate;
- ``ytvis_reader``: a YouTube-VIS file through ``parse_ytvis`` (with and without geometry:
  declined, or read as orjson reads it), its masks through ``encode_masks``, and the file
  through the scene figures (``quality.engine.scene.ytvis_scene``);
- ``scene_masks``: masks on frames built from the input through the scene figures of all
  frames at once (``strings_scene``, ``touching_runs``), which must be the per-frame Python
  computation's (``frame_figures``), and raw arrays through ``touching_runs``'s checks.

Besides not crashing (the sanitizers watch memory and undefined behaviour), the targets
check what the engine relies on: whatever the encoders write passes the gate and covers its
image exactly. Errors a kernel documents for bad arguments (ValueError) are fine; anything
else is a finding. The same functions replay the committed corpus in the normal test run
(tests/fuzz/test_corpus.py).
"""

from __future__ import annotations

import json
import math
import os
import struct
import tempfile
from collections.abc import Callable

import numpy as np
import orjson

OK, BAD_SIZE = 0, 6  # the gate's verdicts (quality.engine.gate.STRING_*)


class Reader:
    """Structured values from fuzz bytes (a small FuzzedDataProvider that needs no atheris,
    so the corpus replays anywhere)."""

    def __init__(self, data: bytes) -> None:
        self.data, self.pos = data, 0

    def left(self) -> int:
        return len(self.data) - self.pos

    def byte(self) -> int:
        if self.pos >= len(self.data):
            return 0
        self.pos += 1
        return self.data[self.pos - 1]

    def take(self, n: int) -> bytes:
        out = self.data[self.pos : self.pos + n]
        self.pos += len(out)
        return out.ljust(n, b"\0")

    def size(self) -> int:
        """An image side: mostly small, sometimes at or past every bound."""
        b = self.byte()
        special = (0, -1, 65535, 65536, 70000, 2**31 - 1, 2**31, 2**32, 2**40)
        return special[b % len(special)] if b >= 240 else 1 + b % 64

    def number(self):
        """A polygon coordinate as JSON (or a caller) could give it, or something else."""
        b = self.byte()
        if b < 150:
            return float(b % 80) - 5.0 + self.byte() / 256
        if b < 200:
            return int(self.byte()) - 10
        if b < 235:
            (x,) = struct.unpack("<d", self.take(8))  # any double: NaN, infinities, huge
            return x
        return (True, None, "1", [1.0], 1e6, -1e6, 1e6 + 1, 2**70)[b % 8]


def _strings_kernels(k, blob: bytes, start: np.ndarray, stop: np.ndarray, escaped: bool, hs: np.ndarray, ws: np.ndarray) -> None:
    n = len(start)
    area, box = np.empty(n, np.int64), np.empty((n, 4))
    status, detail = np.empty(n, np.int64), np.empty(n, np.int64)
    k.box_area(blob, start, stop, escaped, hs, ws, area, box, status, detail)
    area2, status2, detail2 = np.empty(n, np.int64), np.empty(n, np.int64), np.empty(n, np.int64)
    k.check_strings(blob, start, stop, escaped, hs, ws, area2, status2, detail2)
    assert np.array_equal(status, status2) and np.array_equal(detail, detail2) and np.array_equal(area, area2)
    good = status == OK
    assert (area[good] >= 0).all() and (area[good] <= hs[good] * ws[good]).all()
    runs = np.empty(n, np.int64)
    k.count_runs(blob, start, stop, escaped, runs)
    ok = runs >= 0
    if ok.any():
        sel = np.flatnonzero(ok)
        off = np.zeros(len(sel) + 1, np.int64)
        np.cumsum(runs[sel], out=off[1:])
        counts = np.empty(int(off[-1]), np.uint32)
        try:
            k.decode(blob, start[sel], stop[sel], escaped, off, counts)
        except ValueError:  # a value too long to decode: refused, as documented
            assert not good[sel].all()
    if good.any():
        g = np.flatnonzero(good)[:32]
        pd = np.repeat(np.arange(len(g)), len(g))
        pg = np.tile(np.arange(len(g)), len(g))
        same = (hs[g][pd] == hs[g][pg]) & (ws[g][pd] == ws[g][pg])
        pd, pg = pd[same], pg[same]
        out = np.empty(len(pd))
        crowd = (np.arange(len(g)) % 2).astype(np.uint8)
        k.pair_ious(blob, start[g], stop[g], escaped, blob, start[g], stop[g], escaped, pd, pg, area[g], area[g], crowd, out)
        assert ((out >= 0) & (out <= 1)).all() or not len(out)


def results_reader(k, data: bytes) -> None:
    r = k.parse_results(data)
    if r is None:
        return
    data.decode("utf-8")  # accepted: UTF-8 text (RFC 3629), as orjson requires
    n = r["n"]
    start = np.frombuffer(r["counts_start"], np.int64)
    stop = np.frombuffer(r["counts_stop"], np.int64)
    size = np.frombuffer(r["size"], np.int64).reshape(n, 2)
    seg = size[:, 0] >= 0
    if seg.any():
        _strings_kernels(k, data, start[seg].copy(), stop[seg].copy(), True, size[seg, 0].copy(), size[seg, 1].copy())


def reference_reader(k, data: bytes) -> None:
    r = k.parse_coco(data)
    if r is None:
        return
    data.decode("utf-8")  # accepted: UTF-8 text (RFC 3629), as orjson requires
    i64 = lambda key: np.frombuffer(r[key], np.int64)  # noqa: E731
    img, hs, ws = i64("img_id"), i64("img_height"), i64("img_width")
    kind = np.frombuffer(r["kind"], np.uint8)
    if (kind == 3).any() or not len(kind):
        return
    order = np.argsort(img, kind="stable")
    pos = np.searchsorted(img[order], i64("image_id"))
    pos = np.minimum(pos, max(len(img) - 1, 0))
    if not len(img) or (img[order][pos] != i64("image_id")).any():
        return
    ann_h, ann_w = hs[order][pos].copy(), ws[order][pos].copy()
    offsets = np.empty(len(kind) + 1, np.int64)
    try:
        blob = k.encode_masks(kind, i64("seg_lo"), i64("seg_hi"), ann_h, ann_w, i64("poly_end"), np.frombuffer(r["coords"], np.float64),
                              r["chars"], np.frombuffer(r["ucounts"], np.uint32), offsets)
    except ValueError:  # a size the rasterizer refuses: the gate would have named it before
        return
    polys = kind == 0
    _strings_kernels(k, blob, offsets[:-1].copy(), offsets[1:].copy(), False, ann_h, ann_w)
    if polys.any():  # what the rasterizer wrote passes the gate and covers the image
        status = np.empty(len(kind), np.int64)
        k.check_strings(blob, offsets[:-1].copy(), offsets[1:].copy(), False, ann_h, ann_w, np.empty(len(kind), np.int64), status, np.empty(len(kind), np.int64))
        assert (status[polys] == OK).all(), status


# images 1, 2, 3 (of 1, 2, 3 frames) and categories 1, 2: what check_annotations looks
# annotations up in (the validation's Python code builds them from the images section)
_IMG = (np.array([1, 2, 3], np.int64), np.array([10, 20, 65535], np.int64), np.array([10, 30, 1], np.int64), np.array([1, 2, 3], np.int64))
_CATS = np.array([1, 2], np.int64)


def validation_reader(k, data: bytes) -> None:
    """A seller's annotation file through the compiled validation pass: ``json_outline``
    (whole, and leaving the annotations to ``check_annotations``), then ``check_annotations``
    on the annotations it located and on the whole input, in each mode, then the counts
    strings it accepted (escaped, where they lie) through the gate's string check."""
    ranges = [(0, len(data))]
    for later in (None, "annotations"):
        outline = k.json_outline(data, 32, later)
        if outline is not None and later is None:
            # read whole and accepted: JSON text whose strings are Unicode text (a surrogate
            # escape only as half of a pair)
            json.dumps(json.loads(data.decode("utf-8")), ensure_ascii=False).encode("utf-8")
        for key, kind, a, b, fa, fb in outline or ():
            assert 0 <= a <= b <= len(data) and (fa < 0 or a < fa <= fb <= b), (key, a, b, fa, fb)
            if key == "annotations" and kind == "array":
                ranges.append((a, b))
    for a, b in ranges:
        for mode, keep_going in ((0, False), (1, True), (2, False), (2, True)):
            r = k.check_annotations(data, a, b, mode, 32, 1.0, *_IMG, _CATS, keep_going)
            if r is None:
                continue
            n = r["n"]
            owner = np.frombuffer(r["owner"], np.int64)
            bad = np.frombuffer(r["bad"], np.int64)
            assert ((bad >= 0) & (bad < n)).all() and (owner[bad] == -1).all() and (keep_going or not len(bad))
            good = np.ones(n, bool)
            good[bad] = False
            assert len(owner) == n and ((owner[good] >= 0) & (owner[good] < 3)).all()
            start, stop = np.frombuffer(r["start"], np.int64), np.frombuffer(r["stop"], np.int64)
            assert len(start) == len(stop) == n and ((a <= start) & (start < stop) & (stop <= b)).all()
            assert len(np.frombuffer(r["category"], np.int64)) == n and sum(r["area_bins"]) <= n
            start, stop = np.frombuffer(r["str_start"], np.int64), np.frombuffer(r["str_stop"], np.int64)
            hs, ws = np.frombuffer(r["str_h"], np.int64), np.frombuffer(r["str_w"], np.int64)
            owners = np.frombuffer(r["str_ann"], np.int64)
            assert len(start) == len(stop) == len(hs) == len(ws) == len(owners) and ((a <= start) & (start <= stop) & (stop <= b)).all()
            assert ((owners >= 0) & (owners < n)).all() and good[owners].all()
            if len(start):
                _strings_kernels(k, data, start.copy(), stop.copy(), True, hs.copy(), ws.copy())


def rle_strings(k, data: bytes) -> None:
    rd = Reader(data[:4])
    h, w = rd.size(), rd.size()
    parts = data[4:].split(b"\n")
    blob = b"".join(parts)
    lens = np.array([len(p) for p in parts], np.int64)
    stop = np.cumsum(lens)
    hs, ws = np.full(len(parts), h, np.int64), np.full(len(parts), w, np.int64)
    for escaped in (False, True):
        _strings_kernels(k, blob, stop - lens, stop, escaped, hs, ws)


def rasterize(k, data: bytes) -> None:
    rd = Reader(data)
    segs, hs, ws = [], [], []
    while rd.left() > 0 and len(segs) < 16:
        h, w = rd.size(), rd.size()
        polys = []
        for _ in range(rd.byte() % 4):
            polys.append([rd.number() for _ in range(rd.byte() % 24)])
        segs.append(polys if rd.byte() % 16 else {"size": [h, w], "counts": "0"})
        hs.append(h)
        ws.append(w)
    if not segs or _boundary_steps(segs) > 2e7:
        # a polygon may reach 10^6 pixels outside its image (the gate's bound); walking
        # such edges costs time, not memory, and under the sanitizers far too much of it
        return
    hs_a = np.array([min(max(h, -1), 2**62) for h in hs], np.int64)
    ws_a = np.array([min(max(w, -1), 2**62) for w in ws], np.int64)
    out = k.rasterize(segs, hs_a, ws_a)
    assert len(out) == len(segs)
    for s, seg, h, w in zip(out, segs, hs_a.tolist(), ws_a.tolist()):
        if s is None:
            continue
        # taken only when the gate would take it, and then well formed on its image
        assert isinstance(seg, list) and seg and all(isinstance(p, list) and len(p) >= 6 and len(p) % 2 == 0 for p in seg)
        assert all(type(v) in (int, float) and math.isfinite(v) and abs(v) <= 1e6 for p in seg for v in p)
        status, detail = np.empty(1, np.int64), np.empty(1, np.int64)
        k.box_area(s, np.zeros(1, np.int64), np.array([len(s)]), False, np.array([h]), np.array([w]), np.empty(1, np.int64), np.empty((1, 4)), status, detail)
        assert status[0] == OK and detail[0] == h * w, (status, detail, h, w)
    # the same polygons as flat arrays (the reference reader's form), numbers as doubles
    flat = [[float(v) if type(v) in (int, float) and abs(v) < 2**63 else float("nan") for v in p] for seg in segs if isinstance(seg, list) for p in seg]
    items = [i for i, seg in enumerate(segs) if isinstance(seg, list) and seg]
    if not items:
        return
    ends, coords, lo, hi, q = [], [], [], [], 0
    for i in items:
        lo.append(q)
        for _ in segs[i]:
            coords.extend(flat[q])
            ends.append(len(coords))
            q += 1
        hi.append(q)
    offsets = np.empty(len(items) + 1, np.int64)
    try:
        k.encode_masks(np.zeros(len(items), np.uint8), np.array(lo, np.int64), np.array(hi, np.int64), hs_a[items], ws_a[items],
                       np.array(ends, np.int64), np.array(coords, np.float64), b"", np.zeros(0, np.uint32), offsets)
    except ValueError:  # malformed polygons or sizes are refused whole, as documented
        return


def _boundary_steps(segs: list) -> float:
    """The rasterizer's steps along the edges (5 per pixel) of the polygons it would take."""
    steps = 0.0
    for seg in segs:
        for p in seg if isinstance(seg, list) else []:
            xy = [v for v in p if type(v) in (int, float) and math.isfinite(v) and abs(v) <= 1e6]
            if len(xy) != len(p) or len(xy) < 6:
                continue
            pts = list(zip(xy[0::2], xy[1::2]))
            steps += sum(5 * max(abs(a[0] - b[0]), abs(a[1] - b[1])) for a, b in zip(pts, pts[1:] + pts[:1]))
    return steps


def ytvis_reader(k, data: bytes) -> None:
    """``parse_ytvis`` declines the file or reads what orjson reads; without geometry it finds
    the same tracks and frames; the masks it read encode to strings that pass the gate; and
    the scene figures of the file (the engine's own path, on these kernels) hold together."""
    r = k.parse_ytvis(data)
    frames_only = k.parse_ytvis(data, False)
    for got in (r, frames_only):
        if got is None:
            continue
        ref = orjson.loads(data)  # raises when the reader took what is not JSON
        assert got["n_videos"] == len(ref["videos"]) and got["n_annotations"] == len(ref["annotations"])
        assert got["n_masks"] == sum(1 for a in ref["annotations"] for s in (a.get("segmentations") or []) if s)
        i64 = lambda key, g=got: np.frombuffer(g[key], np.int64)  # noqa: E731
        assert len(i64("video_id")) == len(i64("video_height")) == len(i64("video_frames")) == got["n_videos"]
        assert len(i64("ann_video")) == len(got["ann_crowd"]) == got["n_annotations"]
        mask_ann = i64("mask_ann")
        assert len(mask_ann) == len(i64("mask_frame")) == got["n_masks"]
        assert ((mask_ann >= 0) & (mask_ann < got["n_annotations"])).all() and (i64("mask_frame") >= 0).all()
    if r is None:
        return
    if frames_only is not None:  # (the geometry's own checks may decline what the frames pass)
        for key in ("n_videos", "n_annotations", "n_masks", "video_frames", "mask_ann", "mask_frame", "ann_video", "ann_crowd"):
            assert frames_only[key] == r[key], key
    _ytvis_masks(k, r)
    from quality.engine import scene

    with tempfile.NamedTemporaryFile(suffix=".json", dir="/dev/shm" if os.path.isdir("/dev/shm") else None) as f:
        f.write(data)
        f.flush()
        got = scene.ytvis_scene(f.name)
    if got is not None:
        per_frame = got.per_frame
        assert sum(per_frame) == sum(got.sizes) and 0 <= got.occluded <= sum(per_frame)
        assert all(0 <= c <= n for c, n in zip(got.categories, per_frame, strict=True))


def _ytvis_masks(k, r: dict) -> None:
    i64 = lambda key: np.frombuffer(r[key], np.int64)  # noqa: E731
    kind = np.frombuffer(r["kind"], np.uint8)
    if not len(kind) or (kind == 3).any():
        return
    ids, order = i64("video_id"), np.argsort(i64("video_id"), kind="stable")
    vid = i64("ann_video")[i64("mask_ann")]
    pos = np.minimum(np.searchsorted(ids[order], vid), max(len(ids) - 1, 0))
    if not len(ids) or (ids[order][pos] != vid).any():
        return
    hs, ws = i64("video_height")[order][pos].copy(), i64("video_width")[order][pos].copy()
    offsets = np.empty(len(kind) + 1, np.int64)
    area, box = np.empty(len(kind), np.int64), np.empty((len(kind), 4))
    try:
        blob = k.encode_masks(kind, i64("seg_lo"), i64("seg_hi"), hs, ws, i64("poly_end"), np.frombuffer(r["coords"], np.float64),
                              r["chars"], np.frombuffer(r["ucounts"], np.uint32), offsets, area, box)
    except ValueError:  # a size the rasterizer refuses: the gate names it before
        return
    status = np.empty(len(kind), np.int64)
    area2 = np.empty(len(kind), np.int64)
    k.check_strings(blob, offsets[:-1].copy(), offsets[1:].copy(), False, hs, ws, area2, status, np.empty(len(kind), np.int64))
    # polygons (and counts lists of the video's size covering it: what ytvis_scene checks
    # before it encodes) are written well formed, with the area of their runs
    size = np.frombuffer(r["rle_size"], np.int64).reshape(-1, 2)
    fits = (kind == 2) & (size[:, 0] == hs) & (size[:, 1] == ws) & (np.frombuffer(r["rle_sum"], np.int64) == hs * ws)
    written = (area >= 0) & ((kind == 0) | fits)
    assert (status[written] == OK).all(), status
    assert (area2[written] == area[written]).all()


def scene_inputs(rd: Reader) -> tuple[list[dict], list[int], list[int], int]:
    """Masks on frames from the input: (uncompressed RLEs, frame of each, category of each,
    frames). Every mask of a frame lies on that frame's image."""
    frames = 1 + rd.byte() % 5
    sizes = [(1 + rd.byte() % 24, 1 + rd.byte() % 24) for _ in range(frames)]
    segs, frame, cats = [], [], []
    while rd.left() > 0 and len(segs) < 24:
        f = rd.byte() % frames
        h, w = sizes[f]
        shape = rd.byte() % 5
        m = np.zeros((h, w), np.uint8)
        r0, c0 = rd.byte() % h, rd.byte() % w
        r1, c1 = min(h, r0 + 1 + rd.byte() % 12), min(w, c0 + 1 + rd.byte() % 12)
        if shape == 0:
            m[r0:r1, c0:c1] = 1
        elif shape == 1:  # an L: contact at edges and corners
            m[r0:r1, c0] = 1
            m[r1 - 1, c0:c1] = 1
        elif shape == 2:  # a hollow box: another mask may sit inside without touching
            m[r0:r1, c0:c1] = 1
            m[r0 + 1 : r1 - 1, c0 + 1 : c1 - 1] = 0
        elif shape == 3:
            m[r0, c0] = 1
        if shape == 4:  # runs from the input, the last one filling the image
            runs, left = [], h * w
            for _ in range(rd.byte() % 16):
                run = min(rd.byte() % 40, left)
                runs.append(run)
                left -= run
            segs.append({"size": [h, w], "counts": [*runs, left]})
        else:
            flat = m.flatten(order="F")
            edges = np.flatnonzero(np.diff(flat)) + 1
            bounds = np.concatenate(([0], edges, [flat.size]))
            runs = np.diff(bounds).tolist()
            segs.append({"size": [h, w], "counts": ([0] if flat[0] else []) + runs})
        frame.append(f)
        cats.append(rd.byte() % 4 - 1)
    return segs, frame, cats, frames


def scene_masks(k, data: bytes) -> None:
    """Masks on frames (rectangles, outlines, single pixels, runs straight from the input)
    through the scene figures of all frames at once, against the per-frame computation."""
    from quality.engine import gate, masks
    from quality.engine.errors import EngineInputError
    from quality.engine.scene import SceneComplexity, frame_figures, occluded_flags, occluded_strings, strings_scene

    rd = Reader(data)
    segs, frame, cats, frames = scene_inputs(rd)
    try:
        rles = masks.to_rles(segs, [s["size"][0] for s in segs], [s["size"][1] for s in segs])
    except EngineInputError:
        return
    frame_a, cats_a = np.array(frame, np.int64), np.array(cats, np.int64)
    blob, off = masks.pack_counts(rles)
    hs = np.array([r.height for r in rles], np.int64)
    ws = np.array([r.width for r in rles], np.int64)
    strings = gate.check_strings(blob, off[:-1], off[1:], hs, ws, lambda i: f"masks[{i}]", box_area=masks.boxes_areas)
    expected, flags = SceneComplexity(), np.zeros(len(rles), bool)
    for f in range(frames):
        idx = np.flatnonzero(frame_a == f)
        expected.add(frame_figures([rles[i] for i in idx], cats_a[idx].tolist()))
        flags[idx] = occluded_flags([rles[i] for i in idx])
    assert occluded_strings(strings, frame_a).tolist() == flags.tolist()
    got = strings_scene(strings, frame_a, cats_a, frames)
    assert (got.per_frame, got.categories, got.occluded, got.sizes) == (expected.per_frame, expected.categories, expected.occluded, expected.sizes)
    _raw_touching(k, rd)


def _raw_touching(k, rd: Reader) -> None:
    """``touching_runs`` on arrays straight from the input: refused (ValueError) or answered."""
    n = rd.byte() % 6
    counts = np.array([rd.byte() % 48 - (rd.byte() == 255) for _ in range(rd.byte() % 24)], np.int64)
    offsets = np.array(sorted(rd.byte() % (len(counts) + 2) for _ in range(n + 1)), np.int64)
    if rd.byte() % 4 == 0 and len(offsets):
        offsets[rd.byte() % len(offsets)] = rd.byte() - 128
    heights = np.array([rd.byte() % 9 - 1 for _ in range(n)], np.int64)
    # a width that makes the mask's runs cover it (when they can), or any
    widths = np.array([rd.byte() % 9 - 1 for _ in range(n)], np.int64)
    if rd.byte() % 2:
        for m in range(n):
            lo, hi = int(offsets[m]), int(offsets[m + 1])
            if 0 <= lo <= hi <= len(counts) and heights[m] > 0 and counts[lo:hi].sum() % heights[m] == 0:
                widths[m] = counts[lo:hi].sum() // heights[m]
    pairs = rd.byte() % 8
    a = np.array([rd.byte() % (n + 2) - 1 for _ in range(pairs)], np.int64)
    b = np.array([rd.byte() % (n + 2) - 1 for _ in range(pairs)], np.int64)
    out = np.full(pairs, 7, np.uint8)
    try:
        k.touching_runs(counts, offsets, heights, widths, a, b, out)
    except ValueError:
        return
    assert ((out == 0) | (out == 1)).all()


TARGETS: dict[str, Callable[[object, bytes], None]] = {
    "results_reader": results_reader,
    "reference_reader": reference_reader,
    "rle_strings": rle_strings,
    "rasterize": rasterize,
    "validation_reader": validation_reader,
    "ytvis_reader": ytvis_reader,
    "scene_masks": scene_masks,
}
