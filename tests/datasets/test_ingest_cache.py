"""The reference cache and the scene figures ingest builds with the compiled reader are the
ones of the streaming path (no database: files on disk only)."""

import functools
import json

import numpy as np
import pytest

from datasets.ingest import build_cache
from datasets.ingest.scene import _file_scene, cache_scene
from datasets.validation import validate_annotation_file
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


def _ytvis_doc(seed: int, videos: int = 12) -> dict:
    """Tracks of polygons, compressed strings and uncompressed counts, with frames without a
    mask, crowd tracks, a video without tracks, lengths given or not."""
    from pycocotools import mask as cmask

    rng = np.random.default_rng(seed)
    vids, anns = [], []
    for v in range(videos, 0, -1):  # file order is not id order
        h, w, n = int(rng.integers(20, 60)), int(rng.integers(20, 60)), int(rng.integers(2, 7))
        video = {"id": v * 10, "height": h, "width": w, "file_names": [f"{v}/{f}.jpg" for f in range(n)]}
        if v % 2:
            video["length"] = n
        vids.append(video)
        if v == 3:
            continue
        for _ in range(int(rng.integers(1, 5))):
            segs = []
            for _f in range(n):
                kind = int(rng.integers(0, 5))
                x, y, s = float(rng.uniform(0, w - 8)), float(rng.uniform(0, h - 8)), float(rng.uniform(2, 14))
                m = np.zeros((h, w), dtype=np.uint8)
                m[int(y) : int(y + s), int(x) : int(x + s)] = 1
                if kind == 0:
                    segs.append(None)
                elif kind == 1:
                    segs.append([[round(x, 2), round(y, 2), min(w, round(x + s, 2)), round(y, 2), min(w, round(x + s, 2)), min(h, round(y + s, 2))]])
                elif kind == 2:
                    segs.append(rle(m))
                elif kind == 3:
                    segs.append({"size": [h, w], "counts": cmask.encode(np.asfortranarray(m))["counts"].decode()})
                else:
                    segs.append(None)
            anns.append({"id": len(anns) + 1, "video_id": v * 10, "category_id": int(rng.integers(1, 4)), "iscrowd": int(rng.random() < 0.15), "segmentations": segs})
    return {"videos": vids, "annotations": anns, "categories": [{"id": c, "name": f"c{c}"} for c in (1, 2, 3)]}


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_ytvis_scene_from_the_compiled_reader_is_the_streamed_scene(tmp_path, seed):
    from quality.engine.scene import ytvis_scene

    path = tmp_path / "v.json"
    path.write_text(json.dumps(_ytvis_doc(seed)))
    result = validate_annotation_file(path)
    assert result.valid and result.format == "youtube_vis", result.report["errors"]
    compiled = ytvis_scene(path)
    assert compiled is not None  # the compiled reader takes the file
    streamed, _ = _file_scene(path, "youtube_vis", compiled=False)
    assert streamed.occluded > 0 and 0 in streamed.per_frame
    assert (sorted(compiled.per_frame), sorted(compiled.categories), compiled.occluded, compiled.sizes) == (
        sorted(streamed.per_frame), sorted(streamed.categories), streamed.occluded, streamed.sizes
    )
    via_ingest, _ = _file_scene(path, "youtube_vis")
    assert via_ingest.figures() == streamed.figures()


def test_ytvis_scene_declines_what_it_does_not_read(tmp_path):
    """A file the compiled reader declines (here a length written as a float) is left to the
    streamed path, which measures it."""
    from quality.engine.scene import ytvis_scene

    doc = _ytvis_doc(4)
    doc["videos"][0]["length"] = float(len(doc["videos"][0]["file_names"]))
    path = tmp_path / "v.json"
    path.write_text(json.dumps(doc))
    assert ytvis_scene(path) is None
    assert _file_scene(path, "youtube_vis")[0].figures() == _file_scene(path, "youtube_vis", compiled=False)[0].figures()
    with native.disabled():
        assert ytvis_scene(path) is None


@pytest.mark.parametrize("seed", [5, 6])
def test_ytvis_videos_for_the_clips_from_the_compiled_reader_are_the_streamed_ones(tmp_path, seed):
    from datasets.selectors import file_videos

    path = tmp_path / "v.json"
    path.write_text(json.dumps(_ytvis_doc(seed)))
    streamed = file_videos(functools.partial(open, path, "rb"), "v.json", "youtube_vis")
    compiled = file_videos(functools.partial(open, path, "rb"), "v.json", "youtube_vis", local=path)
    assert compiled == streamed
    assert any(v["annotated"] for v in compiled.values()) and any(not v["annotated"] for v in compiled.values())
    assert any(len(v["annotated"]) < len(v["file_names"]) for v in compiled.values() if v["annotated"])
