"""Agreement between two annotation passes on small hand-made masks."""

from __future__ import annotations

import numpy as np
import pytest
from pycocotools import mask as mask_utils

from quality.engine.agreement import agreement_compare, cohen_kappa
from quality.engine.errors import EngineInputError
from quality.engine.reports import AgreementReport


def _ann(ann_id, image_id, cat, box, h=40, w=40):
    m = np.zeros((h, w), np.uint8)
    y0, y1, x0, x1 = box
    m[y0:y1, x0:x1] = 1
    rle = mask_utils.encode(np.asfortranarray(m))
    return {
        "id": ann_id,
        "image_id": image_id,
        "category_id": cat,
        "iscrowd": 0,
        "area": int(m.sum()),
        "segmentation": {"size": [h, w], "counts": rle["counts"].decode()},
    }


def _coco(anns, n_images=3):
    return {
        "images": [{"id": i, "height": 40, "width": 40, "file_name": f"{i}.png"} for i in range(1, n_images + 1)],
        "categories": [{"id": 1, "name": "a"}, {"id": 2, "name": "b"}],
        "annotations": anns,
    }


BOXES = [(0, 10, 0, 10), (20, 30, 20, 30), (0, 10, 25, 35)]


def _first():
    return _coco([_ann(10 * i + k, i, 1 + k % 2, b) for i in (1, 2, 3) for k, b in enumerate(BOXES)])


def test_given_identical_passes_then_perfect_agreement():
    report = agreement_compare(_first(), _first(), n_boot=50)
    assert report.mean_iou == 1.0 and report.unmatched_rate == 0.0 and report.kappa == 1.0
    assert not report.inconsistent_labeling
    assert report.n_images == 3 and report.n_first == 9 and report.n_matched == 9


def test_given_shifted_and_relabelled_second_pass_then_flags_and_intervals():
    anns = []
    for i in (1, 2, 3):
        for k, (y0, y1, x0, x1) in enumerate(BOXES):
            cat = 1 + k % 2
            if i == 1 and k == 0:
                cat = 2  # one relabelled object
            anns.append(_ann(10 * i + k, i, cat, (y0, y1, x0 + 2, x1 + 2)))  # 8/12 overlap: IoU 0.667
    anns.append(_ann(99, 2, 1, (30, 38, 0, 8)))  # extra object nobody else drew
    report = agreement_compare(_first(), _coco(anns), seed=5, n_boot=200)
    assert report.mean_iou == pytest.approx(80 / 120)
    assert report.inconsistent_labeling
    # matched per category: the relabelled one is unmatched on both sides, plus the extra
    assert report.n_matched == 8
    assert report.unmatched_rate == pytest.approx((1 + 2) / (9 + 10))
    assert report.n_kappa_pairs == 9
    assert report.kappa == pytest.approx(cohen_kappa([1, 2, 1] * 3, [2, 2, 1] + [1, 2, 1] * 2))
    for key in ("mean_iou", "unmatched_rate", "kappa"):
        ci = report.intervals[key]
        assert ci.low <= getattr(report, key) <= ci.high
    again = agreement_compare(_first(), _coco(anns), seed=5, n_boot=200)
    assert again.to_dict() == report.to_dict()
    assert AgreementReport.from_dict(report.to_dict()) == report


def test_cohen_kappa_known_values():
    assert cohen_kappa([], []) is None
    assert cohen_kappa([1, 1], [1, 1]) == 1.0
    # 2x2 table [[20, 5], [10, 15]]: po = 0.7, pe = 0.5 -> kappa 0.4
    first = [1] * 25 + [2] * 25
    second = [1] * 20 + [2] * 5 + [1] * 10 + [2] * 15
    assert cohen_kappa(first, second) == pytest.approx(0.4)


def test_given_no_common_images_then_engine_input_error():
    other = _coco([])
    other["images"] = [{"id": 77, "height": 40, "width": 40}]
    with pytest.raises(EngineInputError) as err:
        agreement_compare(_first(), other)
    assert err.value.code == "no_common_images"
