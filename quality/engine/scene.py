"""Scene complexity and coverage of a set of frames: what a robotics buyer filters by.

Per frame (an image, or one frame of a video) from its instance masks:

* instances: masks in the frame (crowd regions are not instances and are left out);
* occluded: instances whose mask overlaps or touches another instance's mask (a pixel of
  one lies on or next to, in the 8-neighbourhood, a pixel of the other);
* object sizes: COCO's bins on the mask's pixel area (small < 32², medium < 96², large);
* categories: distinct categories in the frame (clutter).

Over frames: instances per frame (mean, p90), occlusion (occluded instances / instances),
size shares (each bin / instances), categories per frame (mean, p90). p90 is the nearest
rank: the smallest count that at least 90% of the frames do not exceed.

Coverage: frames and episodes (videos) per declared embodiment and per task, from
declarations on each image or video (the caller maps raw names to its vocabulary).

Pure functions on checked masks (:mod:`quality.engine.gate`); no Django.
"""

from __future__ import annotations

import math
import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

import numpy as np

from quality.engine import masks, native
from quality.engine.gate import CheckedRLE, MaskStrings

SMALL_MAX = 32**2  # COCO: small < 32², medium < 96², large otherwise
MEDIUM_MAX = 96**2


@dataclass(frozen=True)
class FrameFigures:
    instances: int
    occluded: int
    small: int
    medium: int
    large: int
    categories: int


def crops(rles: Sequence[CheckedRLE], boxes: np.ndarray) -> list[tuple[int, int, np.ndarray]]:
    """Each mask inside its box grown by one pixel: (top, left, bool array), built from its
    runs cut at column boundaries and clipped to the box (no full-size decode: a 1080p mask
    of a 100-pixel object is 2 MB decoded, its crop 10 kB)."""
    counts, offsets = masks.rle_counts(rles)
    out = []
    for n, r in enumerate(rles):
        h, w = r.height, r.width
        x, y, bw, bh = (int(v) for v in boxes[n])
        top, left = max(0, y - 1), max(0, x - 1)
        bottom, right = min(h, y + bh + 1), min(w, x + bw + 1)
        c = counts[offsets[n] : offsets[n + 1]]
        ends = np.cumsum(c)
        starts = (ends - c)[1::2]  # foreground runs, column-major as COCO
        ends = ends[1::2]
        nonempty = ends > starts
        starts, ends = starts[nonempty], ends[nonempty]
        # a run covers columns first..last; cut it into one piece per column
        first, last = starts // h, (ends - 1) // h
        pieces = last - first + 1
        run = np.repeat(np.arange(len(starts)), pieces)
        col = first[run] + (np.arange(int(pieces.sum())) - np.repeat(np.cumsum(pieces) - pieces, pieces))
        row0 = np.maximum(starts[run] - col * h, 0)
        row1 = np.minimum(ends[run] - col * h, h)
        inside = (col >= left) & (col < right)
        col, row0, row1 = col[inside] - left, np.clip(row0[inside], top, bottom) - top, np.clip(row1[inside], top, bottom) - top
        keep = row0 < row1
        edges = np.zeros((right - left, bottom - top + 1), dtype=np.int32)
        np.add.at(edges, (col[keep], row0[keep]), 1)
        np.add.at(edges, (col[keep], row1[keep]), -1)
        out.append((top, left, np.ascontiguousarray((np.cumsum(edges[:, :-1], axis=1) > 0).T)))
    return out


def _dilate(m: np.ndarray) -> np.ndarray:
    """Grown by one pixel in the 8-neighbourhood (a 3x3 square)."""
    d = m.copy()
    d[1:, :] |= m[:-1, :]
    d[:-1, :] |= m[1:, :]
    e = d.copy()
    e[:, 1:] |= d[:, :-1]
    e[:, :-1] |= d[:, 1:]
    return e


def occluded_flags(rles: Sequence[CheckedRLE]) -> np.ndarray:
    """For each mask, whether it overlaps or touches another mask of the same frame.

    Only pairs whose boxes (grown by a pixel) meet are compared, on the crop where they
    meet; each mask involved is rebuilt once, inside its box."""
    n = len(rles)
    flags = np.zeros(n, dtype=bool)
    if n < 2:
        return flags
    boxes = masks.rle_boxes(rles)
    areas = masks.rle_areas(rles)
    x0, y0 = boxes[:, 0] - 1, boxes[:, 1] - 1
    x1, y1 = boxes[:, 0] + boxes[:, 2] + 1, boxes[:, 1] + boxes[:, 3] + 1
    meet = (x0[:, None] < x1[None, :]) & (x0[None, :] < x1[:, None]) & (y0[:, None] < y1[None, :]) & (y0[None, :] < y1[:, None])
    meet &= (areas[:, None] > 0) & (areas[None, :] > 0)
    np.fill_diagonal(meet, False)
    pairs = np.argwhere(np.triu(meet))
    if not len(pairs):
        return flags
    involved = sorted(set(pairs.ravel().tolist()))
    cropped = dict(zip(involved, crops([rles[k] for k in involved], boxes[involved]), strict=True))
    grown: dict[int, np.ndarray] = {}
    for i, j in pairs.tolist():
        if flags[i] and flags[j]:
            continue
        if i not in grown:
            grown[i] = _dilate(cropped[i][2])
        (ti, li, _mi), (tj, lj, mj) = cropped[i], cropped[j]
        gi = grown[i]
        top, left = max(ti, tj), max(li, lj)
        bottom, right = min(ti + gi.shape[0], tj + mj.shape[0]), min(li + gi.shape[1], lj + mj.shape[1])
        if bottom <= top or right <= left:
            continue
        a = gi[top - ti : bottom - ti, left - li : right - li]
        b = mj[top - tj : bottom - tj, left - lj : right - lj]
        if np.any(a & b):
            flags[i] = flags[j] = True
    return flags


def frame_figures(rles: Sequence[CheckedRLE], category_ids: Sequence[int]) -> FrameFigures:
    """The figures of one frame from its instances' masks and categories."""
    if not rles:
        return FrameFigures(0, 0, 0, 0, 0, 0)
    areas = masks.rle_areas(rles)
    return FrameFigures(
        instances=len(rles),
        occluded=int(occluded_flags(rles).sum()),
        small=int((areas < SMALL_MAX).sum()),
        medium=int(((areas >= SMALL_MAX) & (areas < MEDIUM_MAX)).sum()),
        large=int((areas >= MEDIUM_MAX).sum()),
        categories=len(set(int(c) for c in category_ids)),
    )


def _p90(values: list[int]) -> int:
    if not values:
        return 0
    ordered = sorted(values)
    return ordered[max(0, math.ceil(0.9 * len(ordered)) - 1)]


@dataclass
class SceneComplexity:
    """Accumulates frames; :meth:`figures` gives the summary."""

    per_frame: list[int] = field(default_factory=list)
    categories: list[int] = field(default_factory=list)
    occluded: int = 0
    sizes: list[int] = field(default_factory=lambda: [0, 0, 0])

    def add(self, f: FrameFigures) -> None:
        self.per_frame.append(f.instances)
        self.categories.append(f.categories)
        self.occluded += f.occluded
        self.sizes[0] += f.small
        self.sizes[1] += f.medium
        self.sizes[2] += f.large

    def merge(self, other: SceneComplexity) -> None:
        self.per_frame += other.per_frame
        self.categories += other.categories
        self.occluded += other.occluded
        self.sizes = [a + b for a, b in zip(self.sizes, other.sizes, strict=True)]

    def figures(self) -> dict:
        frames, instances = len(self.per_frame), sum(self.per_frame)
        share = (lambda k: round(k / instances, 6)) if instances else (lambda k: None)  # noqa: E731
        return {
            "frames": frames,
            "instances": instances,
            "instances_per_frame": {"mean": round(instances / frames, 6) if frames else None, "p90": _p90(self.per_frame)},
            "occlusion": share(self.occluded),
            "sizes": {"small": share(self.sizes[0]), "medium": share(self.sizes[1]), "large": share(self.sizes[2])},
            "categories_per_frame": {"mean": round(sum(self.categories) / frames, 6) if frames else None, "p90": _p90(self.categories)},
        }


@dataclass(frozen=True)
class Declaration:
    """One image or video and what it declares (raw names, as the file gives them);
    ``episode``: the video (episode) it belongs to, None for a lone image."""

    frames: int
    embodiments: tuple[str, ...] = ()
    tasks: tuple[str, ...] = ()
    episode: object = None
    sensors: tuple[str, ...] = ()


def coverage(declarations: Iterable[Declaration]) -> dict:
    """Frames and episodes per declared embodiment, task and sensor, and the frames that
    declare no embodiment and no task. Episodes count distinct videos (lone images are no
    episode)."""
    out: dict = {"embodiments": {}, "tasks": {}, "sensors": {}, "undeclared_frames": 0, "declared_frames": 0}
    episodes: dict[tuple[str, str], set] = {}
    for d in declarations:
        if d.embodiments or d.tasks:
            out["declared_frames"] += d.frames
        else:
            out["undeclared_frames"] += d.frames
        for key, names in (("embodiments", d.embodiments), ("tasks", d.tasks), ("sensors", d.sensors)):
            for name in dict.fromkeys(names):
                tally = out[key].setdefault(name, {"frames": 0, "episodes": 0})
                tally["frames"] += d.frames
                seen = episodes.setdefault((key, name), set())
                if d.episode is not None and d.episode not in seen:
                    seen.add(d.episode)
                    tally["episodes"] += 1
    return out


# Bounds on the arrays one step of :func:`strings_scene` builds (pairs of masks compared,
# column pieces looked up): memory stays bounded whatever the number of masks per frame.
PAIRS_PER_STEP = 500_000
CANDIDATES_PER_STEP = 4_000
LOOKUPS_PER_STEP = 4_000_000


def strings_scene(strings: MaskStrings, frame: np.ndarray, category: np.ndarray, frames: int) -> SceneComplexity:
    """The figures of ``frames`` frames at once: mask ``i`` of ``strings`` is an instance of
    category ``category[i]`` on frame ``frame[i]`` (0 .. frames-1; frames without a mask
    count as empty). The same figures as :func:`frame_figures` on each frame, with no
    Python work per frame or per mask: sizes and categories are counted over arrays, and
    occlusion compares only the pairs whose grown boxes meet, on their column runs."""
    frame = np.asarray(frame, dtype=np.int64)
    category = np.asarray(category, dtype=np.int64)
    per_frame = np.bincount(frame, minlength=frames) if len(frame) else np.zeros(frames, dtype=np.int64)
    if len(frame):
        low, span = int(category.min()), int(category.max()) - int(category.min()) + 1
        keys = np.sort(frame * span + (category - low))
        distinct = keys[np.concatenate(([True], keys[1:] != keys[:-1]))]  # one per (frame, category)
        cats = np.bincount(distinct // span, minlength=frames)
    else:
        cats = np.zeros(frames, dtype=np.int64)
    area = np.asarray(strings.area, dtype=np.int64)
    small = int((area < SMALL_MAX).sum())
    medium = int(((area >= SMALL_MAX) & (area < MEDIUM_MAX)).sum())
    return SceneComplexity(
        per_frame=per_frame.tolist(),
        categories=cats.tolist(),
        occluded=int(occluded_strings(strings, frame).sum()),
        sizes=[small, medium, len(area) - small - medium],
    )


def occluded_strings(strings: MaskStrings, frame: np.ndarray) -> np.ndarray:
    """For each mask, whether it overlaps or touches (8-neighbourhood) another mask of its
    frame: :func:`occluded_flags` over every frame at once."""
    n = len(strings)
    flags = np.zeros(n, dtype=bool)
    if n < 2:
        return flags
    order = np.argsort(frame, kind="stable")
    sorted_frame = frame[order]
    box = np.asarray(strings.box, dtype=np.float64)
    x0, y0 = box[:, 0] - 1, box[:, 1] - 1
    x1, y1 = box[:, 0] + box[:, 2] + 1, box[:, 1] + box[:, 3] + 1
    visible = np.asarray(strings.area) > 0
    # each sorted position i is paired with the positions after it in its frame
    later = np.searchsorted(sorted_frame, sorted_frame, side="right") - np.arange(n) - 1
    cum = np.cumsum(later)
    candidates: list[tuple[np.ndarray, np.ndarray]] = []
    lo = 0
    while lo < n:
        hi = max(int(np.searchsorted(cum, (cum[lo - 1] if lo else 0) + PAIRS_PER_STEP, side="right")), lo + 1)
        reps = later[lo:hi]
        total = int(reps.sum())
        if total:
            pi = np.repeat(np.arange(lo, hi), reps)
            pj = pi + 1 + (np.arange(total) - np.repeat(np.cumsum(reps) - reps, reps))
            i, j = order[pi], order[pj]
            meet = (x0[i] < x1[j]) & (x0[j] < x1[i]) & (y0[i] < y1[j]) & (y0[j] < y1[i]) & visible[i] & visible[j]
            i, j = i[meet], j[meet]
            candidates += [(i[a : a + CANDIDATES_PER_STEP], j[a : a + CANDIDATES_PER_STEP]) for a in range(0, len(i), CANDIDATES_PER_STEP)]
        lo = hi
    # The steps are independent and numpy releases the GIL on their arrays: they run on every
    # core, and the flags (an OR over the steps) do not depend on the order.
    workers = min(os.cpu_count() or 1, 8)

    def touching(pair: tuple[np.ndarray, np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
        ci, cj = pair
        touch = _touching(strings, ci, cj)
        return ci[touch], cj[touch]

    if workers > 1 and len(candidates) > 1:
        from concurrent.futures import ThreadPoolExecutor

        with ThreadPoolExecutor(workers) as pool:
            found = list(pool.map(touching, candidates))
    else:
        found = [touching(pair) for pair in candidates]
    for ci, cj in found:
        flags[ci] = True
        flags[cj] = True
    return flags


def _column_pieces(strings: MaskStrings) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Every mask's foreground runs cut at column boundaries: (mask, column, first row,
    end row), ordered by mask, then column, then row."""
    counts, offsets = _runs(strings)
    k = len(offsets) - 1
    lengths = np.diff(offsets)
    owner = np.repeat(np.arange(k), lengths)
    ends = np.cumsum(counts)
    before = np.concatenate(([0], ends))[offsets[:-1]]
    ends = ends - before[owner]
    local = np.arange(len(counts)) - offsets[:-1][owner]
    fg = (local % 2 == 1) & (counts > 0)
    owner, ends = owner[fg], ends[fg]
    starts = ends - counts[fg]
    h = np.asarray(strings.heights, dtype=np.int64)[owner]
    first, last = starts // h, (ends - 1) // h
    pieces = last - first + 1
    run = np.repeat(np.arange(len(starts)), pieces)
    col = first[run] + (np.arange(int(pieces.sum())) - np.repeat(np.cumsum(pieces) - pieces, pieces))
    row0 = np.maximum(starts[run] - col * h[run], 0)
    row1 = np.minimum(ends[run] - col * h[run], h[run])
    return owner[run], col, row0, row1


def _runs(strings: MaskStrings) -> tuple[np.ndarray, np.ndarray]:
    kernels = native.kernels()
    if kernels is not None:
        return tuple(masks.torch_counts(kernels, strings))
    return tuple(masks.rle_counts(strings.rles()))


def _touching(strings: MaskStrings, i: np.ndarray, j: np.ndarray) -> np.ndarray:
    """For each pair (i[p], j[p]), whether mask i grown by one pixel (3x3) meets mask j.

    Pieces of one mask at column c reach pieces of the other at columns c-1..c+1 whose rows
    overlap theirs grown by one: the smaller side's pieces are looked up among the other's
    (sorted by mask and column)."""
    involved, back = np.unique(np.concatenate((i, j)), return_inverse=True)
    li, lj = np.ascontiguousarray(back[: len(i)]), np.ascontiguousarray(back[len(i) :])
    sub = strings.take(involved)
    kernels = native.kernels()
    compiled = getattr(kernels, "touching_runs", None)
    if compiled is not None:
        # the same test, pair by pair on the runs in the compiled kernel (no array per piece)
        counts, offsets = masks.torch_counts(kernels, sub)
        hit = np.zeros(len(i), dtype=np.uint8)
        compiled(
            counts,
            offsets,
            np.ascontiguousarray(sub.heights, dtype=np.int64),
            np.ascontiguousarray(sub.widths, dtype=np.int64),
            li,
            lj,
            hit,
        )
        return hit.astype(bool)
    owner, col, row0, row1 = _column_pieces(sub)
    count = np.bincount(owner, minlength=len(involved))
    first = np.concatenate(([0], np.cumsum(count)))[:-1]
    width = int(col.max()) + 3 if len(col) else 3
    keys = owner * width + col + 1
    swap = count[li] > count[lj]
    a, b = np.where(swap, lj, li), np.where(swap, li, lj)
    bbox = np.asarray(sub.box, dtype=np.int64)
    bx0, by0 = bbox[b, 0], bbox[b, 1]
    bx1, by1 = bx0 + bbox[b, 2], by0 + bbox[b, 3]
    hit = np.zeros(len(i), dtype=bool)
    reps = count[a]
    cum = np.cumsum(reps)
    lo = 0
    while lo < len(a):
        hi = max(int(np.searchsorted(cum, (cum[lo - 1] if lo else 0) + LOOKUPS_PER_STEP // 3, side="right")), lo + 1)
        r = reps[lo:hi]
        pair = np.repeat(np.arange(lo, hi), r)
        piece = first[a[pair]] + (np.arange(int(r.sum())) - np.repeat(np.cumsum(r) - r, r))
        c, r0, r1 = col[piece], row0[piece], row1[piece]
        # only pieces within one pixel of the other mask's box can reach it
        near = (c >= bx0[pair] - 1) & (c <= bx1[pair]) & (r0 <= by1[pair]) & (r1 >= by0[pair])
        pair, c, r0, r1 = pair[near], c[near], r0[near], r1[near]
        for dc in (-1, 0, 1):
            key = b[pair] * width + c + dc + 1
            start = np.searchsorted(keys, key, side="left")
            found = np.searchsorted(keys, key, side="right") - start
            if not found.any():
                continue
            q = np.repeat(np.arange(len(key)), found)
            other = np.repeat(start, found) + (np.arange(int(found.sum())) - np.repeat(np.cumsum(found) - found, found))
            meets = (r0[q] <= row1[other]) & (row0[other] <= r1[q])
            hit[pair[q[meets]]] = True
        lo = hi
    return hit


def ytvis_scene(path) -> SceneComplexity | None:
    """Scene complexity of a YouTube-VIS file read by the compiled reader (``parse_ytvis``):
    every frame of every video (its ``length``, else its file names), the masks of crowd
    tracks left out, rasterized on every core and checked at the gate, then
    :func:`strings_scene`. None when the kernels are off or the reader declines the file,
    or a mask does not fit its video (the caller streams the file, and raises the error)."""
    from quality.engine import gate
    from quality.engine.errors import EngineInputError

    kernels = native.kernels()
    r = _parse_ytvis(path)
    if r is None:
        return None

    def i64(key: str) -> np.ndarray:
        return np.frombuffer(r[key], dtype=np.int64)

    vid_ids, vid_h, vid_w, vid_frames = i64("video_id"), i64("video_height"), i64("video_width"), i64("video_frames")
    order = np.argsort(vid_ids, kind="stable")
    sorted_ids = vid_ids[order]
    if len(sorted_ids) > 1 and (sorted_ids[1:] == sorted_ids[:-1]).any():
        return None
    ann_video = i64("ann_video")
    at = np.searchsorted(sorted_ids, ann_video)
    if len(ann_video) and (at.max() >= len(sorted_ids) or (sorted_ids[np.minimum(at, len(sorted_ids) - 1)] != ann_video).any()):
        return None  # a track of an unknown video
    ann_pos = order[at] if len(ann_video) else np.zeros(0, dtype=np.int64)
    mask_ann, mask_frame = i64("mask_ann"), i64("mask_frame")
    crowd = np.frombuffer(r["ann_crowd"], dtype=np.uint8)
    keep = crowd[mask_ann] == 0 if len(mask_ann) else np.zeros(0, dtype=bool)
    every = bool(keep.all())  # no crowd track: the parsed arrays are used as they are

    def kept(a: np.ndarray) -> np.ndarray:
        return a if every else a[keep]

    video = ann_pos[kept(mask_ann)]
    frame = kept(mask_frame)
    if len(frame) and (frame >= vid_frames[video]).any():
        return None  # more masks than frames
    hs, ws = vid_h[video], vid_w[video]
    kind = kept(np.frombuffer(r["kind"], dtype=np.uint8))
    seg_lo, seg_hi = kept(i64("seg_lo")), kept(i64("seg_hi"))
    rle = (kind == 1) | (kind == 2)
    if rle.any():
        size = kept(i64("rle_size").reshape(-1, 2))[rle]
        counts = kind[rle] == 2
        if (size[:, 0] != hs[rle]).any() or (size[:, 1] != ws[rle]).any() or (counts & (kept(i64("rle_sum"))[rle] != hs[rle] * ws[rle])).any():
            return None
    if ((hs <= 0) | (ws <= 0)).any():
        return None
    try:
        gate.check_dims(vid_h, vid_w, lambda i: f"videos[{i}]")
    except EngineInputError:
        return None
    category = i64("ann_category")[kept(mask_ann)]
    for key in ("rle_size", "rle_sum", "mask_ann", "ann_video", "ann_crowd"):
        del r[key]  # not needed to rasterize
    del mask_ann, ann_video, at, ann_pos, rle, crowd
    area = np.empty(len(kind), dtype=np.int64)
    box = np.empty((len(kind), 4), dtype=np.float64)
    pieces, offsets = _encode_parallel(kernels, kind, seg_lo, seg_hi, hs, ws, r, area, box)
    r = None  # the coordinates go before the pieces are joined
    blob = b"".join(pieces)
    pieces = None
    # each string's area and box come from the runs the rasterizer wrote it from; the strings
    # it copied from the file (area -1) pass the gate's check here
    copied = np.flatnonzero(area < 0)
    try:
        if copied.size:
            checked = gate.check_strings(
                blob, offsets[copied], offsets[copied + 1], hs[copied], ws[copied], lambda j: f"masks[{int(copied[j])}]", box_area=masks.boxes_areas
            )
            area[copied], box[copied] = checked.area, checked.box
    except EngineInputError:
        return None
    strings = gate.seal_encoded_strings(blob, offsets[:-1], offsets[1:], hs, ws, area, box)
    first_frame = np.concatenate(([0], np.cumsum(vid_frames)))
    return strings_scene(strings, first_frame[video] + frame, category, int(first_frame[-1]))


def _parse_ytvis(path, *, geometry: bool = True) -> dict | None:
    """``parse_ytvis`` of the file, mapped (its pages released as it is read); None when the
    kernels are off or the reader declines it. Without ``geometry`` only which frames hold a
    mask is read."""
    import mmap

    parse = getattr(native.kernels(), "parse_ytvis", None)
    if parse is None:
        return None
    with open(path, "rb") as f:
        if not os.fstat(f.fileno()).st_size:
            return None
        data = mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ)
    try:
        return parse(data, geometry)
    finally:
        data.close()


def ytvis_masked_frames(path) -> dict[int, set[int]] | None:
    """For each video id of a YouTube-VIS file that has tracks, the frames where one of its
    tracks has a mask (crowd tracks too), read by the compiled reader; None when it is off
    or declines the file."""
    r = _parse_ytvis(path, geometry=False)
    if r is None:
        return None
    video = np.frombuffer(r["ann_video"], dtype=np.int64)[np.frombuffer(r["mask_ann"], dtype=np.int64)]
    frame = np.frombuffer(r["mask_frame"], dtype=np.int64)
    out: dict[int, set[int]] = {}
    if not len(video):
        return out
    pairs = np.unique(np.stack((video, frame), axis=1), axis=0)
    starts = np.flatnonzero(np.concatenate(([True], pairs[1:, 0] != pairs[:-1, 0])))
    frames = pairs[:, 1].tolist()
    for vid, a, b in zip(pairs[starts, 0].tolist(), starts.tolist(), np.append(starts[1:], len(pairs)).tolist(), strict=True):
        out[vid] = set(frames[a:b])
    return out


def _encode_parallel(kernels, kind, seg_lo, seg_hi, hs, ws, r: dict, area: np.ndarray, box: np.ndarray) -> tuple[list[bytes], np.ndarray]:
    """The compressed strings of the masks (``encode_masks``), contiguous runs of masks on
    every core at once: the pieces, in order (joined, the same bytes as one call's), and
    the offsets of the strings in the joined bytes; each string's area and box into ``area``
    and ``box`` (-1: a string copied from the file, to check)."""
    from concurrent.futures import ThreadPoolExecutor

    n = len(kind)
    poly_end = np.frombuffer(r["poly_end"], dtype=np.int64)
    coords = np.frombuffer(r["coords"], dtype=np.float64)
    ucounts = np.frombuffer(r["ucounts"], dtype=np.uint32)
    parts = min(os.cpu_count() or 1, 8) if n >= 4096 else 1
    cuts = [n * k // parts for k in range(parts + 1)]

    def encode(a: int, b: int) -> tuple[bytes, np.ndarray]:
        off = np.empty(b - a + 1, dtype=np.int64)
        piece = kernels.encode_masks(
            np.ascontiguousarray(kind[a:b]), np.ascontiguousarray(seg_lo[a:b]), np.ascontiguousarray(seg_hi[a:b]),
            np.ascontiguousarray(hs[a:b]), np.ascontiguousarray(ws[a:b]), poly_end, coords, r["chars"], ucounts, off, area[a:b], box[a:b],
        )
        return piece, off

    with ThreadPoolExecutor(parts) as pool:
        pieces = list(pool.map(encode, cuts[:-1], cuts[1:]))
    offsets = np.empty(n + 1, dtype=np.int64)
    base = 0
    for a, b, (piece, off) in zip(cuts[:-1], cuts[1:], pieces, strict=True):
        offsets[a:b] = off[:-1] + base
        base += len(piece)
    offsets[n] = base
    return [piece for piece, _ in pieces], offsets
