"""Panoptic quality: parity with panopticapi's pq_compute on the fixtures, and hand-made cases."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from quality.engine.errors import EngineInputError
from quality.engine.panoptic import panoptic_quality
from quality.engine.reports import PanopticReport

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures" / "panoptic"
CASES = sorted(p.name for p in FIXTURES.glob("case_*"))


@pytest.mark.parametrize("case", CASES)
def test_given_fixture_when_pq_then_equals_panopticapi(case):
    root = FIXTURES / case
    expected = json.loads((root / "expected.json").read_text())["results"]
    report = panoptic_quality(root / "gt.json", root / "pred.json", gt_dir=root / "gt", pred_dir=root / "pred")
    got = report.results_dict()
    assert set(got) == set(expected)
    for group in ("All", "Things", "Stuff"):
        assert got[group] == expected[group]  # bit-exact: same operations in the same order
    assert got["per_class"] == expected["per_class"]
    again = PanopticReport.from_dict(json.loads(json.dumps(report.to_dict())))
    assert again.results_dict() == got


def _write(folder: Path, name: str, ids: np.ndarray) -> None:
    rgb = np.stack([ids % 256, (ids // 256) % 256, ids // 65536], axis=-1).astype(np.uint8)
    folder.mkdir(parents=True, exist_ok=True)
    Image.fromarray(rgb).save(folder / name)


def _case(tmp_path: Path, gt_ids, gt_segs, pred_ids, pred_segs):
    cats = [{"id": 1, "name": "a", "isthing": 1}, {"id": 2, "name": "b", "isthing": 0}]
    _write(tmp_path / "gt", "1.png", gt_ids)
    _write(tmp_path / "pred", "1.png", pred_ids)
    gt = {"categories": cats, "annotations": [{"image_id": 1, "file_name": "1.png", "segments_info": gt_segs}]}
    pred = {"annotations": [{"image_id": 1, "file_name": "1.png", "segments_info": pred_segs}]}
    return panoptic_quality(gt, pred, gt_dir=tmp_path / "gt", pred_dir=tmp_path / "pred")


def test_given_perfect_prediction_then_pq_one(tmp_path):
    ids = np.zeros((8, 8), np.int64)
    ids[:4] = 1
    ids[4:] = 2
    segs = [
        {"id": 1, "category_id": 1, "iscrowd": 0, "area": 32},
        {"id": 2, "category_id": 2, "iscrowd": 0, "area": 32},
    ]
    report = _case(tmp_path, ids, segs, ids, [{"id": s["id"], "category_id": s["category_id"]} for s in segs])
    assert (report.all.pq, report.all.sq, report.all.rq, report.all.n) == (1.0, 1.0, 1.0, 2)
    assert report.things.n == 1 and report.stuff.n == 1


def test_given_prediction_mostly_in_void_then_not_a_false_positive(tmp_path):
    gt = np.zeros((8, 8), np.int64)
    gt[:4] = 1
    pred = np.zeros((8, 8), np.int64)
    pred[:4] = 1
    pred[4:, :6] = 2  # a thing of class 1 over VOID only
    report = _case(
        tmp_path,
        gt,
        [{"id": 1, "category_id": 1, "iscrowd": 0, "area": 32}],
        pred,
        [{"id": 1, "category_id": 1}, {"id": 2, "category_id": 1}],
    )
    assert report.counts["1"] == {"tp": 1, "fp": 0, "fn": 0}


def test_given_segment_missing_from_png_then_engine_input_error(tmp_path):
    ids = np.ones((4, 4), np.int64)
    with pytest.raises(EngineInputError) as err:
        _case(
            tmp_path,
            ids,
            [{"id": 1, "category_id": 1, "iscrowd": 0, "area": 16}],
            ids,
            [{"id": 1, "category_id": 1}, {"id": 9, "category_id": 1}],
        )
    assert err.value.code == "segment_not_in_png"


def test_given_file_mapping_then_same_figures_as_folders_with_intervals_around_them(tmp_path):
    root = FIXTURES / CASES[0]
    gt, pred = json.loads((root / "gt.json").read_text()), json.loads((root / "pred.json").read_text())
    by_folder = panoptic_quality(gt, pred, gt_dir=root / "gt", pred_dir=root / "pred")
    # the mapping's local names share nothing with the JSON's file names
    gt_files = {a["file_name"]: root / "gt" / a["file_name"] for a in gt["annotations"]}
    pred_files = {a["file_name"]: root / "pred" / a["file_name"] for a in pred["annotations"]}
    report = panoptic_quality(gt, pred, gt_files=gt_files, pred_files=pred_files, n_boot=200, seed=3)
    assert report.results_dict() == by_folder.results_dict()
    for group in ("all", "things", "stuff"):
        figures = getattr(report, group)
        for name in ("pq", "sq", "rq"):
            ci = report.intervals[f"{group}_{name}"]
            assert ci.low <= getattr(figures, name) <= ci.high
    assert report.intervals["all_pq"].high > report.intervals["all_pq"].low  # several images: a real spread
    again = panoptic_quality(gt, pred, gt_files=gt_files, pred_files=pred_files, n_boot=200, seed=3)
    assert again.to_dict() == report.to_dict()  # seeded
    assert PanopticReport.from_dict(json.loads(json.dumps(report.to_dict()))).intervals["all_pq"] == report.intervals["all_pq"]


def test_given_a_name_outside_the_mapping_then_missing_png(tmp_path):
    ids = np.ones((4, 4), np.int64)
    _write(tmp_path, "1.png", ids)
    gt = {"categories": [{"id": 1, "isthing": 1}], "annotations": [{"image_id": 1, "file_name": "../1.png", "segments_info": [{"id": 1, "category_id": 1, "iscrowd": 0, "area": 16}]}]}
    with pytest.raises(EngineInputError) as err:
        panoptic_quality(gt, gt, gt_files={"1.png": tmp_path / "1.png"}, pred_files={"1.png": tmp_path / "1.png"})
    assert err.value.code == "missing_png"


def _merged_case(tmp_path: Path, ids: np.ndarray, isthing: int = 1):
    from quality.engine.panoptic import merged_instances

    _write(tmp_path, "1.png", ids)
    doc = {
        "categories": [{"id": 1, "name": "bolt", "isthing": isthing}, {"id": 2, "name": "floor", "isthing": 0}],
        "annotations": [{"image_id": 7, "file_name": "1.png", "segments_info": [{"id": 5, "category_id": 1}, {"id": 9, "category_id": 2}]}],
    }
    return merged_instances(doc, png_files={"1.png": tmp_path / "1.png"})


def test_given_a_thing_segment_over_two_blobs_then_merged_instances_flags_it(tmp_path):
    ids = np.full((32, 32), 9, np.int64)  # stuff everywhere, itself split in many places
    ids[2:10, 2:10] = 5
    ids[20:30, 20:30] = 5  # a second bolt painted with the same id
    report = _merged_case(tmp_path, ids)
    assert (report.n_segments, report.n_flagged, report.per_class) == (1, 1, {"1": 1})
    (example,) = report.examples
    assert (example.image_id, example.segment_id, example.category_id, example.blobs, example.blob_areas) == (7, 5, 1, 2, [100, 64])


def test_given_one_blob_with_a_speck_or_a_stuff_class_then_not_flagged(tmp_path):
    ids = np.full((32, 32), 9, np.int64)
    ids[2:12, 2:12] = 5
    ids[20, 20] = 5  # a speck cut off by an occluder
    assert _merged_case(tmp_path / "a", ids).n_flagged == 0
    ids[20:30, 20:30] = 5
    assert _merged_case(tmp_path / "b", ids, isthing=0).n_segments == 0  # stuff is uncountable
