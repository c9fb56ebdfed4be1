"""Seeded randomized parity with pycocotools' COCOeval on whole arrays (precision, recall, scores)."""

from __future__ import annotations

import numpy as np
import pytest

from quality.engine.cocoeval import EvalParams, evaluate, evaluate_shard, merge_shards
from tests.quality.engine.coco_parity_helpers import assert_same_arrays, pycoco_eval, random_case

SEEDS = range(8)


@pytest.mark.parametrize("iou_type", ["segm", "bbox"])
@pytest.mark.parametrize("dt_format", ["rle", "poly_bbox", "box_only", "rle_bbox"])
@pytest.mark.parametrize("seed", SEEDS)
def test_default_params_match_pycocotools(seed, dt_format, iou_type):
    gt, dt = random_case(seed, dt_format=dt_format)
    ev = pycoco_eval(gt, dt, iou_type)
    assert_same_arrays(ev, evaluate(gt, dt, params=EvalParams(iou_type=iou_type)))


@pytest.mark.parametrize("iou_type", ["segm", "bbox"])
@pytest.mark.parametrize("seed", SEEDS)
def test_max_dets_cutoffs_and_area_bounds(seed, iou_type):
    gt, dt = random_case(100 + seed, n_images=8, score_levels=3)
    area_rng = [[0, 1e10], [0, 16.0], [16.0, 64.0], [64.0, 1e10]]
    ev = pycoco_eval(gt, dt, iou_type, maxDets=[1, 2, 4], areaRng=area_rng)
    params = EvalParams(iou_type=iou_type, max_dets=(4, 1, 2), area_rng=tuple(map(tuple, area_rng)))
    assert_same_arrays(ev, evaluate(gt, dt, params=params))


@pytest.mark.parametrize("seed", SEEDS)
def test_use_cats_off(seed):
    gt, dt = random_case(200 + seed)
    ev = pycoco_eval(gt, dt, "segm", useCats=0)
    assert_same_arrays(ev, evaluate(gt, dt, params=EvalParams(use_cats=False)))


@pytest.mark.parametrize("seed", SEEDS)
def test_id_subsets(seed):
    gt, dt = random_case(300 + seed, n_images=12)
    img_ids = [img["id"] for img in gt["images"]][::2] + [gt["images"][0]["id"]]
    cat_ids = [3, 1, 5, 1]
    ev = pycoco_eval(gt, dt, "segm", imgIds=img_ids, catIds=cat_ids)
    assert_same_arrays(ev, evaluate(gt, dt, params=EvalParams(img_ids=img_ids, cat_ids=cat_ids)))


def test_custom_thresholds():
    gt, dt = random_case(400)
    iou_thrs = np.array([0.1, 0.5, 1.0])
    rec_thrs = np.linspace(0.0, 1.0, 11)
    ev = pycoco_eval(gt, dt, "segm", iouThrs=iou_thrs, recThrs=rec_thrs)
    assert_same_arrays(ev, evaluate(gt, dt, params=EvalParams(iou_thrs=iou_thrs, rec_thrs=rec_thrs)))


@pytest.mark.parametrize("device", ["torch-cpu"])
@pytest.mark.parametrize("seed", range(3))
def test_torch_kernel_on_cpu_tensors_gives_identical_arrays(seed, device):
    pytest.importorskip("torch")
    gt, dt = random_case(500 + seed, n_images=12)
    ev = pycoco_eval(gt, dt, "segm")
    assert_same_arrays(ev, evaluate(gt, dt, device=device))


@pytest.mark.parametrize("num_shards", [2, 3, 7])
def test_shards_merge_to_the_single_run(num_shards):
    gt, dt = random_case(600 + num_shards, n_images=14)
    single = evaluate(gt, dt)
    states = [evaluate_shard(gt, dt, shard=i, num_shards=num_shards) for i in reversed(range(num_shards))]
    merged = merge_shards(states)
    for key in ("precision", "recall", "scores"):
        assert np.array_equal(getattr(single, key), getattr(merged, key))
    assert single.stats == merged.stats
