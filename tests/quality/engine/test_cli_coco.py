"""``python -m quality evaluate`` / ``cache``: output shapes and bad input (exit 2, one line)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from tests.quality.engine.coco_parity_helpers import pycoco_eval, random_case

ROOT = Path(__file__).resolve().parents[3]


def _run(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "quality", *args], cwd=ROOT, capture_output=True, text=True, timeout=120)


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    d = tmp_path_factory.mktemp("cli")
    gt, dt = random_case(11, n_images=10)
    (d / "gt.json").write_text(json.dumps(gt))
    (d / "dt.json").write_text(json.dumps(dt))
    return d, gt, dt


def test_json_output_and_arrays_match_pycocotools(files):
    d, gt, dt = files
    out = _run("evaluate", "--gt", str(d / "gt.json"), "--dt", str(d / "dt.json"), "--json", "--arrays", str(d / "a.npz"))
    assert out.returncode == 0, out.stderr
    lines = out.stdout.strip().splitlines()
    assert len(lines) == 1
    payload = json.loads(lines[0])
    assert set(payload) == {"stats", "engine", "device", "seconds"}
    ev = pycoco_eval(gt, dt, "segm")
    assert payload["stats"] == list(ev.stats)
    assert payload["device"] == "cpu"
    arrays = np.load(d / "a.npz")
    for key in ("precision", "recall", "scores"):
        assert np.array_equal(arrays[key], ev.eval[key])


def test_default_output_is_the_12_summary_lines(files):
    d, gt, dt = files
    out = _run("evaluate", "--gt", str(d / "gt.json"), "--dt", str(d / "dt.json"), "--iou-type", "bbox")
    assert out.returncode == 0, out.stderr
    lines = out.stdout.rstrip("\n").splitlines()
    assert len(lines) == 12
    assert lines[0].startswith(" Average Precision  (AP) @[ IoU=0.50:0.95 | area=   all | maxDets=100 ] = ")
    assert lines[-1].startswith(" Average Recall     (AR) @[ IoU=0.50:0.95 | area= large | maxDets=100 ] = ")


def test_cache_verb_then_evaluate_from_the_cache(files):
    d, gt, dt = files
    out = _run("cache", "--gt", str(d / "gt.json"), "--out", str(d / "ref.npz"))
    assert out.returncode == 0, out.stderr
    warm = _run("evaluate", "--gt-cache", str(d / "ref.npz"), "--dt", str(d / "dt.json"), "--json")
    cold = _run("evaluate", "--gt", str(d / "gt.json"), "--dt", str(d / "dt.json"), "--json")
    assert json.loads(warm.stdout)["stats"] == json.loads(cold.stdout)["stats"]


def _bad(tmp_path, gt, dt, code: str, where: str):
    (tmp_path / "gt.json").write_text(json.dumps(gt))
    (tmp_path / "dt.json").write_text(json.dumps(dt) if not isinstance(dt, str) else dt)
    out = _run("evaluate", "--gt", str(tmp_path / "gt.json"), "--dt", str(tmp_path / "dt.json"))
    assert out.returncode == 2
    assert "Traceback" not in out.stderr
    err = out.stderr.strip().splitlines()
    assert len(err) == 1, out.stderr
    assert code in err[0] and where in err[0], err[0]


def _small():
    gt = {
        "images": [{"id": 1, "height": 10, "width": 10}],
        "categories": [{"id": 1, "name": "a"}],
        "annotations": [{"id": 1, "image_id": 1, "category_id": 1, "iscrowd": 0, "area": 16.0, "bbox": [1, 1, 4, 4], "segmentation": [[1, 1, 5, 1, 5, 5, 1, 5]]}],
    }
    dt = [{"image_id": 1, "category_id": 1, "score": 0.5, "segmentation": {"size": [10, 10], "counts": "P14600000l0"}}]
    return gt, dt


def test_unknown_image_and_category(tmp_path):
    gt, dt = _small()
    dt2 = [dict(dt[0], image_id=7)]
    _bad(tmp_path, gt, dt2, "unknown_image", "results[0]")
    dt3 = [dt[0], dict(dt[0], category_id=9)]
    _bad(tmp_path, gt, dt3, "unknown_category", "results[1]")


def test_rle_size_mismatch(tmp_path):
    gt, dt = _small()
    dt[0]["segmentation"]["size"] = [12, 10]
    _bad(tmp_path, gt, dt, "rle_size_mismatch", "results[0].segmentation.size")


def test_malformed_polygon_in_the_reference(tmp_path):
    gt, dt = _small()
    gt["annotations"][0]["segmentation"] = [[1, 2, 3]]
    _bad(tmp_path, gt, dt, "polygon_odd_length", "annotations[0].segmentation[0]")


def test_unreadable_json_and_missing_file(tmp_path):
    gt, _ = _small()
    _bad(tmp_path, gt, "[{", "invalid_json", "dt.json")
    out = _run("evaluate", "--gt", str(tmp_path / "nope.json"), "--dt", str(tmp_path / "dt.json"))
    assert out.returncode == 2 and "nope.json" in out.stderr and "Traceback" not in out.stderr


def test_non_finite_numbers(tmp_path):
    gt, dt = _small()
    _bad(tmp_path, gt, '[{"image_id": 1, "category_id": 1, "score": 1e999, "bbox": [1, 1, 2, 2]}]', "invalid_json", "dt.json")
    # through the Python API (JSON cannot hold NaN): a clear EngineInputError
    from quality.engine.cocoeval import evaluate
    from quality.engine.errors import EngineInputError

    with pytest.raises(EngineInputError) as exc:
        evaluate(gt, [dict(dt[0], score=float("nan"))])
    assert exc.value.code == "non_finite" and exc.value.location == "results[0]"
    gt["annotations"][0]["segmentation"] = [[1, 1, float("inf"), 1, 5, 5, 1, 5]]
    with pytest.raises(EngineInputError) as exc:
        evaluate(gt, dt)
    assert exc.value.code == "non_finite_number" and exc.value.location == "annotations[0].segmentation[0][2]"
