"""Seeded synthetic COCO data for the pipeline tests: star polygons, a clean reference
and a noisy copy (the seller's masks / a model's detections)."""

from __future__ import annotations

import math
import random


def star(cx: float, cy: float, r: float, points: int, rng: random.Random, jitter: float = 0.0) -> list[float]:
    poly = []
    for i in range(points * 2):
        radius = (r if i % 2 == 0 else r * 0.5) * (1 + rng.uniform(-jitter, jitter))
        angle = math.pi * i / points
        poly += [round(cx + radius * math.cos(angle), 2), round(cy + radius * math.sin(angle), 2)]
    return poly


def coco_pair(*, images: int = 30, seed: int = 7, size: int = 128, noise: float = 0.15) -> tuple[dict, dict, list[dict]]:
    """(reference COCO, noisy COCO with the same ids, detections list with scores)."""
    rng = random.Random(seed)
    categories = [{"id": 1, "name": "gripper"}, {"id": 2, "name": "bolt"}, {"id": 3, "name": "cable"}]
    ref = {"images": [], "annotations": [], "categories": categories}
    noisy = {"images": [], "annotations": [], "categories": categories}
    dets = []
    ann_id = 1
    for image_id in range(1, images + 1):
        image = {"id": image_id, "file_name": f"images/{image_id:04d}.png", "width": size, "height": size}
        ref["images"].append(image)
        noisy["images"].append(dict(image))
        for _ in range(rng.randint(1, 4)):
            cx, cy, r = rng.uniform(25, size - 25), rng.uniform(25, size - 25), rng.uniform(8, 22)
            points, cat = rng.randint(4, 7), rng.choice(categories)["id"]
            clean = star(cx, cy, r, points, rng)
            dirty = star(cx + rng.uniform(-2, 2), cy + rng.uniform(-2, 2), r, points, rng, jitter=noise)
            for target, poly in ((ref, clean), (noisy, dirty)):
                xs, ys = poly[0::2], poly[1::2]
                bbox = [min(xs), min(ys), max(xs) - min(xs), max(ys) - min(ys)]
                target["annotations"].append({"id": ann_id, "image_id": image_id, "category_id": cat, "segmentation": [poly], "area": round(bbox[2] * bbox[3] * 0.5, 2), "bbox": bbox, "iscrowd": 0})
            dets.append({"image_id": image_id, "category_id": cat, "segmentation": [dirty], "score": round(rng.uniform(0.3, 1.0), 4)})
            ann_id += 1
    return ref, noisy, dets
