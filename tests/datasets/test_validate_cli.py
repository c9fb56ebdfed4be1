import json
import subprocess
import sys
from pathlib import Path

from tests.datasets.helpers import coco

ROOT = Path(__file__).resolve().parents[2]


def _run(path, *extra):
    return subprocess.run(
        [sys.executable, "-m", "datasets", "validate", str(path), *extra], cwd=ROOT, capture_output=True, text=True, timeout=120
    )


def test_validate_cli_exit_codes(tmp_path):
    good = tmp_path / "good.json"
    good.write_text(json.dumps(coco()))
    r = _run(good, "--json")
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout)["statistics"]["instances"] == 6
    bad_data = coco()
    bad_data["annotations"][1]["image_id"] = 77
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps(bad_data))
    r = _run(bad)
    assert r.returncode == 1
    assert "dangling_image_id" in r.stdout and "annotations[1].image_id" in r.stdout
    r = _run(bad, "--json")
    assert r.returncode == 1 and json.loads(r.stdout)["report"]["errors"][0]["code"] == "dangling_image_id"


def test_the_issue_files_are_refused_on_both_paths(tmp_path):
    """The two counts strings that pycocotools would read past its buffer, and a 70000 x 70000
    image: refused with a code and a JSON path, the same report with the compiled kernels
    and without (QUALITY_NATIVE=0)."""
    import os

    from tests.hostile_masks import CASES, coco_text

    files = {
        "rle-runs-past-the-image": ("rle_sum_mismatch", "annotations[1].segmentation.counts"),
        "rle-not-rle": ("rle_bad_character", "annotations[1].segmentation.counts"),
        "image-70000-square": ("image_too_large", "images[1].height"),
    }
    for name, (code, where) in files.items():
        path = tmp_path / f"{name}.json"
        path.write_text(coco_text(CASES[name]))
        reports = []
        for flag in ("1", "0"):
            r = subprocess.run(
                [sys.executable, "-m", "datasets", "validate", str(path), "--json"],
                cwd=ROOT, capture_output=True, text=True, timeout=120, env={**os.environ, "QUALITY_NATIVE": flag},
            )
            assert r.returncode == 1, r.stderr
            report = json.loads(r.stdout)["report"]
            assert [(e["code"], e["location"]) for e in report["errors"]] == [(code, where)]
            reports.append(report)
        assert reports[0] == reports[1]


def test_validate_cli_reads_surrogate_escapes_without_setting_up_the_apps(tmp_path):
    # json.dumps writes the emoji as a pair of \uXXXX surrogate escapes: one code point
    data = coco()
    data["categories"][0]["name"] = "\U0001f600"
    good = tmp_path / "good.json"
    good.write_text(json.dumps(data))
    lone = tmp_path / "lone.json"
    lone.write_text(json.dumps(data).replace("\\ud83d\\ude00", "\\ud83d"))
    check = (
        "import sys\n"
        "from datasets.__main__ import main\n"
        "codes = [main(['validate', path]) for path in sys.argv[1:]]\n"
        "loaded = sorted(m for m in ('datasets.models', 'datasets.ingest', 'django.apps.registry', 'rest_framework') if m in sys.modules)\n"
        "print(codes, loaded)\n"
    )
    r = subprocess.run([sys.executable, "-c", check, str(good), str(lone)], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    assert r.stdout.splitlines()[-1] == "[0, 1] []"  # the file checks alone: no model, no app
    assert "invalid_json             categories[0].name: not valid JSON: the escape \\ud83d is half of a surrogate pair" in r.stdout
