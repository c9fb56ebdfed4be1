"""IoU kernels equal pycocotools' bbIou / rleIou bit for bit (crowd: inter / area(dt))."""

from __future__ import annotations

import numpy as np
import pytest
from pycocotools import _mask

from quality.engine.iou import box_iou_pairs, mask_iou_pairs_torch
from quality.engine.masks import rle_areas, rle_counts, to_rles


def _pairs(n_d, n_g):
    pd, pg = np.meshgrid(np.arange(n_d), np.arange(n_g), indexing="ij")
    return pd.ravel(), pg.ravel()


def test_box_iou_equals_bbiou():
    rng = np.random.default_rng(1)
    d = np.round(rng.uniform(0, 50, (30, 4)), 2)
    g = np.round(rng.uniform(0, 50, (20, 4)), 2)
    crowd = rng.random(20) < 0.3
    expected = _mask.iou(d, g, crowd.astype(np.uint8))
    pd, pg = _pairs(30, 20)
    got = box_iou_pairs(d[pd], g[pg], crowd[pg]).reshape(30, 20)
    assert np.array_equal(got, expected)


def test_torch_run_length_intersection_equals_rleiou():
    pytest.importorskip("torch")
    rng = np.random.default_rng(2)
    h, w = 31, 27

    def masks(n):
        out = []
        for _ in range(n):
            m = np.zeros((h, w), np.uint8)
            y0, x0 = rng.integers(0, h - 3), rng.integers(0, w - 3)
            m[y0 : rng.integers(y0 + 1, h), x0 : rng.integers(x0 + 1, w)] = 1
            m &= (rng.random((h, w)) < 0.9).astype(np.uint8)
            out.append(_mask.encode(np.asfortranarray(m.reshape(h, w, 1)))[0])
        return out

    d, g = masks(12), masks(9)
    crowd = rng.random(9) < 0.3
    expected = _mask.iou(d, g, crowd.astype(np.uint8))
    pd, pg = _pairs(12, 9)
    dc = to_rles([{"size": r["size"], "counts": r["counts"]} for r in d], [h] * 12, [w] * 12)
    gc = to_rles([{"size": r["size"], "counts": r["counts"]} for r in g], [h] * 9, [w] * 9)
    got = mask_iou_pairs_torch(rle_counts(dc), rle_counts(gc), rle_areas(dc), rle_areas(gc), crowd, pd, pg, device="cpu", chunk=50)
    assert np.array_equal(got.reshape(12, 9), expected)
