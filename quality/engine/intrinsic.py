"""Intrinsic checks of a COCO annotation file: findings that need no reference.

Each finding has a stable ``code``, a ``count`` and up to ``max_examples`` example ids
(annotation ids; image ids for ``image_without_annotations``). Every code is always
listed, with count 0 when clean, so consumers can rely on the keys.

- ``invalid_polygon``: a polygon with fewer than 3 points, an odd number of coordinates,
  a non-finite coordinate, or zero area; or any segmentation the gate refuses
  (:mod:`quality.engine.gate`), which is then not rasterized.
- ``self_intersecting_polygon``: two non-adjacent edges of one polygon cross.
- ``mask_outside_image``: polygon points outside ``[0, width] x [0, height]`` or an RLE
  whose size is not the image's.
- ``empty_mask``: the rasterised mask has no pixel.
- ``duplicate_instance``: two non-crowd annotations of one image and class with mask
  IoU > 0.95 (counted per pair; the example is the later annotation).
- ``tiny_mask``: 0 < area < ``tiny_area`` pixels.
- ``image_without_annotations``; ``unknown_image`` and ``unknown_category``: references
  to ids missing from ``images`` / ``categories``.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Iterable, Sequence
from pathlib import Path

import numpy as np

from quality.engine import gate, masks
from quality.engine.errors import EngineInputError
from quality.engine.matching import image_sizes, load_coco, segmentation_rle
from quality.engine.reports import Finding, IntrinsicReport

DUPLICATE_IOU = 0.95
TINY_AREA = 16
AREA_EDGES = (0, 16, 64, 256, 1024, 4096, 16384, 65536)
CODES = (
    "invalid_polygon",
    "self_intersecting_polygon",
    "mask_outside_image",
    "empty_mask",
    "duplicate_instance",
    "tiny_mask",
    "image_without_annotations",
    "unknown_image",
    "unknown_category",
)


def _polygon_points(poly: object) -> np.ndarray | None:
    """``[n, 2]`` float points, or None when the polygon is malformed."""
    if not isinstance(poly, (list, tuple)) or len(poly) < 6 or len(poly) % 2:
        return None
    try:
        pts = np.asarray(poly, dtype=np.float64).reshape(-1, 2)
    except (TypeError, ValueError):
        return None
    if not np.all(np.isfinite(pts)):
        return None
    x, y = pts[:, 0], pts[:, 1]
    area = 0.5 * abs(np.dot(x, np.roll(y, -1)) - np.dot(y, np.roll(x, -1)))
    return pts if area > 0 else None


# Edges compared against all others per block: memory stays O(BLOCK x n) for a polygon of n
# points (a seller's 100k-point polygon must not need n^2 memory); the result is the same.
SELF_INTERSECT_BLOCK = 256


def polygon_self_intersects(pts: np.ndarray) -> bool:
    """Whether two non-adjacent edges of the closed polygon ``pts`` cross (proper crossings)."""
    n = len(pts)
    if n < 4:
        return False
    a, b = pts, np.roll(pts, -1, axis=0)  # edge i: a[i] -> b[i]

    def orient(p, q, r):
        return (q[..., 0] - p[..., 0]) * (r[..., 1] - p[..., 1]) - (q[..., 1] - p[..., 1]) * (r[..., 0] - p[..., 0])

    aj, bj = a[None, :, :], b[None, :, :]
    j = np.arange(n)[None, :]
    for start in range(0, n, SELF_INTERSECT_BLOCK):
        stop = min(n, start + SELF_INTERSECT_BLOCK)
        ai, bi = a[start:stop, None, :], b[start:stop, None, :]
        cross = (orient(ai, bi, aj) * orient(ai, bi, bj) < 0) & (orient(aj, bj, ai) * orient(aj, bj, bi) < 0)
        i = np.arange(start, stop)[:, None]
        # non-adjacent pairs, each once (j >= i + 2); the first and last edges share a vertex
        cross &= (j >= i + 2) & ~((i == 0) & (j == n - 1))
        if cross.any():
            return True
    return False


def intrinsic_checks(
    coco: str | Path | dict,
    *,
    tiny_area: int = TINY_AREA,
    duplicate_iou: float = DUPLICATE_IOU,
    max_examples: int = 10,
) -> IntrinsicReport:
    """Run every intrinsic check on a COCO annotation file or dict."""
    data = load_coco(coco, "annotations")
    return intrinsic_checks_streamed(
        images=data.get("images", []), categories=data.get("categories", []), annotations=data["annotations"],
        tiny_area=tiny_area, duplicate_iou=duplicate_iou, max_examples=max_examples,
    )


def intrinsic_checks_streamed(
    *,
    images: Sequence[dict],
    categories: Sequence[dict],
    annotations: Iterable[dict],
    tiny_area: int = TINY_AREA,
    duplicate_iou: float = DUPLICATE_IOU,
    max_examples: int = 10,
) -> IntrinsicReport:
    """:func:`intrinsic_checks` over ``annotations`` read once, as they come (a streaming
    parser's iterator): memory holds each kept mask as its compressed RLE with its id and
    class, never the annotations themselves."""
    image_sizes({"images": images})  # every image's size within the gate's bounds (else an error, not a finding)
    images = {img["id"]: img for img in images}
    categories = {cat["id"] for cat in categories}
    found: dict[str, list] = {code: [] for code in CODES}
    areas: list[int] = []
    per_image: dict[int, list[tuple[object, object, dict]]] = defaultdict(list)  # (id, category id, mask)
    class_counts: Counter = Counter()
    counts_per_image: Counter = Counter()
    n_annotations = 0

    for index, ann in enumerate(annotations):
        n_annotations += 1
        counts_per_image[ann.get("image_id")] += 1
        ann_id = ann.get("id", index)
        image = images.get(ann.get("image_id"))
        if ann.get("category_id") not in categories:
            found["unknown_category"].append(ann_id)
        class_counts[ann.get("category_id")] += 1
        if image is None:
            found["unknown_image"].append(ann_id)
            continue
        h, w = int(image["height"]), int(image["width"])
        seg = ann.get("segmentation")
        flagged = False
        if isinstance(seg, list):
            invalid = outside = crossing = False
            for poly in seg:
                pts = _polygon_points(poly)
                if pts is None:
                    invalid = True
                    continue
                if pts[:, 0].min() < 0 or pts[:, 1].min() < 0 or pts[:, 0].max() > w or pts[:, 1].max() > h:
                    outside = True
                if polygon_self_intersects(pts):
                    crossing = True
            if invalid or not seg:
                found["invalid_polygon"].append(ann_id)
                flagged = True
            if outside:
                found["mask_outside_image"].append(ann_id)
            if crossing:
                found["self_intersecting_polygon"].append(ann_id)
        elif isinstance(seg, dict) and getattr(gate.rle_size_issue(seg, h, w, ""), "code", None) == "rle_size_mismatch":
            found["mask_outside_image"].append(ann_id)
            continue
        try:
            rle = segmentation_rle(seg, h, w, location=f"annotations[{index}].segmentation")
        except EngineInputError:  # the gate refused it: not rasterized, counted once
            if not flagged:
                found["invalid_polygon"].append(ann_id)
            continue
        area = masks.area(rle)
        areas.append(area)
        if area == 0:
            found["empty_mask"].append(ann_id)
        elif area < tiny_area:
            found["tiny_mask"].append(ann_id)
        if not ann.get("iscrowd", 0) and area > 0:
            per_image[ann["image_id"]].append((ann.get("id"), ann["category_id"], rle))

    for items in per_image.values():
        by_cat: dict[object, list[tuple[object, dict]]] = defaultdict(list)
        for ann_id, category_id, rle in items:
            by_cat[category_id].append((ann_id, rle))
        for group in by_cat.values():
            if len(group) < 2:
                continue
            rles = [rle for _, rle in group]
            ious = masks.iou(rles, rles)
            for i, j in zip(*np.triu_indices(len(rles), k=1), strict=True):
                if ious[i, j] > duplicate_iou:
                    found["duplicate_instance"].append(group[j][0])

    found["image_without_annotations"] = [i for i in images if counts_per_image.get(i, 0) == 0]
    per_image_counts = np.array([counts_per_image.get(i, 0) for i in images], dtype=np.int64)

    findings = [Finding(code=code, count=len(ids), examples=list(ids[:max_examples])) for code, ids in found.items()]
    edges = list(AREA_EDGES)
    bins = np.searchsorted(np.array(edges[1:]), np.array(areas, dtype=np.int64), side="right")
    area_counts = np.bincount(bins, minlength=len(edges)).tolist() if areas else [0] * len(edges)
    class_distribution = {str(c): int(class_counts.get(c, 0)) for c in sorted(categories)}
    for c, n in class_counts.items():
        if c not in categories:
            class_distribution[str(c)] = int(n)
    return IntrinsicReport(
        n_images=len(images),
        n_annotations=n_annotations,
        findings=findings,
        class_distribution=class_distribution,
        instances_per_image={
            "min": int(per_image_counts.min()) if per_image_counts.size else None,
            "max": int(per_image_counts.max()) if per_image_counts.size else None,
            "mean": float(per_image_counts.mean()) if per_image_counts.size else None,
            "median": float(np.median(per_image_counts)) if per_image_counts.size else None,
        },
        instances_per_image_histogram={str(k): int(v) for k, v in sorted(Counter(per_image_counts.tolist()).items())},
        # bin k holds areas in [edges[k], edges[k+1]); the last bin is open-ended
        area_histogram={"edges": edges, "counts": area_counts},
    )
