"""The embedded default (SQLite) searches too: icontains instead of tsvector, same filters and facets."""

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_search_works_on_sqlite(tmp_path):
    # The embedded default: no PostgreSQL, no Redis, no S3.
    drop = ("DJANGO_SETTINGS_MODULE", "CELERY_BROKER_URL", "CACHE_URL", "AWS_STORAGE_BUCKET_NAME", "AWS_S3_ENDPOINT_URL")
    env = {k: v for k, v in os.environ.items() if k not in drop}
    env.update(DATABASE_URL=f"sqlite:///{tmp_path}/db.sqlite3", MARKET_VAR_DIR=str(tmp_path), MARKET_PROFILE="dev")
    queries = [
        "",
        "q=warehouse",
        "q=towel",
        "embodiment=humanoid&embodiment=mobile-manipulator",
        "ordering=quality_adjusted_cost",
        "min_mask_iou=0.9&ordering=-mask_iou",
        "sensor=rgb&min_occlusion=0.5&embodiment=UR5e",
        "ordering=diversity",
    ]
    env["PYTHONPATH"] = str(ROOT)
    proc = subprocess.run(
        [sys.executable, "tests/listings/sqlite_probe.py", *queries], cwd=ROOT, env=env, capture_output=True, text=True, timeout=300
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    assert sorted(out[""]["slugs"]) == ["home-folding", "kitchen-grasp", "lab-benchtop", "warehouse-pick"]
    assert out["q=warehouse"]["slugs"] == ["warehouse-pick"]
    assert out["q=towel"]["slugs"] == ["home-folding"]
    assert sorted(out["embodiment=humanoid&embodiment=mobile-manipulator"]["slugs"]) == ["home-folding", "warehouse-pick"]
    assert out["ordering=quality_adjusted_cost"]["slugs"] == ["home-folding", "warehouse-pick", "lab-benchtop", "kitchen-grasp"]
    assert out["min_mask_iou=0.9&ordering=-mask_iou"]["slugs"] == ["lab-benchtop", "kitchen-grasp"]
    assert {f["value"]: f["count"] for f in out[""]["facets"]["embodiment"]} == {"arm": 3, "humanoid": 1, "mobile-manipulator": 1, "ur5e": 1}
    assert {f["value"]: f["count"] for f in out[""]["facets"]["sensor"]} == {"rgb": 3, "rgbd": 1, "depth": 1, "thermal": 1}
    assert {f["value"]: f["count"] for f in out[""]["facets"]["annotation_kind"]} == {"instances": 2, "video": 1, "panoptic": 1}
    assert out["sensor=rgb&min_occlusion=0.5&embodiment=UR5e"]["slugs"] == ["warehouse-pick"]
    assert out["ordering=diversity"]["slugs"] == ["home-folding", "warehouse-pick", "lab-benchtop", "kitchen-grasp"]
