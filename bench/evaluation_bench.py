"""Buyer evaluation benchmark: peak memory of scoring a buyer's results against a large
version, the way the worker does it (``quality.services.evaluation_run``: the version's mask
cache loaded, the results read from a file by the compiled reader), side by side with
parsing the annotation JSON into Python objects first (what every evaluation did before).

    python bench/evaluation_bench.py [--images 20000] [--per-image 7.3] [--quick]

The version is generated seeded (``bench/synth.py``: star polygons), its cache built as
ingest builds it, and the results are the reference's own masks on a seeded 10 % of the
images (the public split's share). Each measurement runs in its own subprocess and
reports its own peak RSS (VmHWM) above its RSS after the imports:

* ``evaluation``: ``ReferenceCache.load`` + ``evaluate(cache, results_path)``;
* ``parse_json``: ``orjson.loads`` of the annotation file + ``evaluate(coco, results_path)``.

Prints one JSON object; exits 1 unless the evaluation's peak is below the parse's.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
RUN_DIR = ROOT / "var" / "bench" / "evaluation"

PRELUDE = """
import json, sys, time
import orjson
from quality.engine.cache import ReferenceCache
from quality.engine.cocoeval import EvalParams, evaluate
def rss():  # this process image's high-water mark (ru_maxrss would carry the parent's over exec)
    for line in open("/proc/self/status"):
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) * 1024
split = json.loads(open(sys.argv[3]).read())
params = EvalParams(img_ids=split["images"], cat_ids=split["categories"])
base = rss()
t = time.perf_counter()
"""

EVALUATION = PRELUDE + """
reference = ReferenceCache.load(sys.argv[1])
names = {int(c["id"]): c["name"] for c in orjson.loads(reference.categories_json)}
result = evaluate(reference, sys.argv[2], params=params, device="cpu")
print(json.dumps({"seconds": time.perf_counter() - t, "ap": float(result.stats[0]), "peak_rss": rss(), "peak_above_imports": rss() - base}))
"""

PARSE_JSON = PRELUDE + """
coco = orjson.loads(open(sys.argv[1], "rb").read())
names = {int(c["id"]): c["name"] for c in coco["categories"]}
result = evaluate(coco, sys.argv[2], params=params, device="cpu")
print(json.dumps({"seconds": time.perf_counter() - t, "ap": float(result.stats[0]), "peak_rss": rss(), "peak_above_imports": rss() - base}))
"""


def measure(code: str, *args: str) -> dict:
    out = subprocess.run([sys.executable, "-c", code, *args], cwd=RUN_DIR, capture_output=True, text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def build(images: int, per_image: float) -> tuple[Path, Path, Path, Path]:
    sys.path.insert(0, str(ROOT / "bench"))
    import synth

    from quality.engine.cache import build_reference_cache

    RUN_DIR.mkdir(parents=True, exist_ok=True)
    gt, _polys = synth.reference(images, per_image, 10, seed=0)
    annotations = RUN_DIR / "annotations.json"
    annotations.write_text(json.dumps(gt))
    cache = build_reference_cache(str(annotations))
    cache_path = RUN_DIR / "reference.npz"
    cache.save(cache_path)
    rng = np.random.default_rng(1)
    split = sorted(int(i) for i in rng.choice(cache.img_ids, size=max(1, len(cache.img_ids) // 10), replace=False))
    wanted = np.isin(cache.ann_image_ids, split) & ~cache.ann_iscrowd
    index = np.flatnonzero(wanted)
    rles = cache.rles(index)
    results = [
        {"image_id": int(cache.ann_image_ids[i]), "category_id": int(cache.ann_category_ids[i]), "segmentation": rle.to_json(), "score": 0.9}
        for i, rle in zip(index, rles, strict=True)
    ]
    results_path = RUN_DIR / "results.json"
    results_path.write_text(json.dumps(results))
    split_path = RUN_DIR / "split.json"
    split_path.write_text(json.dumps({"images": split, "categories": [int(c) for c in cache.cat_ids]}))
    return annotations, cache_path, results_path, split_path


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--images", type=int, default=20000)
    ap.add_argument("--per-image", type=float, default=7.3)
    ap.add_argument("--quick", action="store_true", help="2000 images (a few seconds)")
    args = ap.parse_args()
    images = 2000 if args.quick else args.images
    annotations, cache_path, results_path, split_path = build(images, args.per_image)
    evaluation = measure(EVALUATION, str(cache_path), str(results_path), str(split_path))
    parse_json = measure(PARSE_JSON, str(annotations), str(results_path), str(split_path))
    out = {
        "images": images,
        "annotation_file_bytes": annotations.stat().st_size,
        "cache_bytes": cache_path.stat().st_size,
        "results_bytes": results_path.stat().st_size,
        "evaluation": evaluation,
        "parse_json": parse_json,
    }
    print(json.dumps(out, indent=2))
    same = abs(evaluation["ap"] - parse_json["ap"]) < 1e-12
    return 0 if same and evaluation["peak_above_imports"] < parse_json["peak_above_imports"] else 1


if __name__ == "__main__":
    sys.exit(main())
