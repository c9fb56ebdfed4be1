"""Helpers for the COCO evaluator tests: a pycocotools runner and a seeded random case maker."""

from __future__ import annotations

import contextlib
import copy
import io

import numpy as np
from pycocotools import _mask
from pycocotools.coco import COCO
from pycocotools.cocoeval import COCOeval


def pycoco_eval(gt: dict, dt: list, iou_type: str = "segm", **params) -> COCOeval:
    """pycocotools' COCOeval on deep copies (it mutates its inputs), output silenced."""
    with contextlib.redirect_stdout(io.StringIO()):
        coco = COCO()
        coco.dataset = copy.deepcopy(gt)
        coco.createIndex()
        res = coco.loadRes(copy.deepcopy(dt))
        ev = COCOeval(coco, res, iou_type)
        for k, v in params.items():
            setattr(ev.params, k, v)
        ev.evaluate()
        ev.accumulate()
        ev.summarize()
    return ev


def assert_same_arrays(ev: COCOeval, result) -> None:
    for key in ("precision", "recall", "scores"):
        a, b = ev.eval[key], getattr(result, key)
        assert a.shape == b.shape, key
        assert np.array_equal(a, b), f"{key} differs at {np.argwhere(a != b)[:3].tolist()}"
    assert list(ev.stats) == list(result.stats)


def rle_of_box(h: int, w: int, x0: int, y0: int, x1: int, y1: int) -> dict:
    m = np.zeros((h, w), dtype=np.uint8, order="F")
    m[y0:y1, x0:x1] = 1
    r = _mask.encode(m.reshape(h, w, 1))[0]
    return {"size": [h, w], "counts": r["counts"].decode()}


def run_lengths(rle: dict) -> list[int]:
    """The uncompressed COCO counts of a compressed RLE, from pycocotools' decoded mask."""
    counts = rle["counts"].encode() if isinstance(rle["counts"], str) else rle["counts"]
    m = _mask.decode([{"size": list(rle["size"]), "counts": counts}])[:, :, 0].flatten(order="F")
    change = np.flatnonzero(np.diff(m.astype(np.int8))) + 1
    bounds = np.r_[0, change, m.size]
    runs = np.diff(bounds).tolist()
    return ([0] + runs) if m.size and m[0] else runs


def uncompressed(rle: dict) -> dict:
    return {"size": rle["size"], "counts": run_lengths(rle)}


def random_case(seed: int, *, n_images: int = 10, n_cats: int = 5, dt_format: str = "rle", crowd_rate: float = 0.08, score_levels: int = 4):
    """A small random reference + results. ``dt_format``: rle | poly_bbox | box_only | rle_bbox."""
    rng = np.random.default_rng(seed)
    images, anns, results = [], [], []
    aid = 1
    for i in range(n_images):
        h, w = int(rng.integers(12, 40)), int(rng.integers(12, 40))
        img_id = int(rng.integers(1, 5)) + 7 * i  # non-contiguous ids
        images.append({"id": img_id, "height": h, "width": w})
        objs = []
        for _ in range(int(rng.integers(0, 7))):
            x0, y0 = int(rng.integers(0, w - 4)), int(rng.integers(0, h - 4))
            x1, y1 = int(rng.integers(x0 + 2, w + 1)), int(rng.integers(y0 + 2, h + 1))
            cat = int(rng.integers(1, n_cats))  # the last category never has references
            crowd = bool(rng.random() < crowd_rate)
            poly = [x0, y0, x1, y0 + rng.uniform(0, 1), x1, y1, x0 + rng.uniform(0, 2), y1]
            poly = [float(round(v, 2)) for v in poly]
            if crowd:
                seg = uncompressed(rle_of_box(h, w, x0, y0, x1, y1))
            else:
                seg = [poly]
            true_area = (x1 - x0) * (y1 - y0)
            area = float(rng.choice([true_area, 16.0, 64.0, true_area + 0.5]))  # area field as given, at bounds
            anns.append({"id": aid, "image_id": img_id, "category_id": cat, "iscrowd": int(crowd), "segmentation": seg, "area": area, "bbox": [float(x0), float(y0), float(x1 - x0), float(y1 - y0)]})
            objs.append((x0, y0, x1, y1, cat))
            aid += 1
        if rng.random() < 0.15:
            continue  # an image without results
        for _ in range(int(rng.integers(0, 12))):
            if objs and rng.random() < 0.7:
                x0, y0, x1, y1, cat = objs[int(rng.integers(len(objs)))]
                j = rng.integers(-2, 3, 4)
                x0, y0 = int(np.clip(x0 + j[0], 0, w - 2)), int(np.clip(y0 + j[1], 0, h - 2))
                x1, y1 = int(np.clip(x1 + j[2], x0 + 1, w)), int(np.clip(y1 + j[3], y0 + 1, h))
                if rng.random() < 0.2:
                    cat = int(rng.integers(1, n_cats + 1))
            else:
                x0, y0 = int(rng.integers(0, w - 2)), int(rng.integers(0, h - 2))
                x1, y1 = int(rng.integers(x0 + 1, w + 1)), int(rng.integers(y0 + 1, h + 1))
                cat = int(rng.integers(1, n_cats + 1))
            score = float(rng.integers(1, score_levels + 1)) / score_levels
            r = {"image_id": img_id, "category_id": cat, "score": score}
            box = [float(x0), float(y0), float(x1 - x0), float(y1 - y0)]
            if dt_format in ("rle", "rle_bbox"):
                r["segmentation"] = rle_of_box(h, w, x0, y0, x1, y1)
                if dt_format == "rle_bbox":
                    r["bbox"] = box
            elif dt_format == "poly_bbox":
                r["segmentation"] = [[float(x0), float(y0), float(x1) - 0.5, float(y0), float(x1), float(y1), float(x0), float(y1) - 0.3]]
                r["bbox"] = box
            else:
                r["bbox"] = box
            results.append(r)
    rng.shuffle(results)
    cats = [{"id": k, "name": f"c{k}"} for k in range(1, n_cats + 1)]
    return {"images": images, "annotations": anns, "categories": cats}, results
