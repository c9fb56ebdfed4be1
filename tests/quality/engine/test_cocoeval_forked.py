"""evaluate_forked (the CLI's multi-process path) gives exactly evaluate's arrays and errors."""

import numpy as np
import pytest

from quality.engine import cocoeval
from quality.engine.cocoeval import evaluate, evaluate_forked
from quality.engine.errors import EngineInputError
from tests.quality.engine.coco_parity_helpers import assert_same_arrays, pycoco_eval, random_case


@pytest.mark.parametrize("split", ["categories", "images"])
@pytest.mark.parametrize("seed,fmt,workers", [(1, "rle", 2), (2, "poly_bbox", 3), (3, "box_only", 2)])
def test_forked_equals_single_run(monkeypatch, seed, fmt, workers, split):
    monkeypatch.setattr(cocoeval, "_FORK_MIN_DETS", 0)
    if split == "images":  # no split of the categories is balanced enough: image shards
        monkeypatch.setattr(cocoeval, "_CATEGORY_IMBALANCE", 0.0)
    gt, dt = random_case(seed, n_images=12, dt_format=fmt)
    chosen = []
    real_split = cocoeval._category_split
    monkeypatch.setattr(cocoeval, "_category_split", lambda *a: chosen.append(real_split(*a)) or chosen[-1])
    got = evaluate_forked(gt, dt, workers=workers)
    assert (chosen[0] is not None) == (split == "categories")
    assert_same_arrays(pycoco_eval(gt, dt), got)
    ref = evaluate(gt, dt)
    for k in ("precision", "recall", "scores"):
        assert np.array_equal(getattr(ref, k), getattr(got, k))


def test_forked_error_is_the_single_run_error(monkeypatch):
    monkeypatch.setattr(cocoeval, "_FORK_MIN_DETS", 0)
    gt, dt = random_case(4, n_images=12, dt_format="rle")
    bad = [i for i, d in enumerate(dt) if isinstance(d["segmentation"], dict)][-1]
    dt[bad] = {**dt[bad], "segmentation": {**dt[bad]["segmentation"], "size": [1, 1]}}
    with pytest.raises(EngineInputError) as single:
        evaluate(gt, dt)
    with pytest.raises(EngineInputError) as forked:
        evaluate_forked(gt, dt, workers=2)
    assert (forked.value.code, str(forked.value), forked.value.location) == (single.value.code, str(single.value), single.value.location)


def test_category_split_balances_whole_categories():
    gt, dt = random_case(5, n_images=30, n_cats=6)
    ref = cocoeval.load_reference(gt, with_masks=False)
    dets = cocoeval._load_detections(dt, ref, "segm")
    params = cocoeval.EvalParams()
    split = cocoeval._category_split(ref, dets, params, 2)
    assert split is not None
    # every category in exactly one set; the same sets every time
    assert np.array_equal(split[0] ^ split[1], np.ones(len(ref.cat_ids), bool))
    again = cocoeval._category_split(ref, dets, params, 2)
    assert all(np.array_equal(a, b) for a, b in zip(split, again))
    # without categories (one cell per image) there is nothing to split by
    assert cocoeval._category_split(ref, dets, cocoeval.EvalParams(use_cats=False), 2) is None
