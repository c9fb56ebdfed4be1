"""Video AP: parity with YTVOSeval (segm) on the fixtures, and spatio-temporal IoU by hand."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from pycocotools import mask as mask_utils

from quality.engine.masks import to_rles
from quality.engine.ytvis import reference_tracks, result_tracks, spatio_temporal_iou, video_ap, ytvis_videos

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures" / "ytvis"
CASES = sorted(p.name for p in FIXTURES.glob("case_*"))


def _rle(box, h=10, w=10):
    m = np.zeros((h, w), np.uint8)
    y0, y1, x0, x1 = box
    m[y0:y1, x0:x1] = 1
    r = mask_utils.encode(np.asfortranarray(m))
    return to_rles([{"size": r["size"], "counts": r["counts"]}], [h], [w])[0]


def test_spatio_temporal_iou_sums_intersections_over_sums_of_unions():
    d = [_rle((0, 4, 0, 4)), _rle((0, 4, 0, 4)), None]
    g = [_rle((0, 4, 0, 2)), None, _rle((0, 2, 0, 2))]
    # frame 0: inter 8, union 16; frame 1: only d (16); frame 2: only g (4)
    assert spatio_temporal_iou(d, g) == 8 / (16 + 16 + 4)
    assert spatio_temporal_iou([None], [None]) == 0.0


@pytest.mark.parametrize("case", CASES)
def test_given_fixture_when_video_ap_then_equals_ytvoseval(case):
    pytest.importorskip("quality.engine.cocoeval")
    root = FIXTURES / case
    gt = json.loads((root / "gt.json").read_text())
    results = json.loads((root / "results.json").read_text())
    expected = json.loads((root / "expected.json").read_text())
    arrays = np.load(root / "expected_arrays.npz")
    gts = reference_tracks(gt)
    dts = result_tracks(results, ytvis_videos(gt))
    report, result = video_ap(gt, gts, dts)
    np.testing.assert_array_equal(np.asarray(result.precision), arrays["precision"])
    np.testing.assert_array_equal(np.asarray(result.recall), arrays["recall"])
    np.testing.assert_array_equal(np.asarray(result.scores), arrays["scores"])
    assert report.stats == expected["stats"]
