"""The intrinsic report streams the seller's annotation files: the same report as the
engine on the parsed file, with memory that holds masks as compressed strings, not the
parsed annotations."""

from __future__ import annotations

import json
import tracemalloc

import orjson
import pytest

from quality.engine.intrinsic import intrinsic_checks
from quality.kinds import ADAPTERS
from tests import factories
from tests.quality.app.data import put_file, set_state
from tests.workers.synthetic import coco_pair

pytestmark = pytest.mark.django_db
MB = 1024 * 1024


def _with_findings(coco: dict) -> dict:
    anns = coco["annotations"]
    dup = dict(anns[0], id=10_000_001)  # the same mask twice on one image
    tiny = dict(anns[1], id=10_000_002, segmentation=[[1, 1, 3, 1, 3, 3, 1, 3]])
    outside = dict(anns[3], id=10_000_004, segmentation=[[-5, 1, 20, 1, 20, 20]])
    unknown = dict(anns[4], id=10_000_005, category_id=99)
    coco["annotations"] = anns + [dup, tiny, outside, unknown]
    coco["images"].append({"id": 99_999, "file_name": "images/empty.png", "width": 128, "height": 128})
    return coco


def test_the_intrinsic_report_streams_the_files_with_the_parsed_files_figures(seller, tmp_path):
    _ref, coco, _dets = coco_pair(images=3000, seed=9)
    coco = _with_findings(coco)
    version = factories.make_version(seller=seller)
    annotations = put_file(version=version, role="annotations", path="annotations.json", data=coco)
    set_state(version, "processing")

    adapter = ADAPTERS["intrinsic"]
    inputs = adapter.gather(version=version)
    assert inputs.missing is None and inputs.digests["annotations"]
    plots = tmp_path / "plots"
    plots.mkdir()
    tracemalloc.start()
    try:
        full, summary = adapter.run(version=version, inputs=inputs, device="cpu", plots_dir=plots)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    expected = intrinsic_checks(json.loads(json.dumps(coco)))
    assert full == expected.to_dict()
    counts = {f["code"]: f["count"] for f in full["findings"]}
    assert counts["duplicate_instance"] >= 1 and counts["tiny_mask"] >= 1
    assert counts["mask_outside_image"] >= 1 and counts["unknown_category"] == 1 and counts["image_without_annotations"] == 1
    assert summary["n_annotations"] == len(coco["annotations"])
    assert annotations.size > 2 * MB
    # parsing the file alone takes many times its size; the streamed report (its plots
    # included) a small multiple of the masks' compressed strings
    raw = json.dumps(coco).encode()
    tracemalloc.start()
    try:
        parsed = orjson.loads(raw)  # as the annotation files were read before
        parse_peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    del parsed
    assert 4 * peak < parse_peak, f"peak {peak / MB:.1f} MB; parsing the {annotations.size / MB:.1f} MB file alone {parse_peak / MB:.1f} MB"
