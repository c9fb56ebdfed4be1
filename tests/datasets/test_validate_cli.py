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
