"""Panoptic quality (Kirillov et al. 2019): PQ, SQ, RQ equal to panopticapi's ``pq_compute``.

Follows ``pq_compute_single_core`` then ``PQStat.pq_average`` step by step, in the same
order, so the floating-point sums are the reference's: VOID (id 0) is ignored, crowd
reference segments match nothing, a pair matches when IoU > 0.5 with the VOID part of
the prediction left out of the union, and an unmatched prediction whose area lies more
than half in VOID or in the reference crowd region of its class is not a false positive.
Reference areas come from the reference JSON (as in panopticapi); prediction areas are
counted in the PNG.
"""

from __future__ import annotations

import json
from collections import defaultdict
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from quality.engine.errors import EngineInputError
from quality.engine.reports import PanopticReport, PQFigures

OFFSET = 256 * 256 * 256
VOID = 0


class _CategoryStat:
    __slots__ = ("iou", "tp", "fp", "fn")

    def __init__(self) -> None:
        self.iou = 0.0
        self.tp = 0
        self.fp = 0
        self.fn = 0


def rgb2id(color: np.ndarray) -> np.ndarray:
    """Segment ids from a panoptic PNG: ``R + 256 G + 256^2 B``."""
    color = color.astype(np.uint32)
    return color[:, :, 0] + 256 * color[:, :, 1] + 256 * 256 * color[:, :, 2]


def _load_json(source: str | Path | dict, what: str) -> dict:
    if isinstance(source, dict):
        return source
    try:
        return json.loads(Path(source).read_text())
    except json.JSONDecodeError as exc:
        raise EngineInputError("invalid_json", f"{what} is not JSON: {exc.msg}", location=str(source)) from exc


def _load_png(folder: Path, file_name: str) -> np.ndarray:
    path = folder / file_name
    if not path.is_file():
        raise EngineInputError("missing_png", "panoptic PNG not found", location=str(path))
    return rgb2id(np.array(Image.open(path), dtype=np.uint32))


def _image_stats(gt_ann: dict, pred_ann: dict, gt_dir: Path, pred_dir: Path, categories: dict, stats) -> None:
    pan_gt = _load_png(gt_dir, gt_ann["file_name"])
    pan_pred = _load_png(pred_dir, pred_ann["file_name"])
    if pan_gt.shape != pan_pred.shape:
        raise EngineInputError("shape_mismatch", f"PNG sizes differ: {pan_gt.shape} vs {pan_pred.shape}", location=pred_ann["file_name"])
    image_id = gt_ann["image_id"]
    gt_segms = {el["id"]: dict(el) for el in gt_ann["segments_info"]}
    pred_segms = {el["id"]: dict(el) for el in pred_ann["segments_info"]}

    pred_labels_set = set(pred_segms)
    labels, labels_cnt = np.unique(pan_pred, return_counts=True)
    for label, label_cnt in zip(labels, labels_cnt, strict=True):
        if label not in pred_segms:
            if label == VOID:
                continue
            raise EngineInputError(
                "segment_not_in_json",
                f"segment {int(label)} is in the PNG but not in the JSON",
                location=f"image {image_id}",
            )
        pred_segms[label]["area"] = label_cnt
        pred_labels_set.remove(label)
        if pred_segms[label]["category_id"] not in categories:
            raise EngineInputError(
                "unknown_category",
                f"segment {int(label)} has unknown category_id {pred_segms[label]['category_id']}",
                location=f"image {image_id}",
            )
    if pred_labels_set:
        raise EngineInputError(
            "segment_not_in_png",
            f"segments {sorted(pred_labels_set)} are in the JSON but not in the PNG",
            location=f"image {image_id}",
        )

    pan_gt_pred = pan_gt.astype(np.uint64) * OFFSET + pan_pred.astype(np.uint64)
    gt_pred_map: dict[tuple[int, int], Any] = {}
    labels, labels_cnt = np.unique(pan_gt_pred, return_counts=True)
    for label, intersection in zip(labels, labels_cnt, strict=True):
        gt_pred_map[(int(label // OFFSET), int(label % OFFSET))] = intersection

    gt_matched: set[int] = set()
    pred_matched: set[int] = set()
    for (gt_label, pred_label), intersection in gt_pred_map.items():
        if gt_label not in gt_segms or pred_label not in pred_segms:
            continue
        if gt_segms[gt_label]["iscrowd"] == 1:
            continue
        if gt_segms[gt_label]["category_id"] != pred_segms[pred_label]["category_id"]:
            continue
        union = pred_segms[pred_label]["area"] + gt_segms[gt_label]["area"] - intersection - gt_pred_map.get((VOID, pred_label), 0)
        iou = intersection / union
        if iou > 0.5:
            stat = stats[gt_segms[gt_label]["category_id"]]
            stat.tp += 1
            stat.iou += iou
            gt_matched.add(gt_label)
            pred_matched.add(pred_label)

    crowd_labels_dict: dict[int, int] = {}
    for gt_label, gt_info in gt_segms.items():
        if gt_label in gt_matched:
            continue
        if gt_info["iscrowd"] == 1:
            crowd_labels_dict[gt_info["category_id"]] = gt_label
            continue
        stats[gt_info["category_id"]].fn += 1

    for pred_label, pred_info in pred_segms.items():
        if pred_label in pred_matched:
            continue
        intersection = gt_pred_map.get((VOID, pred_label), 0)
        if pred_info["category_id"] in crowd_labels_dict:
            intersection += gt_pred_map.get((crowd_labels_dict[pred_info["category_id"]], pred_label), 0)
        if intersection / pred_info["area"] > 0.5:
            continue
        stats[pred_info["category_id"]].fp += 1


def _average(stats, categories: dict, isthing: bool | None) -> tuple[PQFigures, dict[str, PQFigures]]:
    pq = sq = rq = 0.0
    n = 0
    per_class: dict[str, PQFigures] = {}
    for label, info in categories.items():
        if isthing is not None and (info.get("isthing", 1) == 1) != isthing:
            continue
        s = stats[label]
        if s.tp + s.fp + s.fn == 0:
            per_class[str(label)] = PQFigures(pq=0.0, sq=0.0, rq=0.0)
            continue
        n += 1
        pq_class = s.iou / (s.tp + 0.5 * s.fp + 0.5 * s.fn)
        sq_class = s.iou / s.tp if s.tp != 0 else 0.0
        rq_class = s.tp / (s.tp + 0.5 * s.fp + 0.5 * s.fn)
        per_class[str(label)] = PQFigures(pq=float(pq_class), sq=float(sq_class), rq=float(rq_class))
        pq += pq_class
        sq += sq_class
        rq += rq_class
    if n == 0:  # panopticapi divides by zero here; an empty group reports zeros
        return PQFigures(pq=0.0, sq=0.0, rq=0.0, n=0), per_class
    return PQFigures(pq=float(pq / n), sq=float(sq / n), rq=float(rq / n), n=n), per_class


def panoptic_quality(
    gt: str | Path | dict,
    pred: str | Path | dict,
    *,
    gt_dir: str | Path,
    pred_dir: str | Path,
) -> PanopticReport:
    """PQ/SQ/RQ of ``pred`` against ``gt`` (COCO panoptic JSON + PNG folders), as panopticapi computes them."""
    gt_json = _load_json(gt, "reference JSON")
    pred_json = _load_json(pred, "prediction JSON")
    for key, data, what in (("annotations", gt_json, "reference"), ("annotations", pred_json, "prediction")):
        if key not in data:
            raise EngineInputError("missing_field", f"{what} JSON has no '{key}'", location=key)
    if "categories" not in gt_json:
        raise EngineInputError("missing_field", "reference JSON has no 'categories'", location="categories")
    categories = {el["id"]: el for el in gt_json["categories"]}
    pred_by_image = {ann["image_id"]: ann for ann in pred_json["annotations"]}
    stats: defaultdict[int, _CategoryStat] = defaultdict(_CategoryStat)
    gt_dir, pred_dir = Path(gt_dir), Path(pred_dir)
    for gt_ann in gt_json["annotations"]:
        image_id = gt_ann["image_id"]
        if image_id not in pred_by_image:
            raise EngineInputError("missing_prediction", f"no prediction for image {image_id}", location="annotations")
        _image_stats(gt_ann, pred_by_image[image_id], gt_dir, pred_dir, categories, stats)

    all_, per_class = _average(stats, categories, None)
    things, _ = _average(stats, categories, True)
    stuff, _ = _average(stats, categories, False)
    counts = {str(k): {"tp": stats[k].tp, "fp": stats[k].fp, "fn": stats[k].fn} for k in categories}
    return PanopticReport(
        n_images=len(gt_json["annotations"]),
        all=all_,
        things=things,
        stuff=stuff,
        per_class=per_class,
        counts=counts,
    )
