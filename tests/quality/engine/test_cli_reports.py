"""The report verbs of ``python -m quality``: JSON output, plots, one-line errors."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from pycocotools import mask as mask_utils

ROOT = Path(__file__).resolve().parents[3]
FIXTURES = ROOT / "tests" / "fixtures"


from quality.engine.cli import main  # noqa: E402


def _seg(box, h=32, w=48):
    m = np.zeros((h, w), np.uint8)
    y0, y1, x0, x1 = box
    m[y0:y1, x0:x1] = 1
    return {"size": [h, w], "counts": mask_utils.encode(np.asfortranarray(m))["counts"].decode()}, int(m.sum())


def _coco(boxes_per_image, shift=0):
    images = [{"id": i, "height": 32, "width": 48, "file_name": f"{i}.jpg"} for i in range(1, len(boxes_per_image) + 1)]
    anns = []
    for image_id, boxes in enumerate(boxes_per_image, start=1):
        for cat, (y0, y1, x0, x1) in boxes:
            seg, area = _seg((y0, y1, x0 + shift, x1 + shift))
            anns.append(
                {
                    "id": len(anns) + 1,
                    "image_id": image_id,
                    "category_id": cat,
                    "segmentation": seg,
                    "area": area,
                    "bbox": [x0 + shift, y0, x1 - x0, y1 - y0],
                    "iscrowd": 0,
                }
            )
    return {"images": images, "categories": [{"id": 1, "name": "a"}, {"id": 2, "name": "b"}], "annotations": anns}


BOXES = [[(1, (2, 12, 2, 14)), (2, (16, 28, 20, 40))], [(1, (4, 20, 4, 20))], [(2, (1, 9, 30, 46))]]


@pytest.fixture
def pair(tmp_path):
    ref, sel = tmp_path / "ref.json", tmp_path / "sel.json"
    ref.write_text(json.dumps(_coco(BOXES)))
    sel.write_text(json.dumps(_coco(BOXES, shift=1)))
    return ref, sel


def _run(capsys, argv):
    code = main(argv)
    out, err = capsys.readouterr()
    return code, out, err


def _pngs(folder: Path) -> dict[str, tuple[int, int]]:
    sizes = {}
    for path in sorted(folder.glob("*.png")):
        with Image.open(path) as img:
            assert img.format == "PNG"
            sizes[path.name] = img.size
    return sizes


def test_audit_json_and_plots(pair, tmp_path, capsys):
    ref, sel = pair
    code, out, _ = _run(
        capsys,
        [
            "audit",
            "--reference",
            str(ref),
            "--seller",
            str(sel),
            "--json",
            "--n-boot",
            "50",
            "--n-boot-ap",
            "5",
            "--plots",
            str(tmp_path / "plots"),
        ],
    )
    assert code == 0
    report = json.loads(out)
    assert report["n_matched"] == 4 and report["tier"] is not None and report["engine_version"]
    assert report["intervals"]["mask_iou"]["low"] <= report["mask_iou"] <= report["intervals"]["mask_iou"]["high"]
    sizes = _pngs(tmp_path / "plots")
    assert sizes["iou_histogram.png"] == (640, 480) and sizes["pr_curves.png"] == (640, 480)
    assert sizes["per_class_ap.png"] == (640, 480)
    overlays = {name: size for name, size in sizes.items() if name.startswith("overlay_")}
    assert overlays and all(name.split("_")[1] in ("best", "median", "worst") for name in overlays), overlays
    assert all(w == 180 and h > 32 for w, h in overlays.values())  # the 48 x 32 image above its legend strip


def test_agreement_and_intrinsic_json(pair, tmp_path, capsys):
    ref, sel = pair
    code, out, _ = _run(capsys, ["agreement", "--first", str(ref), "--second", str(sel), "--json", "--n-boot", "20"])
    assert code == 0 and json.loads(out)["n_matched"] == 4
    code, out, _ = _run(capsys, ["intrinsic", "--annotations", str(ref), "--json", "--plots", str(tmp_path / "p")])
    assert code == 0
    report = json.loads(out)
    assert {f["code"] for f in report["findings"]} >= {"empty_mask", "duplicate_instance"}
    assert _pngs(tmp_path / "p") == {"area_histogram.png": (640, 480), "class_distribution.png": (640, 480)}


def test_panoptic_json_equals_panopticapi(capsys):
    root = FIXTURES / "panoptic" / "case_1"
    code, out, _ = _run(
        capsys,
        [
            "panoptic",
            "--gt",
            str(root / "gt.json"),
            "--gt-dir",
            str(root / "gt"),
            "--pred",
            str(root / "pred.json"),
            "--pred-dir",
            str(root / "pred"),
            "--json",
        ],
    )
    assert code == 0
    assert json.loads(out) == json.loads((root / "expected.json").read_text())["results"]


def test_temporal_json_has_video_ap_stats(capsys, tmp_path):
    root = FIXTURES / "ytvis" / "case_2"
    code, out, _ = _run(
        capsys, ["temporal", "--gt", str(root / "gt.json"), "--results", str(root / "results.json"), "--json", "--plots", str(tmp_path)]
    )
    assert code == 0
    report = json.loads(out)
    assert report["video_ap"]["stats"] == json.loads((root / "expected.json").read_text())["stats"]
    assert report["temporal_iou"] is not None and report["id_switches"] is not None
    assert _pngs(tmp_path)["temporal_iou_histogram.png"] == (640, 480)


def test_bad_input_is_one_line_and_exit_2(tmp_path, capsys):
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    code, out, err = _run(capsys, ["intrinsic", "--annotations", str(bad)])
    assert code == 2 and out == ""
    assert err.count("\n") == 1 and err.startswith("error: invalid_json")
    code, _, err = _run(capsys, ["audit", "--reference", str(tmp_path / "nope.json"), "--seller", str(bad)])
    assert code == 2 and "file_not_found" in err


def test_python_m_quality_panoptic_in_a_fresh_process():
    root = FIXTURES / "panoptic" / "case_2"
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "quality",
            "panoptic",
            "--gt",
            str(root / "gt.json"),
            "--gt-dir",
            str(root / "gt"),
            "--pred",
            str(root / "pred.json"),
            "--pred-dir",
            str(root / "pred"),
            "--json",
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "MPLBACKEND": "Agg"},
    )
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout) == json.loads((root / "expected.json").read_text())["results"]


def test_video_audit_json_on_clips_and_its_plots(capsys, tmp_path):
    root = FIXTURES / "ytvis" / "case_0"
    gt = json.loads((root / "gt.json").read_text())
    # the seller's tracks are the reference's: every figure perfect on the clips
    clips = [{"video_id": v["id"], "frame_indices": [0, 1]} for v in gt["videos"][:3]]
    sampled = {c["video_id"]: set(c["frame_indices"]) for c in clips}
    reference = {
        **gt,
        "videos": [v for v in gt["videos"] if v["id"] in sampled],
        "annotations": [
            {**a, "segmentations": [s if f in sampled[a["video_id"]] else None for f, s in enumerate(a["segmentations"])]}
            for a in gt["annotations"]
            if a["video_id"] in sampled
        ],
    }
    paths = {name: tmp_path / f"{name}.json" for name in ("ref", "clips")}
    paths["ref"].write_text(json.dumps(reference))
    paths["clips"].write_text(json.dumps(clips))
    argv = ["video-audit", "--reference", str(paths["ref"]), "--seller", str(root / "gt.json"), "--clips", str(paths["clips"]), "--n-boot", "20"]
    code, out, _ = _run(capsys, [*argv, "--json", "--plots", str(tmp_path / "plots")])
    assert code == 0
    report = json.loads(out)
    assert report["n_videos"] == 3 and report["n_frames"] == 6
    assert report["id_switches"] == 0 and report["fragmentations"] == 0
    # 14 non-crowd masks at the sampled frames (video 1 also holds a crowd track, left out)
    assert report["n_reference"] == report["n_matched"] == 14
    assert report["mask_iou"] == 1.0 and report["instance_recall"] == report["instance_precision"] == 1.0
    assert set(_pngs(tmp_path / "plots")) == {"iou_histogram.png", "per_class_video_ap.png"}
    paths["clips"].write_text(json.dumps({"video_id": 1}))
    code, out, err = _run(capsys, argv)
    assert code == 2 and err.startswith("error: invalid_clips")
