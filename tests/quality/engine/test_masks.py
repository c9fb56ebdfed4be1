"""Mask codecs: identical to pycocotools' annToRLE; the vectorized RLE string decoder."""

from __future__ import annotations

import numpy as np
import pytest
from pycocotools import _mask
from pycocotools import mask as mask_utils

from quality.engine.errors import EngineInputError
from quality.engine.masks import box_polygon, rle_areas, rle_counts, to_rles


def test_polygons_and_rles_convert_as_ann_to_rle():
    h, w = 30, 40
    polys = [[[1.5, 2, 20, 3, 18, 25.2, 3, 20]], [[0, 0, 10, 0, 10, 10], [20, 20, 30, 20, 30, 28, 20, 28]]]
    expected = [mask_utils.merge(mask_utils.frPyObjects(p, h, w)) for p in polys]
    got = to_rles(polys, [h, h], [w, w], image_keys=[1, 1])
    assert [g["counts"] for g in got] == [e["counts"] for e in expected]
    unc = {"size": [h, w], "counts": [5, 10, h * w - 15]}
    assert to_rles([unc], [h], [w])[0]["counts"] == mask_utils.frPyObjects(unc, h, w)["counts"]


def test_four_number_polygon_is_read_as_a_box():
    got = to_rles([[[2, 3, 8, 9]]], [20], [20])[0]
    corners = box_polygon([2, 3, 8, 9])
    assert got["counts"] == mask_utils.merge(mask_utils.frPyObjects(corners, 20, 20))["counts"]


@pytest.mark.parametrize(
    "segm,code",
    [([], "malformed_polygon"), ([[1, 2, 3]], "malformed_polygon"), ([[1, 2, "x", 4, 5, 6]], "malformed_polygon"),
     ([[1, 2, float("nan"), 4, 5, 6]], "non_finite"), ({"size": [9, 10], "counts": "abc"}, "rle_size_mismatch"),
     ({"size": [10, 10], "counts": [1, 2]}, "rle_size_mismatch"), (7, "malformed_segmentation")],
)
def test_bad_segmentations_name_what_and_where(segm, code):
    with pytest.raises(EngineInputError) as exc:
        to_rles([segm], [10], [10], locations=["annotations[3].segmentation"])
    assert exc.value.code == code
    assert exc.value.location.startswith("annotations[3].segmentation")


def test_vectorized_decoder_equals_pycocotools():
    rng = np.random.default_rng(0)
    rles = []
    for _ in range(300):  # also > 255 masks (pycocotools' area() limit per call)
        m = (rng.random((23, 17)) < rng.random()).astype(np.uint8)
        rles.append(_mask.encode(np.asfortranarray(m.reshape(23, 17, 1)))[0])
    counts, off = rle_counts(rles)
    for i, r in enumerate(rles):
        m = np.asarray(_mask.decode([r]))[:, :, 0].flatten(order="F")
        c = counts[off[i] : off[i + 1]]
        rebuilt = np.repeat(np.arange(len(c)) % 2, c)
        assert np.array_equal(rebuilt, m)
    assert np.array_equal(rle_areas(rles), [int(_mask.area([r])[0]) for r in rles])
