"""Temporal consistency on small hand-made tracks (COCO with track ids) and the YouTube-VIS fixtures."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from pycocotools import mask as mask_utils

from quality.engine.errors import EngineInputError
from quality.engine.reports import TemporalReport
from quality.engine.temporal import temporal_consistency

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures" / "ytvis"


def _seg(box, h=20, w=20):
    m = np.zeros((h, w), np.uint8)
    y0, y1, x0, x1 = box
    m[y0:y1, x0:x1] = 1
    return {"size": [h, w], "counts": mask_utils.encode(np.asfortranarray(m))["counts"].decode()}


def _coco(tracks: dict, n_frames=5):
    """``tracks``: track id -> {frame: box}; one video of ``n_frames`` frames."""
    images = [{"id": 100 + f, "video_id": 1, "frame_id": f, "height": 20, "width": 20} for f in range(n_frames)]
    anns = []
    for track_id, frames in tracks.items():
        for f, box in frames.items():
            anns.append({"id": len(anns) + 1, "image_id": 100 + f, "category_id": 1, "track_id": track_id, "segmentation": _seg(box)})
    return {"images": images, "categories": [{"id": 1, "name": "a"}], "annotations": anns}


STEADY = {f: (2, 8, 2 + f, 8 + f) for f in range(5)}  # slides one pixel a frame: IoU 5/7


def test_given_steady_track_with_gap_and_jumping_track_then_figures():
    jumping = {0: (10, 14, 0, 4), 1: (10, 14, 0, 4), 2: (10, 14, 14, 18), 4: (10, 14, 14, 18)}
    report = temporal_consistency(_coco({"a": STEADY, "b": jumping}))
    rows = {r.track_id: r for r in report.tracks}
    assert rows["1:a"].temporal_iou == pytest.approx(5 / 7) and rows["1:a"].gaps == 0 and rows["1:a"].jumps == 0
    assert rows["1:b"].gaps == 1 and rows["1:b"].jumps == 1 and rows["1:b"].n_frames == 4
    assert report.tracks_that_jump == ["1:b"] and report.n_gaps == 1 and report.tracks_with_gaps == 1
    assert report.n_frame_pairs == 4 + 3
    assert not report.has_reference
    assert TemporalReport.from_dict(json.loads(json.dumps(report.to_dict()))) == report


def test_given_reference_then_id_switch_and_fragmentation_counted():
    reference = _coco({"r": STEADY})
    # the subject follows the object with track x, loses it at frame 2, then resumes as track y
    subject = _coco({"x": {0: STEADY[0], 1: STEADY[1]}, "y": {3: STEADY[3], 4: STEADY[4]}})
    report = temporal_consistency(subject, reference=reference, with_video_ap=False)
    assert report.has_reference and report.n_reference_tracks == 1
    assert report.id_switches == 1 and report.fragmentations == 1
    # st-IoU of the best single subject track: x covers 2 of 5 frames exactly
    assert report.st_iou == pytest.approx(2 * 36 / (5 * 36)) and report.n_st_matched == 1


def test_given_perfect_subject_then_no_identity_errors():
    reference = _coco({"r": STEADY})
    report = temporal_consistency(_coco({"s": STEADY}), reference=reference, with_video_ap=False)
    assert (report.id_switches, report.fragmentations, report.st_iou) == (0, 0, 1.0)


def test_given_image_without_frame_index_then_engine_input_error():
    data = _coco({"a": STEADY})
    del data["images"][0]["frame_id"]
    with pytest.raises(EngineInputError) as err:
        temporal_consistency(data)
    assert err.value.code == "missing_field"


def test_given_ytvis_fixture_then_temporal_figures_and_video_ap():
    pytest.importorskip("quality.engine.cocoeval")
    root = FIXTURES / "case_0"
    report = temporal_consistency(root / "results.json", reference=root / "gt.json")
    expected = json.loads((root / "expected.json").read_text())["stats"]
    assert report.video_ap.stats == expected
    assert report.n_tracks == len(json.loads((root / "results.json").read_text()))
    assert report.temporal_iou is not None and 0.0 <= report.temporal_iou <= 1.0
    assert report.id_switches is not None and report.st_iou is not None
