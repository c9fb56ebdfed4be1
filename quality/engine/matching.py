"""One-to-one instance matching for audits and agreement.

Per image (and per category unless told otherwise), the Hungarian algorithm
(``scipy.optimize.linear_sum_assignment``) pairs instances so that the sum of mask IoUs
is largest. Pairs with IoU 0 are dropped; callers count a pair as a match at their own
threshold (0.5). Crowd annotations (``iscrowd=1``) mark regions, not
instances, and take no part in matching.

Also here: reading COCO JSON and turning any COCO segmentation (polygons, uncompressed
or compressed RLE) into compressed RLE through pycocotools.
"""

from __future__ import annotations

import json
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from pycocotools import mask as mask_utils
from scipy.optimize import linear_sum_assignment

from quality.engine.errors import EngineInputError

MATCH_IOU = 0.5


def load_coco(source: str | Path | dict, what: str = "annotations") -> dict:
    """A COCO dict from a dict or a JSON path; bad input raises :class:`EngineInputError`."""
    if isinstance(source, dict):
        data = source
    else:
        path = Path(source)
        if not path.is_file():
            raise EngineInputError("file_not_found", f"{what} file not found", location=str(path))
        try:
            data = json.loads(path.read_text())
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise EngineInputError("invalid_json", f"{what} is not valid JSON", location=str(path)) from exc
    if not isinstance(data, dict) or not isinstance(data.get("annotations"), list):
        raise EngineInputError("missing_field", f"{what} has no 'annotations' list", location="annotations")
    return data


def segmentation_rle(segmentation: Any, height: int, width: int, *, location: str = "segmentation") -> dict:
    """Compressed RLE (``counts`` as bytes) of a COCO segmentation of an image ``height`` x ``width``."""
    try:
        if isinstance(segmentation, list):
            polygons = [p for p in segmentation if len(p) >= 6]
            if not polygons:
                return mask_utils.encode(np.zeros((height, width), dtype=np.uint8, order="F"))
            return mask_utils.merge(mask_utils.frPyObjects(polygons, height, width))
        if isinstance(segmentation, dict) and isinstance(segmentation.get("counts"), list):
            return mask_utils.frPyObjects(segmentation, height, width)
        if isinstance(segmentation, dict) and "counts" in segmentation:
            counts = segmentation["counts"]
            rle = {"size": list(segmentation["size"]), "counts": counts.encode() if isinstance(counts, str) else counts}
            return rle
    except (TypeError, ValueError, KeyError) as exc:
        raise EngineInputError("invalid_segmentation", str(exc), location=location) from exc
    raise EngineInputError("invalid_segmentation", "not a polygon list or RLE", location=location)


def image_sizes(coco: dict) -> dict[int, tuple[int, int]]:
    """``image_id -> (height, width)`` from ``images``."""
    return {img["id"]: (int(img["height"]), int(img["width"])) for img in coco.get("images", [])}


def annotations_by_image(coco: dict) -> dict[int, list[dict]]:
    grouped: dict[int, list[dict]] = defaultdict(list)
    for ann in coco["annotations"]:
        grouped[ann["image_id"]].append(ann)
    return grouped


def iou_matrix(a: list[dict], b: list[dict]) -> np.ndarray:
    """Plain mask IoU ``[len(a), len(b)]`` of two lists of RLEs (no crowd semantics)."""
    if not a or not b:
        return np.zeros((len(a), len(b)), dtype=np.float64)
    return np.asarray(mask_utils.iou(a, b, [0] * len(b)), dtype=np.float64).reshape(len(a), len(b))


def hungarian_pairs(ious: np.ndarray) -> list[tuple[int, int, float]]:
    """Rows and columns paired one-to-one maximising the sum of IoU; pairs with IoU 0 dropped."""
    if ious.size == 0:
        return []
    rows, cols = linear_sum_assignment(ious, maximize=True)
    return [(int(r), int(c), float(ious[r, c])) for r, c in zip(rows, cols, strict=True) if ious[r, c] > 0.0]


@dataclass(frozen=True, kw_only=True)
class MatchedPair:
    a_id: Any
    b_id: Any
    a_category: int
    b_category: int
    iou: float
    a_index: int
    b_index: int


@dataclass(frozen=True, kw_only=True)
class ImageMatching:
    image_id: int
    n_a: int
    n_b: int
    pairs: list[MatchedPair]

    def matched(self, threshold: float = MATCH_IOU) -> list[MatchedPair]:
        return [p for p in self.pairs if p.iou >= threshold]


def match_image(
    a_anns: list[dict],
    b_anns: list[dict],
    a_rles: list[dict],
    b_rles: list[dict],
    *,
    image_id: int,
    by_category: bool = True,
) -> ImageMatching:
    """Hungarian matching of two annotation lists of one image (crowd annotations already left out)."""
    groups: dict[Any, tuple[list[int], list[int]]] = defaultdict(lambda: ([], []))
    for i, ann in enumerate(a_anns):
        groups[ann["category_id"] if by_category else None][0].append(i)
    for j, ann in enumerate(b_anns):
        groups[ann["category_id"] if by_category else None][1].append(j)
    pairs: list[MatchedPair] = []
    for key in sorted(groups, key=lambda k: (k is None, k)):
        ia, ib = groups[key]
        ious = iou_matrix([a_rles[i] for i in ia], [b_rles[j] for j in ib])
        for r, c, iou in hungarian_pairs(ious):
            i, j = ia[r], ib[c]
            pairs.append(
                MatchedPair(
                    a_id=a_anns[i].get("id"),
                    b_id=b_anns[j].get("id"),
                    a_category=a_anns[i]["category_id"],
                    b_category=b_anns[j]["category_id"],
                    iou=iou,
                    a_index=i,
                    b_index=j,
                )
            )
    return ImageMatching(image_id=image_id, n_a=len(a_anns), n_b=len(b_anns), pairs=pairs)


@dataclass(kw_only=True)
class PreparedImage:
    """One image's non-crowd annotations of both sides with their RLEs."""

    image_id: int
    height: int
    width: int
    a_anns: list[dict]
    b_anns: list[dict]
    a_rles: list[dict]
    b_rles: list[dict]


def prepare_images(a: dict, b: dict, image_ids: list[int], *, a_name: str, b_name: str) -> list[PreparedImage]:
    """Rasterise both sides' non-crowd annotations of ``image_ids`` (sizes from ``a``'s images, else ``b``'s)."""
    sizes = {**image_sizes(b), **image_sizes(a)}
    a_by_image, b_by_image = annotations_by_image(a), annotations_by_image(b)
    prepared = []
    for image_id in image_ids:
        if image_id not in sizes:
            raise EngineInputError("unknown_image", f"image {image_id} has no size in 'images'", location="images")
        h, w = sizes[image_id]
        sides = []
        for anns, name in ((a_by_image.get(image_id, []), a_name), (b_by_image.get(image_id, []), b_name)):
            kept = [ann for ann in anns if not ann.get("iscrowd", 0)]
            rles = [segmentation_rle(ann.get("segmentation"), h, w, location=f"{name} annotation {ann.get('id')}") for ann in kept]
            sides.append((kept, rles))
        prepared.append(
            PreparedImage(
                image_id=image_id,
                height=h,
                width=w,
                a_anns=sides[0][0],
                b_anns=sides[1][0],
                a_rles=sides[0][1],
                b_rles=sides[1][1],
            )
        )
    return prepared
