"""Validation benchmark: ``python -m datasets validate`` on a train-scale COCO file and on a
YouTube-VIS file of comparable size, beside what loading the same file costs in Python.

    python bench/validate_bench.py [--coco PATH] [--ytvis PATH] [--quick] [--python-path] [--keep DIR]

The files are generated seeded when not given: the COCO file by ``ingest_bench.generate``
(118,287 images, about 863k polygon masks, about 306 MB), the YouTube-VIS file here (6,000
videos of 36 frames, 6 tracks each, polygons in most frames, compressed RLE in every
fifth track, a few frames without a mask; about 320 MB). Each measurement runs in its own
process and reports its wall time and peak RSS (ru_maxrss):

* ``validate``: ``python -m datasets validate PATH --json`` (the compiled pass);
* ``validate_invalid`` (COCO): the same on a copy of the file with two bad annotations
  (``iscrowd`` 2 half-way and at the end): the report of a refused file;
* ``validate_python`` (``--python-path``): the same with ``QUALITY_NATIVE=0`` (slow);
* ``pycocotools``: ``COCO(PATH)`` (COCO file);
* ``json_load``: ``json.load`` of the file, the least any Python loader does (YouTube-VIS:
  pycocotools' COCO does not read it, and youtubevos' YTVOS is json.load plus an index).

Prints one JSON object with the ratios; exits 1 when ``validate`` is not faster than the
loader it is compared with, or its peak RSS is 1 GiB or more.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import random
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
GIB = 1024**3

VALIDATE = """
import os, resource, subprocess, sys, json, time
t = time.perf_counter()
rc = subprocess.run([sys.executable, "-m", "datasets", "validate", sys.argv[1], "--json"], stdout=subprocess.DEVNULL).returncode
print(json.dumps({"seconds": time.perf_counter() - t, "rc": rc, "peak_rss": resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss * 1024}))
"""

COCO_LOAD = """
import resource, sys, json, time
from pycocotools.coco import COCO
t = time.perf_counter()
c = COCO(sys.argv[1])
print(json.dumps({"seconds": time.perf_counter() - t, "annotations": len(c.anns), "peak_rss": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024}))
"""

JSON_LOAD = """
import resource, sys, json, time
t = time.perf_counter()
with open(sys.argv[1]) as fh:
    d = json.load(fh)
print(json.dumps({"seconds": time.perf_counter() - t, "annotations": len(d["annotations"]), "peak_rss": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024}))
"""


def generate_ytvis(path: Path, videos: int, frames: int = 36, tracks: int = 6, seed: int = 0) -> int:
    """A seeded YouTube-VIS file, written streaming; returns the number of annotations."""
    from pycocotools import mask as mask_utils

    rng = random.Random(seed)
    sizes = [(720, 1280), (1080, 1920), (480, 640)]
    dims = []
    with open(path, "w") as out:
        out.write('{"info": {"description": "synthetic"}, "licenses": [{"id": 1, "name": "CC BY 4.0", "url": "https://creativecommons.org/licenses/by/4.0/"}],\n"videos": [')
        for v in range(1, videos + 1):
            h, w = rng.choice(sizes)
            dims.append((h, w))
            names = [f"{v:05d}/{f:05d}.jpg" for f in range(frames)]
            out.write(("," if v > 1 else "") + json.dumps({"id": v, "width": w, "height": h, "length": frames, "file_names": names, "license": 1}))
        out.write('],\n"categories": [' + ",".join(json.dumps({"id": c, "name": f"class{c}", "supercategory": "object"}) for c in range(1, 41)) + '],\n"annotations": [')
        n = 0
        for v in range(1, videos + 1):
            h, w = dims[v - 1]
            for _t in range(tracks):
                n += 1
                cx, cy, r = rng.uniform(80, w - 80), rng.uniform(80, h - 80), rng.uniform(10, 60)
                rle = n % 5 == 0
                segs, boxes, areas = [], [], []
                for _f in range(frames):
                    if rng.random() < 0.05:
                        segs.append(None)
                        boxes.append(None)
                        areas.append(None)
                        continue
                    cx += rng.uniform(-3, 3)
                    cy += rng.uniform(-3, 3)
                    nv = rng.randint(8, 24)
                    pts = []
                    for k in range(nv):
                        a = 2 * math.pi * k / nv
                        rr = r * rng.uniform(0.6, 1.0)
                        pts += [round(min(max(cx + rr * math.cos(a), 0), w), 2), round(min(max(cy + rr * math.sin(a), 0), h), 2)]
                    if rle:
                        m = mask_utils.frPyObjects([pts], h, w)[0]
                        segs.append({"size": [h, w], "counts": m["counts"].decode()})
                    else:
                        segs.append([pts])
                    boxes.append([round(cx - r, 2), round(cy - r, 2), round(2 * r, 2), round(2 * r, 2)])
                    areas.append(round(3.0 * r * r, 2))
                ann = {"id": n, "video_id": v, "category_id": rng.randint(1, 40), "iscrowd": 0, "segmentations": segs, "bboxes": boxes, "areas": areas}
                out.write(("," if n > 1 else "") + json.dumps(ann, separators=(",", ":")))
        out.write("]}\n")
    return n


def measure(code: str, path: Path, env: dict | None = None) -> dict:
    out = subprocess.run([sys.executable, "-c", code, str(path)], cwd=ROOT, capture_output=True, text=True, check=True, env=env)
    return json.loads(out.stdout.strip().splitlines()[-1])


def spoiled(path: Path, out: Path) -> Path:
    """A copy of a COCO file with "iscrowd":0 made 2 half-way and at the end (same length)."""
    data = bytearray(path.read_bytes())
    for at in (data.find(b'"iscrowd":0}', len(data) // 2), data.rfind(b'"iscrowd":0}')):
        if at < 0:
            raise SystemExit(f"{path}: no compact iscrowd to spoil")
        data[at : at + 12] = b'"iscrowd":2}'
    out.write_bytes(data)
    return out


def run(path: Path, baseline: str, python_path: bool, invalid: Path | None = None) -> dict:
    row = {"file": str(path), "bytes": path.stat().st_size, "validate": measure(VALIDATE, path)}
    if row["validate"]["rc"] != 0:
        raise SystemExit(f"{path}: python -m datasets validate refused the file")
    if invalid is not None:
        row["validate_invalid"] = measure(VALIDATE, invalid)
        invalid.unlink()
        if row["validate_invalid"]["rc"] != 1:
            raise SystemExit(f"{invalid}: python -m datasets validate did not refuse the spoiled file")
    if python_path:
        row["validate_python"] = measure(VALIDATE, path, env={**os.environ, "QUALITY_NATIVE": "0"})
    row[baseline] = measure(COCO_LOAD if baseline == "pycocotools" else JSON_LOAD, path)
    row["speedup"] = round(row[baseline]["seconds"] / row["validate"]["seconds"], 2)
    row["ok"] = row["validate"]["seconds"] < row[baseline]["seconds"] and row["validate"]["peak_rss"] < GIB
    return row


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--coco", type=Path)
    ap.add_argument("--ytvis", type=Path)
    ap.add_argument("--quick", action="store_true", help="small files (a smoke run; the targets are for the full size)")
    ap.add_argument("--python-path", action="store_true", help="also time the Python path (QUALITY_NATIVE=0)")
    ap.add_argument("--keep", type=Path, help="write the generated files here and keep them")
    args = ap.parse_args()
    sys.path.insert(0, str(ROOT / "bench"))
    from ingest_bench import generate

    with tempfile.TemporaryDirectory() as tmp:
        where = args.keep or Path(tmp)
        where.mkdir(parents=True, exist_ok=True)
        coco, ytvis = args.coco, args.ytvis
        if coco is None:
            coco = where / "coco_train_scale.json"
            if not coco.exists():
                generate(coco, 2_000 if args.quick else 118_287, 7.3)
        if ytvis is None:
            ytvis = where / "ytvis_train_scale.json"
            if not ytvis.exists():
                generate_ytvis(ytvis, 60 if args.quick else 6_000)
        report = {
            "load_average": os.getloadavg(),
            "coco": run(coco, "pycocotools", args.python_path, spoiled(coco, where / "coco_spoiled.json")),
            "youtube_vis": run(ytvis, "json_load", args.python_path),
        }
    print(json.dumps(report, indent=2))
    return 0 if args.quick or (report["coco"]["ok"] and report["youtube_vis"]["ok"]) else 1


if __name__ == "__main__":
    sys.exit(main())
