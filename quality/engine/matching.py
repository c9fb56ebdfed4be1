"""One-to-one instance matching for audits and agreement.

Per image (and per category unless told otherwise), the Hungarian algorithm
(``scipy.optimize.linear_sum_assignment``) pairs instances so that the sum of mask IoUs
is largest. Pairs with IoU 0 are dropped; callers count a pair as a match at their own
threshold (0.5). Crowd annotations (``iscrowd=1``) mark regions, not
instances, and take no part in matching.

Also here: reading COCO JSON, its image sizes and its segmentations, which pass the gate
(:mod:`quality.engine.gate`) and become :class:`CheckedRLE` masks.
"""

from __future__ import annotations

import json
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from scipy.optimize import linear_sum_assignment

from quality.engine import gate, masks
from quality.engine.errors import EngineInputError
from quality.engine.gate import CheckedRLE

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


def segmentation_rle(segmentation: Any, height: int, width: int, *, location: str = "segmentation") -> CheckedRLE:
    """The checked mask of one COCO segmentation on an image ``height`` x ``width`` (the
    gate's :class:`EngineInputError` when it breaks a rule; ``location`` is its JSON path)."""
    return masks.to_rles([segmentation], [height], [width], locations=[location])[0]


def image_sizes(coco: dict) -> dict[int, tuple[int, int]]:
    """``image_id -> (height, width)`` from ``images``, each size within the gate's bounds."""
    sizes: dict[int, tuple[int, int]] = {}
    for i, img in enumerate(coco.get("images", [])):
        if not isinstance(img, dict) or "id" not in img:
            raise EngineInputError("missing_field", "an image needs an id", location=f"images[{i}]")
        h, w = img.get("height"), img.get("width")
        issue = gate.dims_issue(h, w, f"images[{i}]")
        if issue is not None:
            raise issue.error()
        sizes[img["id"]] = (int(h), int(w))
    return sizes


def indices_by_image(coco: dict) -> dict[int, list[int]]:
    """``image_id -> positions in annotations`` (for JSON paths)."""
    grouped: dict[int, list[int]] = defaultdict(list)
    for index, ann in enumerate(coco["annotations"]):
        grouped[ann["image_id"]].append(index)
    return grouped


def image_rles(coco: dict, indices: list[int], height: int, width: int) -> list[CheckedRLE]:
    """The checked masks of ``annotations[i]`` for i in ``indices``, all on one image."""
    anns = coco["annotations"]
    return masks.to_rles(
        [anns[i].get("segmentation") for i in indices],
        [height] * len(indices),
        [width] * len(indices),
        locations=[f"annotations[{i}].segmentation" for i in indices],
    )


def iou_matrix(a: list[CheckedRLE], b: list[CheckedRLE]) -> np.ndarray:
    """Plain mask IoU ``[len(a), len(b)]`` of two lists of masks (no crowd semantics)."""
    return masks.iou(a, b)


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


def prepare_images(a: dict, b: dict, image_ids: list[int]) -> list[PreparedImage]:
    """Rasterise both sides' non-crowd annotations of ``image_ids`` (sizes from ``a``'s images, else ``b``'s)."""
    sizes = {**image_sizes(b), **image_sizes(a)}
    a_by_image, b_by_image = indices_by_image(a), indices_by_image(b)
    prepared = []
    for image_id in image_ids:
        if image_id not in sizes:
            raise EngineInputError("unknown_image", f"image {image_id} has no size in 'images'", location="images")
        h, w = sizes[image_id]
        sides = []
        for coco, by_image in ((a, a_by_image), (b, b_by_image)):
            kept = [i for i in by_image.get(image_id, []) if not coco["annotations"][i].get("iscrowd", 0)]
            sides.append(([coco["annotations"][i] for i in kept], image_rles(coco, kept, h, w)))
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
