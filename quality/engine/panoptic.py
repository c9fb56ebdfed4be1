"""Panoptic quality (Kirillov et al. 2019): PQ, SQ, RQ equal to panopticapi's ``pq_compute``.

Follows ``pq_compute_single_core`` then ``PQStat.pq_average`` step by step, in the same
order, so the floating-point sums are the reference's: VOID (id 0) is ignored, crowd
reference segments match nothing, a pair matches when IoU > 0.5 with the VOID part of
the prediction left out of the union, and an unmatched prediction whose area lies more
than half in VOID or in the reference crowd region of its class is not a false positive.
Reference areas come from the reference JSON (as in panopticapi); prediction areas are
counted in the PNG.

PNGs are found either in a folder (the command line, panopticapi's layout) or through a
mapping from each annotation's ``file_name`` to a local file that the caller resolved from
its own file index (the app: a name read from an uploaded JSON is a key, never a path).
Intervals are a seeded percentile bootstrap over images, as for the other reports.

:func:`merged_instances` is the check buyers ask for on a seller's panoptic PNGs: a segment
of a *thing* (countable) class whose pixels form several sizeable disconnected blobs is
likely several instances painted with one id.
"""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from quality.engine.bootstrap import bootstrap_indices, interval_from_draws
from quality.engine.errors import EngineInputError
from quality.engine.files import FolderIndex
from quality.engine.reports import MergedInstance, MergedInstancesReport, PanopticReport, PQFigures

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


class PngSource:
    """Where the PNG of a ``file_name`` is: a mapping resolved by the caller, else a folder."""

    def __init__(self, folder: str | Path | None = None, files: Mapping[str, str | Path] | None = None) -> None:
        if (folder is None) == (files is None):
            raise ValueError("give a folder or a mapping of file names, not both")
        # A folder is listed, never joined with a name from the JSON (files.FolderIndex).
        self.files = files if files is not None else FolderIndex(folder)

    def load(self, file_name: Any) -> np.ndarray:
        if not isinstance(file_name, str):
            raise EngineInputError("missing_png", "a panoptic annotation names its PNG", location="file_name")
        found = self.files.get(file_name)
        path = Path(found) if found is not None else None
        if path is None or not path.is_file():
            raise EngineInputError("missing_png", f"panoptic PNG {file_name!r} not found", location=file_name)
        with Image.open(path) as img:
            if img.mode != "RGB":
                raise EngineInputError("png_not_rgb", f"panoptic PNG {file_name!r} is {img.mode}, not RGB", location=file_name)
            return rgb2id(np.array(img, dtype=np.uint32))


def _image_stats(gt_ann: dict, pred_ann: dict, gt_png: PngSource, pred_png: PngSource, categories: dict, stats, image_stats) -> None:
    """Adds one image's matches to ``stats`` (the running sums, in panopticapi's order) and
    to ``image_stats`` (this image alone, for the bootstrap)."""
    pan_gt = gt_png.load(gt_ann["file_name"])
    pan_pred = pred_png.load(pred_ann["file_name"])
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
            for per in (stats, image_stats):
                stat = per[gt_segms[gt_label]["category_id"]]
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
        image_stats[gt_info["category_id"]].fn += 1

    for pred_label, pred_info in pred_segms.items():
        if pred_label in pred_matched:
            continue
        intersection = gt_pred_map.get((VOID, pred_label), 0)
        if pred_info["category_id"] in crowd_labels_dict:
            intersection += gt_pred_map.get((crowd_labels_dict[pred_info["category_id"]], pred_label), 0)
        if intersection / pred_info["area"] > 0.5:
            continue
        stats[pred_info["category_id"]].fp += 1
        image_stats[pred_info["category_id"]].fp += 1


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


GROUPS = {"all": None, "things": True, "stuff": False}


def panoptic_quality(
    gt: str | Path | dict,
    pred: str | Path | dict,
    *,
    gt_dir: str | Path | None = None,
    pred_dir: str | Path | None = None,
    gt_files: Mapping[str, str | Path] | None = None,
    pred_files: Mapping[str, str | Path] | None = None,
    n_boot: int = 0,
    seed: int = 0,
) -> PanopticReport:
    """PQ/SQ/RQ of ``pred`` against ``gt`` (COCO panoptic JSON + PNGs), as panopticapi computes
    them. PNGs come from ``gt_dir``/``pred_dir`` or from ``gt_files``/``pred_files``
    (``file_name`` -> local path). ``n_boot`` > 0 adds 95 % intervals (images resampled)."""
    gt_json = _load_json(gt, "reference JSON")
    pred_json = _load_json(pred, "prediction JSON")
    for key, data, what in (("annotations", gt_json, "reference"), ("annotations", pred_json, "prediction")):
        if key not in data:
            raise EngineInputError("missing_field", f"{what} JSON has no '{key}'", location=key)
    if "categories" not in gt_json:
        raise EngineInputError("missing_field", "reference JSON has no 'categories'", location="categories")
    gt_png = PngSource(gt_dir, gt_files)
    pred_png = PngSource(pred_dir, pred_files)
    categories = {el["id"]: el for el in gt_json["categories"]}
    pred_by_image = {ann["image_id"]: ann for ann in pred_json["annotations"]}
    stats: defaultdict[int, _CategoryStat] = defaultdict(_CategoryStat)
    per_image: list[defaultdict[int, _CategoryStat]] = []
    for gt_ann in gt_json["annotations"]:
        image_id = gt_ann["image_id"]
        if image_id not in pred_by_image:
            raise EngineInputError("missing_prediction", f"no prediction for image {image_id}", location="annotations")
        per_image.append(defaultdict(_CategoryStat))
        _image_stats(gt_ann, pred_by_image[image_id], gt_png, pred_png, categories, stats, per_image[-1])

    all_, per_class = _average(stats, categories, None)
    things, _ = _average(stats, categories, True)
    stuff, _ = _average(stats, categories, False)
    counts = {str(k): {"tp": stats[k].tp, "fp": stats[k].fp, "fn": stats[k].fn} for k in categories}
    report = PanopticReport(
        n_images=len(gt_json["annotations"]),
        all=all_,
        things=things,
        stuff=stuff,
        per_class=per_class,
        counts=counts,
    )
    if n_boot > 0:
        report.intervals = _intervals(per_image, categories, report, n_boot=n_boot, seed=seed)
    return report


def _intervals(per_image: list, categories: dict, report: PanopticReport, *, n_boot: int, seed: int) -> dict:
    """Percentile intervals of PQ/SQ/RQ per group: images resampled with replacement, each
    draw's figures computed from its summed per-class counts as :func:`_average` does."""
    labels = list(categories)
    n = len(per_image)
    arrays = {name: np.zeros((n, len(labels))) for name in ("iou", "tp", "fp", "fn")}
    for i, image in enumerate(per_image):
        for j, label in enumerate(labels):
            if label in image:
                s = image[label]
                arrays["iou"][i, j], arrays["tp"][i, j], arrays["fp"][i, j], arrays["fn"][i, j] = s.iou, s.tp, s.fp, s.fn
    indices = bootstrap_indices(n, n_boot=n_boot, seed=seed)
    sums = {name: a[indices].sum(axis=1) for name, a in arrays.items()}  # [n_boot, n_classes]
    present = (sums["tp"] + sums["fp"] + sums["fn"]) > 0
    half = sums["tp"] + 0.5 * sums["fp"] + 0.5 * sums["fn"]
    with np.errstate(divide="ignore", invalid="ignore"):
        pq = np.where(present, sums["iou"] / half, 0.0)
        sq = np.where(sums["tp"] > 0, sums["iou"] / sums["tp"], 0.0)
        rq = np.where(present, sums["tp"] / half, 0.0)
    out = {}
    for group, isthing in GROUPS.items():
        member = np.array([isthing is None or (categories[label].get("isthing", 1) == 1) == isthing for label in labels], dtype=bool)
        counted = present & member
        k = counted.sum(axis=1)
        point = getattr(report, group)
        for name, values in (("pq", pq), ("sq", sq), ("rq", rq)):
            with np.errstate(divide="ignore", invalid="ignore"):
                draws = np.where(k > 0, (values * counted).sum(axis=1) / k, np.nan)
            out[f"{group}_{name}"] = interval_from_draws(draws, point=getattr(point, name) if point.n else None, n_boot=n_boot, seed=seed)
    return {key: ci for key, ci in out.items() if ci is not None}


def merged_instances(
    panoptic: dict,
    *,
    png_files: Mapping[str, str | Path],
    min_blob_pixels: int = 16,
    min_blob_fraction: float = 0.1,
    max_examples: int = 20,
) -> MergedInstancesReport:
    """Segments of *thing* classes whose pixels form two or more disconnected blobs, each at
    least ``min_blob_pixels`` and ``min_blob_fraction`` of the segment (8-connectivity, so
    a thin diagonal does not split a blob; specks below the bounds are ignored, as an
    occluder may cut small pieces off one object)."""
    from scipy import ndimage

    categories = {el["id"]: el for el in panoptic.get("categories", [])}
    source = PngSource(files=png_files)
    structure = np.ones((3, 3), dtype=bool)
    checked = flagged = 0
    examples: list[MergedInstance] = []
    per_class: dict[str, int] = {}
    for ann in panoptic.get("annotations", []):
        things = [seg for seg in ann.get("segments_info", []) if categories.get(seg.get("category_id"), {}).get("isthing", 1) == 1]
        if not things:
            continue
        ids = source.load(ann.get("file_name"))
        for seg in things:
            mask = ids == seg["id"]
            area = int(mask.sum())
            if area == 0:
                continue
            checked += 1
            labelled, count = ndimage.label(mask, structure=structure)
            if count < 2:
                continue
            sizes = np.bincount(labelled.ravel())[1:]
            floor = max(min_blob_pixels, min_blob_fraction * area)
            blobs = sorted((int(v) for v in sizes if v >= floor), reverse=True)
            if len(blobs) < 2:
                continue
            flagged += 1
            key = str(seg["category_id"])
            per_class[key] = per_class.get(key, 0) + 1
            if len(examples) < max_examples:
                examples.append(
                    MergedInstance(
                        image_id=ann["image_id"], file_name=ann["file_name"], segment_id=seg["id"], category_id=seg["category_id"], blobs=len(blobs), blob_areas=blobs
                    )
                )
    return MergedInstancesReport(n_segments=checked, n_flagged=flagged, per_class=per_class, examples=examples)
