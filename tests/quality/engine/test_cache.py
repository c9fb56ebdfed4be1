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


def test_masks_rasterized_on_several_cores_are_the_bytes_of_one_call(tmp_path, monkeypatch, compiled_kernels):
    """The reference's polygons (and copied strings and counts) cut into runs rasterized in
    parallel give the same strings and offsets as one call, for any number of runs."""
    import json

    from quality.engine import cache
    from tests.quality.engine.coco_parity_helpers import random_case

    gt, _ = random_case(11, n_images=40)
    # a few compressed strings among the polygons and the crowds' uncompressed counts
    from pycocotools import mask as mask_utils

    sizes = {img["id"]: (img["height"], img["width"]) for img in gt["images"]}
    for ann in gt["annotations"][::5]:
        if isinstance(ann["segmentation"], list):
            h, w = sizes[ann["image_id"]]
            rle = mask_utils.merge(mask_utils.frPyObjects(ann["segmentation"], h, w))
            ann["segmentation"] = {"size": rle["size"], "counts": rle["counts"].decode()}
    path = tmp_path / "gt.json"
    path.write_text(json.dumps(gt))
    n = len(gt["annotations"])
    assert n > 20

    def masks(parts: int):
        monkeypatch.setattr(cache, "PARALLEL_MASKS", 1 if parts > 1 else 10**9)
        monkeypatch.setattr(cache.os, "cpu_count", lambda: parts)
        ref = build_reference_cache(str(path))
        ref.ensure_masks()
        return bytes(ref.rle_blob), ref.rle_offsets.copy()

    blob, offsets = masks(1)
    for parts in (2, 3, 7):
        other_blob, other_offsets = masks(parts)
        assert other_blob == blob and np.array_equal(other_offsets, offsets), parts


def test_dense_index_is_the_search():
    """The id table gives what the sort-and-search gives, and declines what it cannot do."""
    from quality.engine.cache import dense_index
    from quality.engine.cocoeval import _positions

    def search(values, keys):
        order = np.argsort(keys, kind="stable")
        s = keys[order]
        p = np.minimum(np.searchsorted(s, values), len(s) - 1)
        return np.where(s[p] == values, order[p], -1)

    rng = np.random.default_rng(3)
    for _ in range(50):
        keys = rng.choice(np.arange(int(rng.integers(300, 5000))), size=int(rng.integers(1, 300)), replace=False).astype(np.int64)
        values = rng.integers(-5, int(keys.max()) + 20, size=1000).astype(np.int64)
        got = dense_index(values, keys)
        assert got is not None and np.array_equal(got, search(values, keys))
        assert np.array_equal(_positions(values, keys), search(values, keys))
    # repeated, negative or far-apart keys: no table, the search answers (first position)
    for keys in (np.array([4, 2, 4, 9]), np.array([-1, 3]), np.array([1, 10**9])):
        values = np.array([4, 2, 9, 3, 10**9, -1, 7])
        assert dense_index(values, keys) is None
        assert np.array_equal(_positions(values, keys), search(values, keys))
