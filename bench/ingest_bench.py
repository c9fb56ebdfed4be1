"""Ingest benchmark: peak memory of validation + statistics + reference cache on a
train-scale annotation file, side by side with ``pycocotools.COCO()`` just loading it.

    python bench/ingest_bench.py [--images 118287] [--per-image 7.3] [--quick] [--keep PATH]

The file is generated streaming and seeded (random polygons of 8-24 vertices). Each
measurement runs in its own subprocess and reports its own peak RSS (ru_maxrss):

* ``ingest``: ``validate_annotation_file`` + statistics + ``build_reference_cache``
  (the worker's path, annotations streamed in chunks);
* ``cli``: ``python -m datasets validate PATH --json``;
* ``pycocotools``: ``COCO(PATH)``.

Prints one JSON object; exits 1 when the ingest path is not below both 1.5 GB and the
pycocotools figure.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
LIMIT = 1.5 * 1024**3


def generate(path: Path, images: int, per_image: float, seed: int = 0) -> int:
    rng = random.Random(seed)
    n_ann = 0
    with open(path, "w") as out:
        out.write(
            '{"info": {"description": "synthetic"}, "licenses": [{"id": 1, "name": "CC BY 4.0", "url": "https://creativecommons.org/licenses/by/4.0/"}],\n"images": ['
        )
        for i in range(1, images + 1):
            w, h = rng.choice([(640, 480), (480, 640), (640, 427), (500, 375)])
            out.write(("," if i > 1 else "") + json.dumps({"id": i, "file_name": f"{i:012d}.jpg", "width": w, "height": h, "license": 1}))
        out.write(
            '],\n"categories": ['
            + ",".join(json.dumps({"id": c, "name": f"class{c}", "supercategory": "thing"}) for c in range(1, 81))
            + '],\n"annotations": ['
        )
        rng2 = random.Random(seed + 1)
        for i in range(1, images + 1):
            w, h = 640, 480
            k = int(per_image) + (1 if rng2.random() < per_image - int(per_image) else 0)
            for _ in range(k):
                n_ann += 1
                cx, cy, r = rng2.uniform(40, 400), rng2.uniform(40, 330), rng2.uniform(5, 40)
                nv = rng2.randint(8, 24)
                pts = []
                for v in range(nv):
                    import math

                    a = 2 * math.pi * v / nv
                    rr = r * rng2.uniform(0.6, 1.0)
                    pts += [round(cx + rr * math.cos(a), 2), round(cy + rr * math.sin(a), 2)]
                ann = {
                    "id": n_ann,
                    "image_id": i,
                    "category_id": rng2.randint(1, 80),
                    "segmentation": [pts],
                    "area": round(3.0 * r * r, 2),
                    "bbox": [round(cx - r, 2), round(cy - r, 2), round(2 * r, 2), round(2 * r, 2)],
                    "iscrowd": 0,
                }
                out.write(("," if n_ann > 1 else "") + json.dumps(ann, separators=(",", ":")))
        out.write("]}\n")
    return n_ann


INGEST = """
import os, resource, sys, time, json
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "marketplace.settings")
import django; django.setup()
from pathlib import Path
from datasets.ingest.validate import validate_annotation_file
from datasets.ingest import build_cache
t = time.perf_counter()
r = validate_annotation_file(sys.argv[1])
assert r.valid, r.report["errors"][:3]
t_val = time.perf_counter() - t
cache, p = build_cache(Path(sys.argv[1]), r, Path(sys.argv[2]))
print(json.dumps({"seconds": time.perf_counter() - t, "validate_seconds": t_val, "annotations": int(len(cache.ann_ids)), "peak_rss": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024}))
"""

CLI = """
import resource, subprocess, sys, json, time
t = time.perf_counter()
rc = subprocess.run([sys.executable, "-m", "datasets", "validate", sys.argv[1], "--json"], stdout=subprocess.DEVNULL).returncode
print(json.dumps({"seconds": time.perf_counter() - t, "rc": rc, "peak_rss": resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss * 1024}))
"""

COCO = """
import resource, sys, json, time
from pycocotools.coco import COCO
t = time.perf_counter()
c = COCO(sys.argv[1])
print(json.dumps({"seconds": time.perf_counter() - t, "annotations": len(c.anns), "peak_rss": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024}))
"""


def measure(code: str, *args: str) -> dict:
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    out = subprocess.run([sys.executable, "-c", code, *args], cwd=ROOT, env=env, capture_output=True, text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--images", type=int, default=118_287)
    ap.add_argument("--per-image", type=float, default=7.3)
    ap.add_argument("--quick", action="store_true", help="5,000 images (CI smoke run)")
    ap.add_argument("--keep", help="write the generated file here and keep it")
    args = ap.parse_args()
    images = 5_000 if args.quick else args.images
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(args.keep) if args.keep else Path(tmp) / "train.json"
        t = time.perf_counter()
        n = generate(path, images, args.per_image) if not path.exists() else None
        gen = time.perf_counter() - t
        result = {"images": images, "annotations": n, "file_bytes": path.stat().st_size, "generate_seconds": round(gen, 1)}
        result["ingest"] = measure(INGEST, str(path), str(Path(tmp) / "cache.npz"))
        result["cli_validate"] = measure(CLI, str(path))
        result["pycocotools"] = measure(COCO, str(path))
    ing, cli, coco = result["ingest"]["peak_rss"], result["cli_validate"]["peak_rss"], result["pycocotools"]["peak_rss"]
    result["ok"] = ing < LIMIT and ing < coco and cli < LIMIT and cli < coco
    print(json.dumps(result, indent=2))
    # --quick is a smoke run: at 5k images the interpreter's baseline (Django, numpy)
    # dominates, so the comparison only means something at train scale.
    return 0 if result["ok"] or args.quick else 1


if __name__ == "__main__":
    sys.exit(main())
