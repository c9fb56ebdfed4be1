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
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

import numpy as np

from quality.engine import masks
from quality.engine.gate import CheckedRLE

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
