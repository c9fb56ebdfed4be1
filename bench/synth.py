"""Seeded synthetic COCO instance-segmentation workloads (reference + results).

Random star polygons on images of a few sizes; the reference has ~1 % crowd regions
(uncompressed RLE, as COCO stores crowds) and polygon masks with float ``area`` fields
(shoelace, as COCO's); results are compressed RLE masks with scores:

- ``audit``: the seller's relabelling of the reference: boundary noise on every vertex,
  some misses, some false positives, constant scores (every score tied).
- ``model``: 100 scored predictions per image: jittered copies of the references (some
  with the wrong category) and false positives, scores rounded to 3 decimals (ties).
"""

from __future__ import annotations

import numpy as np
from pycocotools import _mask

SIZES = [(480, 640), (640, 480), (512, 512), (600, 800), (427, 640)]


def _star(rng: np.random.Generator, cx: float, cy: float, r: float, h: int, w: int) -> np.ndarray:
    n = int(rng.integers(8, 20))
    ang = np.sort(rng.uniform(0, 2 * np.pi, n))
    rad = r * rng.uniform(0.55, 1.0, n)
    xs = np.clip(cx + rad * np.cos(ang), 0, w - 1)
    ys = np.clip(cy + rad * np.sin(ang), 0, h - 1)
    return np.round(np.stack([xs, ys], 1), 2)


def _area(poly: np.ndarray) -> float:
    x, y = poly[:, 0], poly[:, 1]
    return float(0.5 * abs(np.dot(x, np.roll(y, 1)) - np.dot(y, np.roll(x, 1))))


def _bbox(poly: np.ndarray) -> list[float]:
    x0, y0 = poly.min(0)
    x1, y1 = poly.max(0)
    return [float(x0), float(y0), float(x1 - x0), float(y1 - y0)]


def _uncompressed(rle: dict) -> dict:
    m = _mask.decode([rle])[:, :, 0]
    flat = m.flatten(order="F")
    change = np.flatnonzero(np.diff(flat)) + 1
    b = np.r_[0, change, flat.size]
    counts = np.diff(b).tolist()
    if flat.size and flat[0] == 1:
        counts = [0] + counts
    return {"size": list(rle["size"]), "counts": counts}


def reference(n_images: int, objs_per_image: float, n_cats: int, seed: int, crowd_rate: float = 0.01):
    rng = np.random.default_rng(seed)
    images, anns, polys = [], [], []
    cats = [{"id": k + 1, "name": f"class_{k + 1}", "supercategory": "thing"} for k in range(n_cats)]
    aid = 1
    for i in range(n_images):
        h, w = SIZES[int(rng.integers(len(SIZES)))]
        images.append({"id": i + 1, "height": h, "width": w, "file_name": f"{i + 1:06d}.jpg"})
        for _ in range(int(rng.poisson(objs_per_image))):
            r = float(np.exp(rng.uniform(np.log(4), np.log(min(h, w) / 3))))
            cx, cy = rng.uniform(r, w - r), rng.uniform(r, h - r)
            poly = _star(rng, cx, cy, r, h, w)
            cat = int(rng.integers(1, n_cats + 1))
            crowd = bool(rng.random() < crowd_rate)
            ann = {"id": aid, "image_id": i + 1, "category_id": cat, "iscrowd": int(crowd), "bbox": _bbox(poly), "area": _area(poly)}
            if crowd:
                rle = _mask.frPoly([poly.ravel().tolist()], h, w)[0]
                ann["segmentation"] = _uncompressed(rle)
                ann["area"] = float(_mask.area([rle])[0])
            else:
                ann["segmentation"] = [poly.ravel().tolist()]
            anns.append(ann)
            polys.append((poly, h, w))
            aid += 1
    return {"images": images, "annotations": anns, "categories": cats}, polys


def audit(n_images: int = 5000, seed: int = 0):
    gt, polys = reference(n_images, 7.3, 10, seed)
    rng = np.random.default_rng(seed + 1)
    results: list[dict] = []
    by: dict = {}
    for ann, (poly, h, w) in zip(gt["annotations"], polys):
        if ann["iscrowd"] or rng.random() < 0.06:  # misses
            continue
        r = np.sqrt(max(ann["area"], 1.0))
        noise = rng.normal(0, 0.04 * r + 0.3, poly.shape)
        p = np.round(np.clip(poly + noise, 0, [w - 1, h - 1]), 2)
        res = {"image_id": ann["image_id"], "category_id": ann["category_id"], "score": 1.0}
        results.append(res)
        by.setdefault((h, w, ann["image_id"]), []).append((p, res))
    for img in gt["images"]:  # false positives
        h, w = img["height"], img["width"]
        for _ in range(int(rng.poisson(0.45))):
            r = float(np.exp(rng.uniform(np.log(4), np.log(min(h, w) / 3))))
            p = _star(rng, rng.uniform(r, w - r), rng.uniform(r, h - r), r, h, w)
            res = {"image_id": img["id"], "category_id": int(rng.integers(1, 11)), "score": 1.0}
            results.append(res)
            by.setdefault((h, w, img["id"]), []).append((p, res))
    _encode_grouped(by)
    return gt, results


def _encode_grouped(by: dict) -> None:
    for (h, w, _), items in by.items():
        rles = _mask.frPoly([p.ravel().tolist() for p, _ in items], h, w)
        for rle, (_, res) in zip(rles, items):
            res["segmentation"] = {"size": [h, w], "counts": rle["counts"].decode()}


def model(n_images: int = 1000, seed: int = 0, per_image: int = 100, n_cats: int = 10):
    gt, polys = reference(n_images, 7.3, n_cats, seed + 10)
    rng = np.random.default_rng(seed + 11)
    by_img: dict = {}
    for ann, pp in zip(gt["annotations"], polys):
        by_img.setdefault(ann["image_id"], []).append((ann, pp))
    results: list[dict] = []
    by: dict = {}
    for img in gt["images"]:
        h, w = img["height"], img["width"]
        items = by_img.get(img["id"], [])
        n = 0
        for ann, (poly, _, _) in items:
            for _ in range(int(rng.integers(1, 5))):
                if n >= per_image:
                    break
                r = np.sqrt(max(ann["area"], 1.0))
                noise = rng.normal(0, rng.uniform(0.02, 0.25) * r, poly.shape)
                p = np.round(np.clip(poly + noise + rng.normal(0, 0.05 * r, 2), 0, [w - 1, h - 1]), 2)
                cat = ann["category_id"] if rng.random() < 0.85 else int(rng.integers(1, n_cats + 1))
                res = {"image_id": img["id"], "category_id": cat, "score": round(float(rng.random()), 3)}
                results.append(res)
                by.setdefault((h, w, img["id"]), []).append((p, res))
                n += 1
        while n < per_image:
            r = float(np.exp(rng.uniform(np.log(4), np.log(min(h, w) / 3))))
            p = _star(rng, rng.uniform(r, w - r), rng.uniform(r, h - r), r, h, w)
            res = {"image_id": img["id"], "category_id": int(rng.integers(1, n_cats + 1)), "score": round(float(rng.random()) * 0.6, 3)}
            results.append(res)
            by.setdefault((h, w, img["id"]), []).append((p, res))
            n += 1
    _encode_grouped(by)
    return gt, results
