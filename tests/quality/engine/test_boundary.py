"""Boundary IoU: small hand-made masks and parity with boundary-iou-api values."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from pycocotools import mask as mask_utils

from quality.engine import boundary_iou
from quality.engine.boundary import boundary_width, mask_boundary

FIXTURE = Path(__file__).resolve().parents[2] / "fixtures" / "boundary" / "pairs" / "pairs.json"


def _decode(rle: dict) -> np.ndarray:
    return mask_utils.decode({"size": rle["size"], "counts": rle["counts"].encode()}).astype(bool)


def test_given_reference_pairs_when_boundary_iou_then_equals_reference_within_1e9():
    pairs = json.loads(FIXTURE.read_text())["pairs"]
    assert pairs
    for pair in pairs:
        a, b = _decode(pair["mask_a"]), _decode(pair["mask_b"])
        ratio = pair["dilation_ratio"]
        assert int(mask_boundary(a, ratio).sum()) == pair["boundary_a_pixels"]
        assert int(mask_boundary(b, ratio).sum()) == pair["boundary_b_pixels"]
        assert boundary_iou(a, b, dilation_ratio=ratio) == pytest.approx(pair["boundary_iou"], abs=1e-9)


def test_given_square_when_boundary_then_ring_of_width_d():
    mask = np.zeros((50, 50), dtype=bool)
    mask[10:30, 10:30] = True
    d = boundary_width(50, 50, 0.02)  # round(0.02 * 70.7) = 1
    assert d == 1
    band = mask_boundary(mask)
    assert band.sum() == 20 * 20 - 18 * 18


def test_given_mask_touching_border_when_boundary_then_border_counts_as_background():
    mask = np.ones((10, 10), dtype=bool)
    band = mask_boundary(mask, 0.02)
    assert band.sum() == 100 - 64


def test_given_identical_masks_then_one_and_disjoint_then_zero():
    a = np.zeros((20, 20), dtype=bool)
    a[2:8, 2:8] = True
    b = np.zeros_like(a)
    b[12:18, 12:18] = True
    assert boundary_iou(a, a) == 1.0
    assert boundary_iou(a, b) == 0.0
    assert boundary_iou(np.zeros_like(a), np.zeros_like(a)) == 0.0


def test_given_shapes_differ_then_value_error():
    with pytest.raises(ValueError):
        boundary_iou(np.zeros((3, 3), bool), np.zeros((3, 4), bool))
