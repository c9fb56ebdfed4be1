"""The reference cache and the scene figures ingest builds with the compiled reader are the
ones of the streaming path (no database: files on disk only)."""

import json

import numpy as np
import pytest

from datasets.ingest import build_cache
from datasets.ingest.scene import _file_scene, cache_scene
from datasets.ingest.validate import validate_annotation_file
from quality.engine import native
from quality.engine.cache import compiled_reference
from tests.quality.engine.test_scene import rle


def _doc(seed: int, images: int = 60) -> dict:
    """Polygons (one and several per annotation), compressed and uncompressed RLEs and crowd
    regions, on images of several sizes, close together so that many masks touch."""
    from pycocotools import mask as cmask

    rng = np.random.default_rng(seed)
    imgs, anns = [], []
    for i in range(1, images + 1):
        h, w = int(rng.integers(20, 90)), int(rng.integers(20, 90))
        imgs.append({"id": i, "file_name": f"{i}.jpg", "height": h, "width": w})
        for _ in range(int(rng.integers(0, 7))):
            kind = int(rng.integers(0, 4))
            x, y = float(rng.uniform(0, w - 10)), float(rng.uniform(0, h - 10))
            s = float(rng.uniform(2, 15))
            square = [x, y, min(w, x + s), y, min(w, x + s), min(h, y + s), x, min(h, y + s)]
            if kind == 0:
                seg = [[round(v, 2) for v in square]]
            elif kind == 1:
                seg = [[round(v, 2) for v in square], [round(v / 2, 2) for v in square]]
            else:
                m = np.zeros((h, w), dtype=np.uint8)
                m[int(y) : int(y + s), int(x) : int(x + s)] = 1
                seg = rle(m)
                if kind == 3:
                    enc = cmask.encode(np.asfortranarray(m))
                    seg = {"size": [h, w], "counts": enc["counts"].decode()}
            anns.append(
                {
                    "id": len(anns) + 1,
                    "image_id": i,
                    "category_id": int(rng.integers(1, 4)),
                    "segmentation": seg,
                    "area": round(s * s, 2),
                    "bbox": [round(x, 2), round(y, 2), round(s, 2), round(s, 2)],
                    "iscrowd": int(kind >= 2 and rng.random() < 0.3),
                }
            )
    cats = [{"id": c, "name": f"c{c}", "supercategory": "thing"} for c in (1, 2, 3)]
    return {"images": imgs, "annotations": anns, "categories": cats}


@pytest.mark.parametrize("seed", [0, 1])
def test_compiled_cache_is_the_streaming_cache(tmp_path, seed):
    path = tmp_path / "a.json"
    path.write_text(json.dumps(_doc(seed)))
    result = validate_annotation_file(path)
    assert result.valid, result.report["errors"]
    assert compiled_reference(path, with_masks=False) is not None  # the compiled reader takes the file
    compiled, _ = build_cache(path, result, tmp_path / "c1" / "reference.npz")
    with native.disabled():
        streamed, _ = build_cache(path, result, tmp_path / "c2" / "reference.npz")
    for key in ("img_ids", "img_heights", "img_widths", "cat_ids", "ann_ids", "ann_image_ids", "ann_category_ids", "ann_area",
                "ann_iscrowd", "ann_ignore", "ann_bbox", "rle_offsets", "rle_box", "rle_area"):
        assert np.array_equal(getattr(compiled, key), getattr(streamed, key), equal_nan=key == "ann_bbox"), key
    assert compiled.rle_blob == streamed.rle_blob
    assert compiled.categories_json == streamed.categories_json
    assert (tmp_path / "c1" / "reference.npz").read_bytes() == (tmp_path / "c2" / "reference.npz").read_bytes()


@pytest.mark.parametrize("seed", [2, 3])
def test_scene_from_the_cache_is_the_streamed_scene(tmp_path, seed):
    path = tmp_path / "a.json"
    path.write_text(json.dumps(_doc(seed, images=150)))
    result = validate_annotation_file(path)
    cache, _ = build_cache(path, result, tmp_path / "reference.npz")
    streamed, _declared = _file_scene(path, "coco_instances")
    got = cache_scene(cache)
    assert streamed.occluded > 0
    # the streamed path adds a frame when its last annotation is read: the same frames, in
    # another order
    assert (sorted(got.per_frame), sorted(got.categories), got.occluded, got.sizes) == (
        sorted(streamed.per_frame), sorted(streamed.categories), streamed.occluded, streamed.sizes
    )
    assert got.figures() == streamed.figures()
