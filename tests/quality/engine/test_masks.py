"""Mask codecs: identical to pycocotools' annToRLE; the vectorized RLE string decoder."""

from __future__ import annotations

import contextlib

import numpy as np
import pytest
from pycocotools import _mask
from pycocotools import mask as mask_utils

from quality.engine import masks, native
from quality.engine.errors import EngineInputError
from quality.engine.gate import CheckedRLE
from quality.engine.masks import rle_areas, rle_boxes, rle_counts, to_rles


def test_polygons_and_rles_convert_as_ann_to_rle():
    h, w = 30, 40
    polys = [[[1.5, 2, 20, 3, 18, 25.2, 3, 20]], [[0, 0, 10, 0, 10, 10], [20, 20, 30, 20, 30, 28, 20, 28]]]
    expected = [mask_utils.merge(mask_utils.frPyObjects(p, h, w)) for p in polys]
    got = to_rles(polys, [h, h], [w, w], image_keys=[1, 1])
    assert all(isinstance(g, CheckedRLE) for g in got)
    assert [g["counts"] for g in got] == [e["counts"] for e in expected]
    unc = {"size": [h, w], "counts": [5, 10, h * w - 15]}
    assert to_rles([unc], [h], [w])[0]["counts"] == mask_utils.frPyObjects(unc, h, w)["counts"]


def test_four_number_polygon_is_refused():
    with pytest.raises(EngineInputError) as exc:
        to_rles([[[2, 3, 8, 9]]], [20], [20])
    assert (exc.value.code, exc.value.location) == ("polygon_too_short", "segmentation[0][0]")


@pytest.mark.parametrize(
    "segm,code,where",
    [([], "empty_segmentation", ""), ([[1, 2, 3]], "polygon_odd_length", "[0]"), ([[1, 2, 3, 4]], "polygon_too_short", "[0]"),
     ([[1, 2, "x", 4, 5, 6]], "wrong_type", "[0][2]"), ([[1, 2, float("nan"), 4, 5, 6]], "non_finite_number", "[0][2]"),
     ({"size": [9, 10], "counts": "abc"}, "rle_size_mismatch", ".size"), ({"size": [10, 10], "counts": [1, 2]}, "rle_sum_mismatch", ".counts"),
     ({"size": [10, 10], "counts": "0Xo0"}, "rle_sum_mismatch", ".counts"), ({"size": [10, 10], "counts": "!!!not-rle"}, "rle_bad_character", ".counts"),
     (7, "wrong_type", "")],
)
def test_bad_segmentations_name_what_and_where(segm, code, where):
    for off in (False, True):
        with native.disabled() if off else contextlib.nullcontext(), pytest.raises(EngineInputError) as exc:
            to_rles([segm], [10], [10], locations=["annotations[3].segmentation"])
        assert (exc.value.code, exc.value.location) == (code, "annotations[3].segmentation" + where)


def test_the_first_bad_item_in_order_is_named_whatever_its_kind():
    good = [[1, 1, 5, 1, 5, 5]]
    segs = [good, {"size": [10, 10], "counts": "0Xo0"}, [[1, 2, 3]], {"size": [10, 10], "counts": [1, 2]}]
    for off in (False, True):
        with native.disabled() if off else contextlib.nullcontext(), pytest.raises(EngineInputError) as exc:
            to_rles(segs, [10] * 4, [10] * 4)
        assert exc.value.location == "segmentation[1].counts"
        with native.disabled() if off else contextlib.nullcontext(), pytest.raises(EngineInputError) as exc:
            to_rles(segs[2:] + segs[1:2], [10] * 3, [10] * 3)
        assert exc.value.location == "segmentation[0][0]"


def test_mask_operations_take_checked_masks_only():
    raw = {"size": [10, 10], "counts": b"0Xo0"}
    for op in (lambda: rle_areas([raw]), lambda: rle_boxes([raw]), lambda: masks.iou([raw], [raw]), lambda: masks.decode(raw),
               lambda: masks.merge([raw]), lambda: rle_counts([raw]), lambda: masks.pack_counts([raw])):
        with pytest.raises(TypeError, match="CheckedRLE"):
            op()
    with pytest.raises(TypeError):
        CheckedRLE(10, 10, b"0Xo0")


def test_vectorized_decoder_equals_pycocotools():
    rng = np.random.default_rng(0)
    raw, rles = [], []
    for _ in range(300):  # also > 255 masks (pycocotools' area() limit per call)
        m = (rng.random((23, 17)) < rng.random()).astype(np.uint8)
        raw.append(_mask.encode(np.asfortranarray(m.reshape(23, 17, 1)))[0])
    rles = to_rles([{"size": r["size"], "counts": r["counts"]} for r in raw], [23] * 300, [17] * 300)
    counts, off = rle_counts(rles)
    for i, r in enumerate(raw):
        m = np.asarray(_mask.decode([r]))[:, :, 0].flatten(order="F")
        c = counts[off[i] : off[i + 1]]
        rebuilt = np.repeat(np.arange(len(c)) % 2, c)
        assert np.array_equal(rebuilt, m)
    assert np.array_equal(rle_areas(rles), [int(_mask.area([r])[0]) for r in raw])
