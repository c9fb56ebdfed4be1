"""Hungarian matching per image and category on small hand-made masks."""

from __future__ import annotations

import numpy as np
import pytest
from pycocotools import mask as mask_utils

from quality.engine.errors import EngineInputError
from quality.engine.matching import hungarian_pairs, iou_matrix, match_image, segmentation_rle


def _rle(mask: np.ndarray):
    r = mask_utils.encode(np.asfortranarray(mask.astype(np.uint8)))
    return segmentation_rle({"size": r["size"], "counts": r["counts"]}, *mask.shape)


def _box(h, w, y0, y1, x0, x1):
    m = np.zeros((h, w), bool)
    m[y0:y1, x0:x1] = True
    return m


def test_given_greedy_would_lose_when_hungarian_then_total_iou_is_maximal():
    # Row 0 is best with column 0 (0.9) but column 0 is row 1's only partner.
    ious = np.array([[0.9, 0.8], [0.85, 0.0]])
    pairs = hungarian_pairs(ious)
    assert sorted((r, c) for r, c, _ in pairs) == [(0, 1), (1, 0)]


def test_given_zero_iou_then_no_pair():
    assert hungarian_pairs(np.zeros((2, 2))) == []
    assert hungarian_pairs(np.zeros((0, 3))) == []


def test_given_two_categories_when_match_image_then_pairs_stay_within_category():
    a = _box(20, 20, 0, 10, 0, 10)
    b = _box(20, 20, 0, 10, 1, 11)
    ref = [{"id": 1, "category_id": 1}, {"id": 2, "category_id": 2}]
    sel = [{"id": 10, "category_id": 2}, {"id": 11, "category_id": 1}]
    rles_ref = [_rle(a), _rle(a)]
    rles_sel = [_rle(b), _rle(_box(20, 20, 12, 20, 12, 20))]
    matching = match_image(ref, sel, rles_ref, rles_sel, image_id=7)
    assert [(p.a_id, p.b_id) for p in matching.pairs] == [(2, 10)]
    assert matching.pairs[0].iou == pytest.approx(90 / 110)
    agnostic = match_image(ref, sel, rles_ref, rles_sel, image_id=7, by_category=False)
    # class-agnostic: one of the two identical reference squares pairs with the shifted one
    assert len(agnostic.pairs) == 1


def test_given_polygon_and_rle_of_same_square_then_iou_one():
    poly = [[2, 2, 8, 2, 8, 8, 2, 8]]
    from_poly = segmentation_rle(poly, 12, 12)
    mask = mask_utils.decode(from_poly.coco())
    uncompressed = {"size": [12, 12], "counts": mask_utils.encode(np.asfortranarray(mask))["counts"].decode()}
    assert iou_matrix([from_poly], [segmentation_rle(uncompressed, 12, 12)])[0, 0] == 1.0


def test_given_garbage_segmentation_then_engine_input_error():
    with pytest.raises(EngineInputError) as err:
        segmentation_rle("nope", 4, 4, location="annotations[3]")
    assert err.value.code == "wrong_type" and err.value.location == "annotations[3]"
