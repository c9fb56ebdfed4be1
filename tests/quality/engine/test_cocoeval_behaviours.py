"""Small hand-made masks pinning each pycocotools behaviour listed in performance.md.

Every case also asserts whole-array equality with pycocotools' COCOeval.
"""

from __future__ import annotations

import contextlib

import numpy as np
import pytest

from quality.engine import native
from quality.engine.cocoeval import Cell, EvalParams, evaluate, evaluate_cells
from quality.engine.errors import EngineInputError
from tests.quality.engine.coco_parity_helpers import assert_same_arrays, pycoco_eval, rle_of_box

H = W = 20


def _gt(anns, n_cats=2):
    for i, a in enumerate(anns, 1):
        a.setdefault("id", i)
        a.setdefault("image_id", 1)
        a.setdefault("category_id", 1)
        a.setdefault("iscrowd", 0)
    return {"images": [{"id": 1, "height": H, "width": W}, {"id": 2, "height": H, "width": W}], "categories": [{"id": k} for k in range(1, n_cats + 1)], "annotations": anns}


def _box_ann(x0, y0, x1, y1, **kw):
    return {"segmentation": [[x0, y0, x1, y0, x1, y1, x0, y1]], "area": float((x1 - x0) * (y1 - y0)), "bbox": [x0, y0, x1 - x0, y1 - y0], **kw}


def _det(x0, y0, x1, y1, score, **kw):
    return {"image_id": 1, "category_id": 1, "score": score, "segmentation": rle_of_box(H, W, x0, y0, x1, y1), **kw}


def _both(gt, dt, iou_type="segm", **pc):
    ev = pycoco_eval(gt, dt, iou_type, **pc)
    return ev, ev.eval


def test_tied_scores_keep_input_order():
    gt = _gt([_box_ann(0, 0, 10, 10)])
    hit, miss = _det(0, 0, 10, 10, 0.5), _det(12, 12, 18, 18, 0.5)
    a = evaluate(gt, [hit, miss])
    b = evaluate(gt, [miss, hit])
    assert_same_arrays(pycoco_eval(gt, [hit, miss]), a)
    assert_same_arrays(pycoco_eval(gt, [miss, hit]), b)
    # first in file order is first in rank: precision at recall 1 is 1 vs 0.5
    assert np.isclose(a.precision[0, -1, 0, 0, -1], 1.0) and np.isclose(b.precision[0, -1, 0, 0, -1], 0.5)


def test_max_dets_applies_per_image_and_category():
    gt = _gt([_box_ann(0, 0, 10, 10), _box_ann(0, 0, 10, 10, image_id=2)])
    dt = [_det(12, 12, 18, 18, 0.9), _det(0, 0, 10, 10, 0.8), dict(_det(0, 0, 10, 10, 0.7), image_id=2)]
    r = evaluate(gt, dt)
    assert_same_arrays(pycoco_eval(gt, dt), r)
    assert r.recall[0, 0, 0, 0] == 0.5  # maxDets=1: image 1 keeps only its false positive
    assert r.recall[0, 0, 0, 1] == 1.0


def test_crowd_absorbs_detections_and_uses_detection_area():
    crowd = {"segmentation": {"size": [H, W], "counts": [0, 400]}, "area": 400.0, "bbox": [0, 0, 20, 20], "iscrowd": 1}
    gt = _gt([_box_ann(0, 0, 5, 5), crowd])
    dt = [_det(0, 0, 5, 5, 0.9), _det(10, 10, 14, 14, 0.8), _det(12, 12, 20, 20, 0.7)]
    r = evaluate(gt, dt)
    assert_same_arrays(pycoco_eval(gt, dt), r)
    # both detections inside the crowd have IoU 1 (inter / area(dt)): ignored, not FP
    assert np.isclose(r.precision[-1, :, 0, 0, -1].min(), 1.0)


def test_ignored_references_come_last_and_a_real_match_stops_there():
    # the out-of-range (ignored) reference is first in the file and matches better
    gt = _gt([_box_ann(0, 0, 10, 10, area=5000.0), _box_ann(0, 0, 10, 8)])
    dt = [_det(0, 0, 10, 10, 0.9)]
    area_rng = [[0, 1e10], [0, 1000.0], [1000.0, 1e10], [0, 1e10]]
    ev = pycoco_eval(gt, dt, areaRng=area_rng, areaRngLbl=["all", "small", "medium", "large"])
    r = evaluate(gt, dt, params=EvalParams(area_rng=tuple(map(tuple, area_rng))))
    assert_same_arrays(ev, r)
    assert r.recall[0, 0, 1, -1] == 1.0  # 'small': matched the real reference (IoU 0.8)


def test_area_bounds_are_inclusive_and_read_from_the_area_field():
    gt = _gt([_box_ann(0, 0, 4, 4, area=32.0**2), _box_ann(10, 10, 14, 14, area=96.0**2)])
    dt = [_det(0, 0, 4, 4, 0.9), _det(10, 10, 14, 14, 0.8)]
    r = evaluate(gt, dt)
    assert_same_arrays(pycoco_eval(gt, dt), r)
    assert r.recall[0, 0, 1, -1] == 1.0 and r.recall[0, 0, 2, -1] == 1.0 and r.recall[0, 0, 3, -1] == 1.0


def test_box_only_results_are_rasterized_as_polygons_in_segm():
    gt = _gt([_box_ann(0, 0, 10, 10), _box_ann(3, 3, 19, 12, category_id=2)])
    dt = [{"image_id": 1, "category_id": 1, "score": 0.9, "bbox": [0.5, 0.2, 9.7, 10.1]}, {"image_id": 1, "category_id": 2, "score": 0.3, "bbox": [3, 4, 15, 8]}]
    assert_same_arrays(pycoco_eval(gt, dt), evaluate(gt, dt))


def test_four_number_polygon_is_refused_on_both_paths():
    # pycocotools 2.0.11 cannot read a 4-number polygon either (frBbox wants an ndarray); the
    # gate takes polygons of at least 3 points
    box = _gt([{"segmentation": [[2, 3, 8, 9]], "area": 72.0, "bbox": [2, 3, 8, 9]}])
    dt = [_det(2, 3, 9, 11, 0.9)]
    for off in (False, True):
        with native.disabled() if off else contextlib.nullcontext(), pytest.raises(EngineInputError) as exc:
            evaluate(box, dt)
        assert (exc.value.code, exc.value.location) == ("polygon_too_short", "annotations[0].segmentation[0]")


def test_categories_without_references_are_minus_one():
    gt = _gt([_box_ann(0, 0, 10, 10)], n_cats=3)
    dt = [_det(0, 0, 10, 10, 0.9), _det(0, 0, 10, 10, 0.9, category_id=3)]
    r = evaluate(gt, dt)
    assert_same_arrays(pycoco_eval(gt, dt), r)
    assert (r.precision[:, :, 1:] == -1).all() and (r.recall[:, 1:] == -1).all()


def test_reference_id_zero_counts_as_unmatched_like_pycocotools():
    gt = _gt([_box_ann(0, 0, 10, 10, id=0)])
    dt = [_det(0, 0, 10, 10, 0.9)]
    r = evaluate(gt, dt)
    assert_same_arrays(pycoco_eval(gt, dt), r)
    assert r.recall[0, 0, 0, -1] == 0.0


def test_evaluate_cells_with_caller_ious_sorts_detections_itself():
    cell = Cell(
        img_id=1, cat_id=1, ious=np.array([[0.2], [0.9]]), gt_ids=np.array([1]), gt_area=np.array([100.0]),
        gt_crowd=np.array([False]), gt_ignore_flag=np.array([False]), dt_ids=np.array([1, 2]),
        dt_scores=np.array([0.1, 0.8]), dt_area=np.array([50.0, 90.0]),
    )
    r = evaluate_cells([cell], params=EvalParams(), cat_ids=[1], img_ids=[1])
    assert np.isclose(r.precision[0, :, 0, 0, -1].min(), 1.0)  # the 0.8 detection ranks first and matches
