"""Audit comparison: seller masks against reference masks on the audit sample.

Matching is one-to-one per image and category maximising IoU (:mod:`quality.engine.matching`);
a pair counts as matched at IoU >= 0.5. COCO mask AP comes from the engine's COCO
evaluator (equal to pycocotools' COCOeval) with the seller's masks as detections. Seller
annotations carry no confidence, so one without ``score`` scores 1.0: the AP then ranks
ties in annotation order, as COCOeval's stable sort does (``AuditReport.scores_assumed``).
Crowd annotations take no part in matching; reference crowds are ignore regions for AP
as in COCOeval, and seller crowds are not detections.

Confidence intervals resample images (:mod:`quality.engine.bootstrap`); AP intervals
re-run the evaluator on the resampled images through ``evaluate_cells`` with the IoUs
computed once, exactly as COCOeval computes them.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from quality.engine import gate, masks
from quality.engine.bootstrap import bootstrap_indices, interval_from_draws, ratio_draws
from quality.engine.boundary import boundary_iou
from quality.engine.cocoeval import Cell, EvalParams, evaluate, evaluate_cells
from quality.engine.errors import EngineInputError
from quality.engine.gate import CheckedRLE
from quality.engine.matching import (
    MATCH_IOU,
    ImageMatching,
    PreparedImage,
    image_rles,
    image_sizes,
    indices_by_image,
    load_coco,
    match_image,
    prepare_images,
)
from quality.engine.reports import AuditImageRow, AuditReport
from quality.engine.tiers import tier_for

HEADLINE_AP = ("ap", "ap50", "ap75", "ap95")


# ---------------------------------------------------------------- COCO AP through the engine's evaluator


def seller_detections(seller: dict, image_ids: set[int], sizes: dict[int, tuple[int, int]]) -> tuple[list[dict], bool]:
    """The seller's non-crowd annotations on ``image_ids`` as COCO results (compressed RLE, ``score``).

    Returns the results and whether any score was assumed (1.0).
    """
    results, assumed = [], False
    anns = seller["annotations"]
    kept = [i for i, ann in enumerate(anns) if ann["image_id"] in image_ids and not ann.get("iscrowd", 0)]
    by_image: dict[int, list[int]] = {}
    for i in kept:
        by_image.setdefault(anns[i]["image_id"], []).append(i)
    rles = {}
    for image_id, indices in by_image.items():
        h, w = sizes[image_id]
        rles.update(zip(indices, image_rles(seller, indices, h, w)))
    for i in kept:
        ann = anns[i]
        if "score" not in ann:
            assumed = True
        results.append(
            {
                "image_id": ann["image_id"],
                "category_id": ann["category_id"],
                "segmentation": rles[i].to_json(),
                "score": float(ann.get("score", 1.0)),
            }
        )
    return results, assumed


def _mean_valid(values: np.ndarray) -> float | None:
    valid = values[values > -1]
    return float(np.mean(valid)) if valid.size else None


def ap_figures(precision: np.ndarray, iou_thrs: np.ndarray, cat_ids: list[int]) -> dict[str, Any]:
    """AP, AP50, AP75, AP95 (area all, largest maxDets) and per-category AP from a COCO precision array."""
    iou_thrs = np.asarray(iou_thrs, dtype=np.float64)
    p = precision[:, :, :, 0, -1]

    def at(thr: float) -> float | None:
        t = np.flatnonzero(np.isclose(iou_thrs, thr))
        return _mean_valid(p[t]) if t.size else None

    return {
        "ap": _mean_valid(p),
        "ap50": at(0.5),
        "ap75": at(0.75),
        "ap95": at(0.95),
        "per_category_ap": {str(c): _mean_valid(p[:, :, k]) for k, c in enumerate(cat_ids)},
        "pr_curves": {
            f"{thr:.2f}": [(_mean_valid(p[t, r, :]) or 0.0) for r in range(p.shape[1])]
            for t, thr in enumerate(iou_thrs)
            if (p[t] > -1).any()
        },
    }


@dataclass(kw_only=True)
class _ApInputs:
    """COCOeval's prepared per-(image, category) inputs, computed once."""

    cells_by_image: dict[int, list[Any]]
    cat_ids: list[int]


def coco_cells(gt: dict, detections: list[dict], image_ids: list[int], cat_ids: list[int], max_det: int) -> _ApInputs:
    """Per-(image, category) Cells as COCOeval's ``_prepare`` and ``computeIoU`` make them (segm)."""

    sizes = image_sizes(gt)
    wanted_images, wanted_cats = set(image_ids), set(cat_ids)
    gts: dict[tuple[int, int], list[tuple[dict, CheckedRLE]]] = {}
    for image_id, indices in indices_by_image(gt).items():
        if image_id not in wanted_images:
            continue
        indices = [i for i in indices if gt["annotations"][i]["category_id"] in wanted_cats]
        h, w = sizes[image_id]
        for i, rle in zip(indices, image_rles(gt, indices, h, w)):
            ann = gt["annotations"][i]
            gts.setdefault((ann["image_id"], ann["category_id"]), []).append((ann, rle))
    dts: dict[tuple[int, int], list[tuple[int, dict]]] = {}
    for index, det in enumerate(detections):
        if det["category_id"] in wanted_cats:
            dts.setdefault((det["image_id"], det["category_id"]), []).append((index + 1, det))
    cells_by_image: dict[int, list[Any]] = {i: [] for i in image_ids}
    for key in sorted(set(gts) | set(dts)):
        img_id, cat_id = key
        g = gts.get(key, [])
        d = dts.get(key, [])
        order = np.argsort([-det["score"] for _, det in d], kind="mergesort")[:max_det]
        d = [d[i] for i in order]
        g_rles = [rle for _, rle in g]
        d_rles = [gate.checked_rle(det["segmentation"], *det["segmentation"]["size"], f"detections[{i - 1}].segmentation") for i, det in d]
        crowd = [int(ann.get("iscrowd", 0)) for ann, _ in g]
        ious = masks.iou(d_rles, g_rles, crowd)
        cells_by_image[img_id].append(
            Cell(
                img_id=img_id,
                cat_id=cat_id,
                ious=ious,
                gt_ids=np.array([ann["id"] for ann, _ in g], dtype=np.int64),
                gt_area=np.array([ann["area"] if "area" in ann else float(masks.area(rle)) for ann, rle in g], dtype=np.float64),
                gt_crowd=np.array(crowd, dtype=bool),
                gt_ignore_flag=np.array(crowd, dtype=bool),
                dt_ids=np.array([i for i, _ in d], dtype=np.int64),
                dt_scores=np.array([det["score"] for _, det in d], dtype=np.float64),
                dt_area=np.array([float(a) for a in masks.rle_areas(d_rles)], dtype=np.float64),
            )
        )
    return _ApInputs(cells_by_image=cells_by_image, cat_ids=list(cat_ids))


def _resampled_cells(inputs: _ApInputs, image_ids: list[int], draw: np.ndarray) -> tuple[list[Any], list[int]]:
    """Cells of a bootstrap draw; the k-th drawn image becomes image ``k + 1`` so repeats stay distinct."""
    from dataclasses import replace

    cells, new_ids = [], []
    for k, index in enumerate(draw):
        new_id = k + 1
        new_ids.append(new_id)
        cells.extend(replace(c, img_id=new_id) for c in inputs.cells_by_image[image_ids[index]])
    return cells, new_ids


# ---------------------------------------------------------------- the audit


@dataclass(kw_only=True)
class _ImageFigures:
    n_reference: int
    n_seller: int
    ious: list[float]
    boundary: list[float]


def _image_figures(image: PreparedImage, matching: ImageMatching, *, match_iou: float, dilation_ratio: float) -> _ImageFigures:
    matched = matching.matched(match_iou)
    boundary = []
    for pair in matched:
        a = masks.decode(image.a_rles[pair.a_index]).astype(bool)
        b = masks.decode(image.b_rles[pair.b_index]).astype(bool)
        boundary.append(boundary_iou(a, b, dilation_ratio=dilation_ratio))
    return _ImageFigures(n_reference=matching.n_a, n_seller=matching.n_b, ious=[p.iou for p in matched], boundary=boundary)


def _ratio(num: float, den: float) -> float | None:
    return float(num / den) if den else None


def audit_compare(
    reference: str | Path | dict,
    seller: str | Path | dict,
    *,
    seed: int = 0,
    n_boot: int = 1000,
    n_boot_ap: int | None = None,
    image_ids: list[int] | None = None,
    match_iou: float = MATCH_IOU,
    dilation_ratio: float = 0.02,
    device: str = "cpu",
) -> AuditReport:
    """Compare seller masks with reference masks on the audit sample.

    The sample is ``image_ids`` or every image of the reference. ``n_boot_ap`` (default
    ``n_boot``) sets the draws for the AP intervals, which cost one evaluation each.
    """
    ref = load_coco(reference, "reference")
    sel = load_coco(seller, "seller annotations")
    if image_ids is None:
        image_ids = sorted(img["id"] for img in ref.get("images", []))
    if not image_ids:
        raise EngineInputError("empty_sample", "the reference has no images to audit", location="images")
    images = prepare_images(ref, sel, image_ids)
    figures, rows = _match_images(images, match_iou=match_iou, dilation_ratio=dilation_ratio)
    point = _mask_figures(figures)
    ap = _CocoAp.of(ref, sel, images, image_ids, device=device)
    point |= {key: ap.figures[key] for key in HEADLINE_AP}
    n_ap = n_boot if n_boot_ap is None else n_boot_ap
    intervals = _mask_intervals(figures, point, n_boot=n_boot, seed=seed) | ap.intervals(point, n_boot=n_ap, seed=seed)
    tier = tier_for(point["mask_iou"])
    all_ious = [v for f in figures for v in f.ious]
    return AuditReport(
        seed=seed,
        n_boot=n_boot,
        n_images=len(images),
        n_reference=sum(f.n_reference for f in figures),
        n_seller=sum(f.n_seller for f in figures),
        n_matched=len(all_ious),
        **point,
        per_category_ap=ap.figures["per_category_ap"],
        scores_assumed=ap.scores_assumed,
        intervals=intervals,
        tier=tier.value if tier else None,
        per_image=rows,
        matched_ious=all_ious,
        pr_curves=ap.figures["pr_curves"],
    )


def _match_images(images: list[PreparedImage], *, match_iou: float, dilation_ratio: float) -> tuple[list[_ImageFigures], list[AuditImageRow]]:
    """One-to-one matching per image and category; the figures of each image."""
    figures: list[_ImageFigures] = []
    rows: list[AuditImageRow] = []
    for image in images:
        matching = match_image(image.a_anns, image.b_anns, image.a_rles, image.b_rles, image_id=image.image_id)
        f = _image_figures(image, matching, match_iou=match_iou, dilation_ratio=dilation_ratio)
        figures.append(f)
        rows.append(
            AuditImageRow(
                image_id=image.image_id,
                n_reference=f.n_reference,
                n_seller=f.n_seller,
                n_matched=len(f.ious),
                mean_iou=float(np.mean(f.ious)) if f.ious else None,
                boundary_iou=float(np.mean(f.boundary)) if f.boundary else None,
            )
        )
    return figures, rows


def _mask_figures(figures: list[_ImageFigures]) -> dict[str, float | None]:
    """Mask IoU (mean and median of matched pairs), instance recall and precision, boundary IoU."""
    all_ious = [v for f in figures for v in f.ious]
    all_boundary = [v for f in figures for v in f.boundary]
    return {
        "mask_iou": float(np.mean(all_ious)) if all_ious else None,
        "median_iou": float(np.median(all_ious)) if all_ious else None,
        "instance_recall": _ratio(len(all_ious), sum(f.n_reference for f in figures)),
        "instance_precision": _ratio(len(all_ious), sum(f.n_seller for f in figures)),
        "boundary_iou": float(np.mean(all_boundary)) if all_boundary else None,
    }


def _mask_intervals(figures: list[_ImageFigures], point: dict[str, float | None], *, n_boot: int, seed: int) -> dict[str, Any]:
    """Bootstrap over images: each draw re-weights the per-image sums (no re-matching)."""
    idx = bootstrap_indices(len(figures), n_boot=n_boot, seed=seed)
    sum_iou = np.array([sum(f.ious) for f in figures])
    n_match = np.array([len(f.ious) for f in figures])
    draws = {
        "mask_iou": ratio_draws(sum_iou, n_match, idx),
        "instance_recall": ratio_draws(n_match, np.array([f.n_reference for f in figures]), idx),
        "instance_precision": ratio_draws(n_match, np.array([f.n_seller for f in figures]), idx),
        "boundary_iou": ratio_draws(np.array([sum(f.boundary) for f in figures]), np.array([len(f.boundary) for f in figures]), idx),
        "median_iou": np.array([np.median(v) if (v := [x for i in row for x in figures[i].ious]) else np.nan for row in idx]),
    }
    return {key: interval_from_draws(d, point=point[key], n_boot=n_boot, seed=seed) for key, d in draws.items()}


@dataclass
class _CocoAp:
    """COCO mask AP of the sample with the seller's masks as detections, and what its
    bootstrap needs."""

    ref_sample: dict
    detections: list[dict]
    image_ids: list[int]
    cat_ids: list[int]
    params: EvalParams
    figures: dict[str, Any]
    scores_assumed: bool
    n_images: int

    @classmethod
    def of(cls, ref: dict, sel: dict, images: list[PreparedImage], image_ids: list[int], *, device: str) -> _CocoAp:
        sample = set(image_ids)
        sizes = {img.image_id: (img.height, img.width) for img in images}
        ref_sample = {
            **ref,
            "images": [img for img in ref.get("images", []) if img["id"] in sample],
            "annotations": [a for a in ref["annotations"] if a["image_id"] in sample],
        }
        detections, scores_assumed = seller_detections(sel, sample, sizes)
        params = EvalParams(iou_type="segm")
        cat_ids = sorted(c["id"] for c in ref.get("categories", []))
        result = evaluate(ref_sample, detections, params=params, device=device)
        figures = ap_figures(np.asarray(result.precision), params.iou_thrs, cat_ids)
        return cls(ref_sample, detections, list(image_ids), cat_ids, params, figures, scores_assumed, len(images))

    def intervals(self, point: dict[str, float | None], *, n_boot: int, seed: int) -> dict[str, Any]:
        """Bootstrap over images: each draw re-evaluates the resampled (image, category)
        cells with their IoUs computed once."""
        draws = {key: np.full(n_boot, np.nan) for key in HEADLINE_AP}
        if n_boot > 0 and any(point[k] is not None for k in HEADLINE_AP):
            inputs = coco_cells(self.ref_sample, self.detections, self.image_ids, self.cat_ids, self.params.max_dets[-1])
            for b, draw in enumerate(bootstrap_indices(self.n_images, n_boot=n_boot, seed=seed)):
                cells, new_ids = _resampled_cells(inputs, self.image_ids, draw)
                res = evaluate_cells(cells, params=self.params, cat_ids=self.cat_ids, img_ids=new_ids)
                figs = ap_figures(np.asarray(res.precision), self.params.iou_thrs, self.cat_ids)
                for key in HEADLINE_AP:
                    if figs[key] is not None:
                        draws[key][b] = figs[key]
        return {key: interval_from_draws(draws[key], point=point[key], n_boot=n_boot, seed=seed) for key in HEADLINE_AP}
