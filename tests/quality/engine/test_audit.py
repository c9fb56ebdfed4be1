"""Audit comparison on seeded synthetic masks: matching figures by hand, AP against pycocotools."""

from __future__ import annotations

import copy
import json

import numpy as np
import pytest
from pycocotools import mask as mask_utils
from pycocotools.coco import COCO
from pycocotools.cocoeval import COCOeval

from quality.engine.audit import audit_compare, coco_cells, seller_detections
from quality.engine.reports import AuditReport

H, W = 48, 64


def _seg(box):
    m = np.zeros((H, W), np.uint8)
    y0, y1, x0, x1 = box
    m[y0:y1, x0:x1] = 1
    return {"size": [H, W], "counts": mask_utils.encode(np.asfortranarray(m))["counts"].decode()}, int(m.sum())


def _ann(ann_id, image_id, cat, box, **extra):
    seg, area = _seg(box)
    y0, y1, x0, x1 = box
    return {
        "id": ann_id,
        "image_id": image_id,
        "category_id": cat,
        "segmentation": seg,
        "area": area,
        "bbox": [x0, y0, x1 - x0, y1 - y0],
        "iscrowd": 0,
        **extra,
    }


def _pair(seed=0, n_images=6):
    """A reference and a seller file: the seller jitters boxes, misses some, adds some."""
    rng = np.random.default_rng(seed)
    images = [{"id": i, "height": H, "width": W, "file_name": f"{i}.jpg"} for i in range(1, n_images + 1)]
    ref, sel = [], []
    for img in images:
        for _ in range(rng.integers(1, 5)):
            y0, x0 = int(rng.integers(0, H - 16)), int(rng.integers(0, W - 16))
            h, w = int(rng.integers(6, 16)), int(rng.integers(6, 16))
            cat = int(rng.integers(1, 4))
            ref.append(_ann(len(ref) + 1, img["id"], cat, (y0, y0 + h, x0, x0 + w)))
            r = rng.random()
            if r < 0.15:
                continue  # missed by the seller
            dy, dx = (int(v) for v in rng.integers(-2, 3, size=2))
            sel.append(
                _ann(len(sel) + 1, img["id"], cat if r < 0.9 else cat % 3 + 1, (max(0, y0 + dy), y0 + dy + h, max(0, x0 + dx), x0 + dx + w))
            )
        if rng.random() < 0.4:
            y0, x0 = int(rng.integers(0, H - 8)), int(rng.integers(0, W - 8))
            sel.append(_ann(len(sel) + 1, img["id"], 1, (y0, y0 + 8, x0, x0 + 8)))
    ref.append(_ann(len(ref) + 1, 1, 2, (30, 46, 40, 62), iscrowd=1))
    cats = [{"id": c, "name": f"c{c}"} for c in (1, 2, 3)]
    return (
        {"images": images, "categories": cats, "annotations": ref},
        {"images": copy.deepcopy(images), "categories": cats, "annotations": sel},
    )


def _pycocotools(reference: dict, detections: list[dict]) -> COCOeval:
    gt = COCO()
    gt.dataset = copy.deepcopy(reference)
    gt.createIndex()
    dt = gt.loadRes(copy.deepcopy(detections))
    ev = COCOeval(gt, dt, "segm")
    ev.evaluate()
    ev.accumulate()
    ev.summarize()
    return ev


def test_given_hand_made_pair_then_matching_figures():
    ref = {
        "images": [{"id": 1, "height": H, "width": W}],
        "categories": [{"id": 1, "name": "a"}],
        "annotations": [_ann(1, 1, 1, (0, 10, 0, 10)), _ann(2, 1, 1, (20, 30, 20, 30)), _ann(3, 1, 1, (0, 10, 40, 50))],
    }
    sel = {
        "images": ref["images"],
        "annotations": [
            _ann(1, 1, 1, (0, 10, 0, 10)),  # exact: IoU 1
            _ann(2, 1, 1, (20, 30, 22, 32)),  # 8 of 12 columns: IoU 80/120
            _ann(3, 1, 1, (40, 45, 0, 5)),  # nothing there
        ],
    }
    report = audit_compare(ref, sel, n_boot=50, n_boot_ap=5)
    assert report.n_matched == 2 and report.n_reference == 3 and report.n_seller == 3
    assert report.mask_iou == pytest.approx((1 + 80 / 120) / 2)
    assert report.median_iou == pytest.approx((1 + 80 / 120) / 2)
    assert report.instance_recall == pytest.approx(2 / 3) and report.instance_precision == pytest.approx(2 / 3)
    assert 0 < report.boundary_iou < 1
    assert report.scores_assumed
    assert report.tier == "standard"  # 0.833: standard is [0.80, 0.85)
    assert report.per_image[0].n_matched == 2


def test_given_seeded_pair_then_ap_equals_pycocotools_and_intervals_contain_points():
    reference, seller = _pair(seed=1)
    report = audit_compare(reference, seller, seed=7, n_boot=200, n_boot_ap=30)
    detections, _ = seller_detections(seller, {i["id"] for i in reference["images"]}, {i["id"]: (H, W) for i in reference["images"]})
    ev = _pycocotools(reference, detections)
    assert report.ap == ev.stats[0] and report.ap50 == ev.stats[1] and report.ap75 == ev.stats[2]
    p95 = ev.eval["precision"][9, :, :, 0, 2]
    assert report.ap95 == pytest.approx(float(np.mean(p95[p95 > -1])), abs=0)
    for k, cat in enumerate(ev.params.catIds):
        pk = ev.eval["precision"][:, :, k, 0, 2]
        assert report.per_category_ap[str(cat)] == (float(np.mean(pk[pk > -1])) if (pk > -1).any() else None)
    for key in ("mask_iou", "median_iou", "instance_recall", "instance_precision", "boundary_iou", "ap", "ap50", "ap75", "ap95"):
        value, ci = getattr(report, key), report.intervals[key]
        assert value is not None and ci.low <= value <= ci.high, key
    assert report.n_images == 6 and report.n_boot == 200
    assert report.tier in ("rough", "standard", "fine", "premium")
    again = audit_compare(reference, seller, seed=7, n_boot=200, n_boot_ap=30)
    assert again.to_dict() == report.to_dict()
    other = audit_compare(reference, seller, seed=8, n_boot=200, n_boot_ap=0)
    assert other.intervals["mask_iou"] != report.intervals["mask_iou"]
    restored = AuditReport.from_dict(json.loads(json.dumps(report.to_dict())))
    assert restored == report


def test_given_cells_of_the_whole_sample_then_evaluate_cells_equals_evaluate():
    from quality.engine.cocoeval import EvalParams, evaluate, evaluate_cells

    reference, seller = _pair(seed=2)
    ids = sorted(i["id"] for i in reference["images"])
    detections, _ = seller_detections(seller, set(ids), {i: (H, W) for i in ids})
    inputs = coco_cells(reference, detections, ids, [1, 2, 3], 100)
    cells = [c for i in ids for c in inputs.cells_by_image[i]]
    a = evaluate_cells(cells, params=EvalParams(), cat_ids=[1, 2, 3], img_ids=ids)
    b = evaluate(reference, detections, params=EvalParams())
    np.testing.assert_array_equal(a.precision, b.precision)
    np.testing.assert_array_equal(a.recall, b.recall)
