"""Write the seed inputs of tests/fuzz/corpus/<target>/ (``python tests/fuzz/seeds.py``):
small valid inputs of each shape, from which the fuzzer mutates. Committed; rerun only to
change the seeds (the crash inputs kept as regression cases sit beside them)."""

from __future__ import annotations

import json
import struct
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parents[1]))

from tests.hostile_masks import encode_runs, encode_values  # noqa: E402

RUNS = [11, 2, 8, 2, 77]  # a 10x10 mask
UTF8 = "caf\u00e9 \u628a\u624b \U0001f600 \u0080\u07ff\u0800\uffff\U00010000\U0010ffff"  # every sequence length, and its edges
BACKSLASH = encode_values([44])  # "\\": a counts string with a backslash in its JSON


def results() -> dict[str, bytes]:
    ok = {"size": [10, 10], "counts": encode_runs(RUNS)}
    r = [
        {"image_id": 1, "category_id": 1, "score": 0.9, "segmentation": ok, "bbox": [1, 1, 2, 2]},
        {"image_id": 1, "category_id": 2, "score": 0.5, "segmentation": {"size": [10, 10], "counts": encode_runs([50, 50])}},
        {"image_id": 2, "category_id": 1, "score": 0.25, "segmentation": {"size": [10, 10], "counts": BACKSLASH + "0"}},
    ]
    return {
        "seed-rle.json": json.dumps(r).encode(),
        "seed-bbox.json": json.dumps([{"image_id": 1, "category_id": 1, "score": 1, "bbox": [0, 0.5, 3, 4e0]}]).encode(),
        "seed-escapes.json": b'[{"image_id": 3, "category_id": 1, "score": -0, "segmentation": {"counts": "\\\\\\/1", "size": [2, 3]}, "x": {"y": [null, true]}}]',
        # raw UTF-8 (json.dumps(..., ensure_ascii=False)): 2-, 3- and 4-byte sequences
        "seed-utf8.json": json.dumps([dict(r[0], **{UTF8: UTF8})], ensure_ascii=False).encode(),
    }


def reference() -> dict[str, bytes]:
    gt = {
        "images": [{"id": 1, "height": 10, "width": 10, "file_name": "a.png"}, {"id": 2, "height": 20, "width": 30}],
        "categories": [{"id": 1, "name": "a"}, {"id": 2, "name": "b", "supercategory": "x"}],
        "annotations": [
            {"id": 1, "image_id": 1, "category_id": 1, "area": 16.0, "bbox": [1, 1, 4, 4], "iscrowd": 0, "segmentation": [[1, 1, 5, 1, 5, 5, 1, 5]]},
            {"id": 2, "image_id": 2, "category_id": 2, "area": 30.5, "iscrowd": 0, "segmentation": [[0, 0, 10, 0, 10, 10], [12.5, 3, 29, 3, 29, 19.75]]},
            {"id": 3, "image_id": 1, "category_id": 1, "area": 4, "iscrowd": 1, "segmentation": {"size": [10, 10], "counts": encode_runs(RUNS)}},
            {"id": 4, "image_id": 1, "category_id": 2, "area": 4, "iscrowd": True, "ignore": 0, "bbox": None, "segmentation": {"size": [10, 10], "counts": RUNS}},
        ],
    }
    raw = dict(gt, categories=[{"id": 1, "name": UTF8}, {"id": 2, "name": "b", UTF8: [UTF8]}])
    raw["images"] = [dict(gt["images"][0], file_name=f"{UTF8}.png"), gt["images"][1]]
    return {"seed-coco.json": json.dumps(gt).encode(), "seed-utf8.json": json.dumps(raw, ensure_ascii=False).encode()}


def strings() -> dict[str, bytes]:
    size = bytes([9, 9, 0, 0])  # Reader.size: 1 + 9 = 10 for height and width
    return {
        "seed-valid": size + "\n".join([encode_runs(RUNS), encode_runs([100]), encode_runs([0, 100]), BACKSLASH + "0"]).encode(),
        "seed-broken": size + b"\n".join([b"0Xo0", b"!!!not-rle", b"PPYo0a", b"", b"0oooooooo0"]),
    }


def polygons() -> dict[str, bytes]:
    def coords(values: list[float]) -> bytes:
        out = b""
        for v in values:  # Reader.number: a byte >= 200 and < 235, then the double itself
            out += bytes([200]) + struct.pack("<d", v)
        return out

    square = [1.0, 1.0, 5.0, 1.0, 5.0, 5.0, 1.0, 5.0]
    one = bytes([9, 9, 1, len(square)]) + coords(square) + bytes([1])
    two = bytes([19, 29, 2, 6]) + coords([0, 0, 10, 0, 10, 10]) + bytes([6]) + coords([12.5, 3, 29, 3, 29, 19.75]) + bytes([1])
    far = bytes([9, 9, 1, 6]) + coords([-1e6, 0, 1e6, 0, 0, 1e6]) + bytes([1])
    return {"seed-square": one, "seed-two-polygons": two, "seed-far": far, "seed-mixed": one + two + far}


def validation() -> dict[str, bytes]:
    """Files the validation's compiled pass accepts, against the images and categories of
    targets.validation_reader (images 1, 2, 3 of 10x10, 30x20, 1x65535; categories 1, 2)."""
    ok = {"size": [10, 10], "counts": encode_runs(RUNS)}
    anns = [
        {"id": 1, "image_id": 1, "category_id": 1, "area": 16.0, "bbox": [1, 1, 4, 4], "iscrowd": 0, "segmentation": [[1, 1, 5, 1, 5, 5, 1, 5]]},
        {"id": 2, "image_id": 2, "category_id": 2, "iscrowd": True, "segmentation": {"size": [20, 30], "counts": [0, 600]}, "x": [{"y": "\u00e9"}]},
        {"id": 3, "image_id": 1, "category_id": 1, "area": None, "segmentation": ok, "track_id": 4, "video_id": None},
    ]
    coco = {"images": [{"id": 1, "height": 10, "width": 10, "file_name": "a.png"}], "categories": [{"id": 1, "name": "a"}], "annotations": anns}
    ytvis = {
        "videos": [{"id": 2, "height": 20, "width": 30, "file_names": ["a.jpg", "b.jpg"]}],
        "categories": [{"id": 2, "name": "b"}],
        "annotations": [{"id": 7, "video_id": 2, "category_id": 2, "segmentations": [None, [[0, 0, 30, 0, 30, 20]]]}],
    }
    escaped = b'{"annotations": [{"id": 1, "image_id": 1, "category_id": 1, "segmentation": {"counts": "' + BACKSLASH.encode().replace(b"\\", b"\\\\") + b'0", "size": [10, 10]}}]}'
    # characters above U+FFFF as json.dumps writes them (pairs of surrogate escapes), and a lone half
    coco["categories"][0]["name"] = "a\U0001f600\U0010ffff"
    surrogates = json.dumps(coco).encode().replace(b"a.png", b"\\ud83d\\ude00\\udbff.png")
    return {
        "seed-coco.json": json.dumps(dict(coco, categories=[{"id": 1, "name": "a"}])).encode(),
        "seed-ytvis.json": json.dumps(ytvis).encode(),
        "seed-escapes.json": escaped,
        "seed-surrogates.json": surrogates,
        "seed-utf8.json": json.dumps(dict(coco, info={UTF8: UTF8}), ensure_ascii=False).encode(),
    }


def ytvis() -> dict[str, bytes]:
    """A real small YouTube-VIS file (the engine's fixture: polygons, RLE, frames without a
    mask), and a hand-made one with every form a frame's mask takes (polygons, compressed
    and uncompressed RLE, an escaped string, null, an empty list) on overlapping tracks, a
    crowd track and a video that gives only its file names."""
    fixture = (HERE.parents[0] / "fixtures" / "ytvis" / "case_0" / "gt.json").read_bytes()
    videos = [{"id": 7, "height": 20, "width": 30, "length": 3, "file_names": ["a", "b", "c"]}, {"id": 2, "height": 10, "width": 10, "file_names": ["d", "e"]}]
    anns = [
        {"id": 1, "video_id": 7, "category_id": 1, "iscrowd": 0, "segmentations": [[[1, 1, 9, 1, 9, 9]], None, {"size": [20, 30], "counts": encode_runs([25, 5, 570])}]},
        {"id": 2, "video_id": 7, "category_id": 2, "iscrowd": 0, "segmentations": [[[8, 8, 14, 8, 14, 14, 8, 14]], [], {"size": [20, 30], "counts": encode_runs([44, 556])}]},  # backslashes, escaped in the JSON
        {"id": 3, "video_id": 2, "category_id": 2, "iscrowd": 1, "segmentations": [{"size": [10, 10], "counts": [5, 90, 5]}, []]},
        {"id": 4, "video_id": 2, "category_id": 1, "segmentations": [{"size": [10, 10], "counts": [11, 2, 8, 2, 77]}, [[0, 0, 4, 0, 4, 4]]], "areas": [4, None]},
    ]
    made = json.dumps({"info": {}, "videos": videos, "annotations": anns, "categories": [{"id": 1, "name": "a"}, {"id": 2, "name": "b"}]}).encode()
    return {"seed-fixture.json": fixture, "seed-forms.json": made}


def scene() -> dict[str, bytes]:
    """Bytes that targets.scene_masks reads as masks on frames: overlapping boxes, an L
    touching a box at a corner, a box inside a hollow one without contact, runs."""

    def mask(frame: int, shape: int, r0: int, c0: int, dr: int, dc: int, cat: int) -> bytes:
        return bytes([frame, shape, r0, c0, dr - 1, dc - 1, cat])

    head = bytes([1, 19, 19, 9, 14])  # 2 frames: 20x20 and 10x15
    overlap = mask(0, 0, 2, 2, 5, 5, 1) + mask(0, 0, 4, 4, 5, 5, 2) + mask(0, 1, 9, 9, 4, 4, 1)
    corner = mask(0, 0, 13, 13, 2, 2, 3) + mask(0, 3, 15, 15, 1, 1, 1)  # meet only diagonally
    apart = mask(0, 3, 0, 18, 1, 1, 2)  # a pixel alone
    hollow = mask(1, 2, 0, 0, 9, 9, 1) + mask(1, 3, 4, 4, 1, 1, 2)  # a pixel inside, two away
    runs = bytes([1, 4, 0, 0, 0, 0, 2, 7, 3, 2])  # column 0, rows 7 to 9: on the hollow box's edge
    return {"seed-overlap": head + overlap, "seed-corners": head + overlap + corner, "seed-hollow": head + hollow + runs, "seed-all": head + overlap + corner + apart + hollow + runs}


def main() -> None:
    targets = (("results_reader", results()), ("reference_reader", reference()), ("rle_strings", strings()), ("rasterize", polygons()),
               ("validation_reader", validation()), ("ytvis_reader", ytvis()), ("scene_masks", scene()))
    for target, files in targets:
        d = HERE / "corpus" / target
        d.mkdir(parents=True, exist_ok=True)
        for name, data in files.items():
            (d / name).write_bytes(data)


if __name__ == "__main__":
    main()
