"""Buyer predictions as COCO results (RLE masks) for a set of images."""

from __future__ import annotations

from pycocotools import mask as mask_utils


def results_for(coco: dict, image_ids: list[int], *, score: float = 0.9) -> list[dict]:
    sizes = {img["id"]: (img["height"], img["width"]) for img in coco["images"]}
    wanted = set(image_ids)
    out = []
    for ann in coco["annotations"]:
        if ann["image_id"] not in wanted:
            continue
        h, w = sizes[ann["image_id"]]
        rle = mask_utils.merge(mask_utils.frPyObjects(ann["segmentation"], h, w))
        out.append({"image_id": ann["image_id"], "category_id": ann["category_id"], "segmentation": {"size": rle["size"], "counts": rle["counts"].decode()}, "score": score})
    return out
