"""Reference cache: save/load round trip and streamed building give the same evaluation."""

from __future__ import annotations

import numpy as np

from quality.engine.cache import ReferenceCache, build_reference_cache
from quality.engine.cocoeval import EvalParams, evaluate
from tests.quality.engine.coco_parity_helpers import assert_same_arrays, pycoco_eval, random_case


def test_reference_cache_round_trip(tmp_path):
    gt, dt = random_case(700, n_images=12)
    ev = pycoco_eval(gt, dt, "segm")
    cache = build_reference_cache(gt)
    path = tmp_path / "ref.npz"
    cache.save(path)
    loaded = ReferenceCache.load(path)
    assert_same_arrays(ev, evaluate(loaded, dt))
    assert_same_arrays(ev, evaluate(str(path), dt))
    ev_bbox = pycoco_eval(gt, dt, "bbox")
    assert_same_arrays(ev_bbox, evaluate(loaded, dt, params=EvalParams(iou_type="bbox")))


def test_streamed_reference_equals_the_parsed_one():
    gt, dt = random_case(800, n_images=12)
    streamed = build_reference_cache(images=gt["images"], categories=gt["categories"], annotations=iter(gt["annotations"]), chunk_size=5)
    whole = build_reference_cache(gt)
    assert streamed.rle_blob == whole.rle_blob
    assert np.array_equal(streamed.rle_offsets, whole.rle_offsets)
    assert np.array_equal(evaluate(streamed, dt).precision, evaluate(whole, dt).precision)
