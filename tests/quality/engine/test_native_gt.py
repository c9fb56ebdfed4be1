"""The compiled reference reader (coco_gt.c): same cache as the Python path, array for array;
declines what it does not take, and then the Python path raises its precise error."""

from __future__ import annotations

import copy

import numpy as np
import orjson
import pytest
from pycocotools import mask as mask_utils

from quality.engine import native
from quality.engine.cache import _load_reference_native, build_reference_cache, load_reference
from quality.engine.cocoeval import EvalParams, evaluate
from quality.engine.errors import EngineInputError
from tests.quality.engine.coco_parity_helpers import assert_same_arrays, pycoco_eval, random_case, run_lengths
from tests.quality.engine.json_mutations import mutations

K = native.kernels()
pytestmark = pytest.mark.usefixtures("compiled_kernels")

FIELDS = ["img_ids", "img_heights", "img_widths", "cat_ids", "ann_ids", "ann_image_ids", "ann_category_ids", "ann_area", "ann_iscrowd", "ann_ignore", "ann_bbox", "rle_offsets", "rle_box", "rle_area"]


def assert_same_cache(a, b) -> None:
    for k in FIELDS:
        x, y = getattr(a, k), getattr(b, k)
        assert x.dtype == y.dtype and x.shape == y.shape, k
        assert x.tobytes() == y.tobytes(), k  # bytes: NaN boxes and -0.0 included
    assert a.rle_blob == b.rle_blob
    assert a.categories_json == b.categories_json


def _mask(rng, h, w):
    m = np.zeros((h, w), dtype=np.uint8, order="F")
    for _ in range(int(rng.integers(1, 4))):
        y0, x0 = int(rng.integers(0, h)), int(rng.integers(0, w))
        m[y0 : y0 + int(rng.integers(1, h)), x0 : x0 + int(rng.integers(1, w))] = 1
    m[rng.random((h, w)) < 0.05] ^= 1
    return m


def _pick(rng, seq):
    return seq[int(rng.integers(len(seq)))]


def synthetic_reference(seed: int, *, anns_first: bool = False) -> dict:
    """Polygons (several per annotation, ints and floats, some outside the image), compressed
    and uncompressed RLE crowds, boxes missing or null, flags as ints or bools, extra keys."""
    rng = np.random.default_rng(seed)
    images, anns = [], []
    for i in range(8):
        images.append({"id": 3 * i + int(rng.integers(1, 3)), "file_name": f"{i:06d}.jpg", "height": int(rng.integers(8, 60)), "width": int(rng.integers(8, 60)), "meta": {"k": [1, 2.5, None, True]}})
    cats = [{"supercategory": "s", "id": k, "name": f"c{k}", "keypoints": []} for k in (1, 2, 5)]
    aid = 100
    for img in images:
        h, w = img["height"], img["width"]
        for _ in range(int(rng.integers(0, 8))):
            kind = _pick(rng, ["poly", "poly", "poly", "string", "counts"])
            a: dict = {"id": aid, "image_id": img["id"], "category_id": _pick(rng, [1, 2, 5])}
            aid += int(rng.integers(1, 4))
            if kind == "poly":
                segm = []
                for _ in range(int(rng.integers(1, 4))):
                    k = int(rng.integers(3, 9))
                    xy = rng.uniform(-3, max(h, w) + 3, 2 * k)
                    segm.append([int(v) if rng.random() < 0.3 else float(round(v, int(rng.integers(0, 6)))) for v in xy])
                a["segmentation"] = segm
                a["iscrowd"] = _pick(rng, [0, False, None])
            else:
                rle = mask_utils.encode(_mask(rng, h, w))
                if kind == "string":
                    a["segmentation"] = {"size": [h, w], "counts": rle["counts"].decode()}
                else:
                    a["segmentation"] = {"counts": run_lengths(rle), "size": [h, w]}
                a["iscrowd"] = _pick(rng, [1, True, 7])
            if a["iscrowd"] is None:
                del a["iscrowd"]
            a["area"] = float(rng.uniform(0, h * w)) if rng.random() < 0.7 else int(rng.integers(0, h * w))
            r = rng.random()
            if r < 0.6:
                a["bbox"] = [float(round(v, 2)) for v in rng.uniform(0, 20, 4)]
            elif r < 0.75:
                a["bbox"] = [int(v) for v in rng.integers(0, 20, 4)]
            elif r < 0.85:
                a["bbox"] = None
            if rng.random() < 0.3:
                a["ignore"] = _pick(rng, [0, 1, True, False])
            if rng.random() < 0.3:
                a["attributes"] = {"occluded": False, "notes": "a \"quoted\" \\ \u0007 \t text", "list": [[], {}, -0.0, 1e-7]}
            keys = list(a)
            rng.shuffle(keys)
            anns.append({k: a[k] for k in keys})
    gt = {"info": {"year": 2024, "v": [1, {"a": None}]}, "licenses": []}
    if anns_first:
        gt["annotations"] = anns
        gt["images"] = images
    else:
        gt["images"] = images
        gt["annotations"] = anns
    gt["categories"] = cats
    return gt


def _write(tmp_path, gt, name="gt.json") -> str:
    p = tmp_path / name
    p.write_bytes(gt if isinstance(gt, bytes) else orjson.dumps(gt))
    return str(p)


def _python(path, with_masks=True):
    with native.disabled():
        ref = load_reference(path, with_masks=with_masks)
        ref.ensure_masks()
    return ref


@pytest.mark.parametrize("anns_first", [False, True], ids=["images-first", "annotations-first"])
@pytest.mark.parametrize("seed", range(6))
def test_native_cache_equals_the_python_one(tmp_path, seed, anns_first):
    gt = synthetic_reference(seed, anns_first=anns_first)
    path = _write(tmp_path, gt)
    assert _load_reference_native(path, True) is not None  # the compiled reader took it
    expected = _python(path)
    assert_same_cache(build_reference_cache(path), expected)
    lazy = load_reference(path, with_masks=False)
    assert lazy._geometry is not None and lazy.rle_blob is None  # bbox evaluations never rasterize
    lazy.ensure_masks()
    assert_same_cache(lazy, expected)
    # switched off between reading and rasterizing: the Python path on the same segmentations
    lazy = load_reference(path, with_masks=False)
    with native.disabled():
        lazy.ensure_masks()
    assert_same_cache(lazy, expected)


def test_backslashes_in_compressed_counts_are_unescaped(tmp_path):
    rng = np.random.default_rng(3)
    for _ in range(200):
        rle = mask_utils.encode(_mask(rng, 40, 50))
        if b"\\" in rle["counts"]:
            break
    else:
        pytest.fail("the seeded masks have no counts string with a backslash: change the seed")
    gt = {"images": [{"id": 1, "height": 40, "width": 50}], "categories": [{"id": 1}], "annotations": [{"id": 1, "image_id": 1, "category_id": 1, "area": 3, "iscrowd": 1, "segmentation": {"size": [40, 50], "counts": rle["counts"].decode()}}]}
    text = orjson.dumps(gt)
    assert b"\\\\" in text
    path = _write(tmp_path, text)
    ref = build_reference_cache(path)
    assert ref.rle_blob == rle["counts"]
    # an escaped slash where a plain one would do: the same string
    if b"/" in rle["counts"]:
        path = _write(tmp_path, text.replace(b"/", b"\\/"), "escaped.json")
        assert build_reference_cache(path).rle_blob == rle["counts"]


@pytest.mark.parametrize("seed", range(4))
@pytest.mark.parametrize("iou_type", ["segm", "bbox"])
def test_evaluate_from_the_native_reader_matches_pycocotools(tmp_path, seed, iou_type):
    gt, dt = random_case(900 + seed, n_images=12)
    path = _write(tmp_path, gt)
    assert _load_reference_native(path, False) is not None
    ev = pycoco_eval(gt, dt, iou_type)
    assert_same_arrays(ev, evaluate(path, dt, params=EvalParams(iou_type=iou_type)))


@pytest.mark.parametrize("seed", range(3))
def test_evaluate_synthetic_reference_matches_pycocotools(tmp_path, seed):
    gt = synthetic_reference(50 + seed)
    for a in gt["annotations"]:
        a.setdefault("iscrowd", 0)  # pycocotools needs it
    rng = np.random.default_rng(seed)
    dt = []
    hw = {i["id"]: (i["height"], i["width"]) for i in gt["images"]}
    for a in gt["annotations"]:
        if isinstance(a["segmentation"], list) and rng.random() < 0.8:
            h, w = hw[a["image_id"]]
            polys = [[float(v) + float(rng.uniform(-2, 2)) for v in p] for p in a["segmentation"]]
            rle = mask_utils.merge(mask_utils.frPyObjects(polys, h, w))
            segm = {"size": [h, w], "counts": rle["counts"].decode()}
            dt.append({"image_id": a["image_id"], "category_id": a["category_id"], "score": float(rng.integers(1, 5)) / 4, "segmentation": segm})
    path = _write(tmp_path, gt)
    ev = pycoco_eval(gt, dt, "segm")
    assert_same_arrays(ev, evaluate(path, dt))


def _base() -> dict:
    return {
        "images": [{"id": 1, "height": 20, "width": 30}, {"id": 2, "height": 10, "width": 10}],
        "categories": [{"id": 1, "name": "a"}, {"id": 2, "name": "b"}],
        "annotations": [
            {"id": 1, "image_id": 1, "category_id": 1, "area": 4.0, "bbox": [1, 1, 2, 2], "segmentation": [[1, 1, 3, 1, 3, 3, 1, 3]]},
            {"id": 2, "image_id": 2, "category_id": 2, "area": 4.0, "iscrowd": 1, "segmentation": {"size": [10, 10], "counts": [11, 2, 8, 2, 77]}},
        ],
    }


def _edit(fn):
    gt = _base()
    fn(gt)
    return orjson.dumps(gt)


def _raw(old: bytes, new: bytes) -> bytes:
    text = orjson.dumps(_base())
    assert old in text
    return text.replace(old, new, 1)


A = "annotations"
_COUNTS = mask_utils.frPyObjects({"size": [10, 10], "counts": [11, 2, 8, 2, 77]}, 10, 10)["counts"]
DECLINED = {
    # errors: the Python path raises them, the same with the kernels on
    "missing-id": (_edit(lambda g: g[A][1].pop("id")), "missing_field", "annotations[1]"),
    "float-id": (_raw(b'"id":2,"image_id"', b'"id":2.0,"image_id"'), "bad_id", "annotations[1]"),
    "string-id": (_edit(lambda g: g[A][0].update(id="x")), "bad_id", "annotations[0]"),
    "huge-id": (_raw(b'"id":2,"image_id"', b'"id":123456789012345678901234,"image_id"'), "bad_id", "annotations[1]"),
    "duplicate-annotation-id": (_edit(lambda g: g[A][1].update(id=1)), "duplicate_id", "annotations[1]"),
    "duplicate-image-id": (_edit(lambda g: g["images"][1].update(id=1)), "duplicate_id", "images[1]"),
    "duplicate-category-id": (_edit(lambda g: g["categories"][1].update(id=1)), "duplicate_id", "categories[1]"),
    "negative-size": (_edit(lambda g: g["images"][1].update(height=-1)), "wrong_type", "images[1].height"),
    "huge-size": (_edit(lambda g: g["images"][1].update(height=70000, width=70000)), "image_too_large", "images[1].height"),
    "too-many-pixels": (_edit(lambda g: g["images"][1].update(height=20000, width=20000)), "image_too_large", "images[1]"),
    "unknown-image": (_edit(lambda g: g[A][1].update(image_id=9)), "unknown_image", "annotations[1]"),
    "unknown-category": (_edit(lambda g: g[A][1].update(category_id=9)), "unknown_category", "annotations[1]"),
    "missing-area": (_edit(lambda g: g[A][0].pop("area")), "missing_field", "annotations[0]"),
    "short-bbox": (_edit(lambda g: g[A][0].update(bbox=[1, 2, 3])), "bad_number", "annotations[0][0]"),
    "odd-polygon": (_edit(lambda g: g[A][0].update(segmentation=[[1, 1, 3, 1, 3, 3, 1, 3], [1, 2, 3]])), "polygon_odd_length", "annotations[0].segmentation[1]"),
    "short-polygon": (_edit(lambda g: g[A][0].update(segmentation=[[1, 1, 3, 1, 3, 3, 1, 3], [1, 2]])), "polygon_too_short", "annotations[0].segmentation[1]"),
    "bool-coordinate": (_edit(lambda g: g[A][0].update(segmentation=[[1, 1, 3, True, 3, 3, 1, 3]])), "wrong_type", "annotations[0].segmentation[0][3]"),
    "nan-coordinate": (_raw(b"[[1,1,3,1,3,3,1,3]]", b"[[1,1,3,1e400,3,3,1,3]]"), "invalid_json", None),
    "far-coordinate": (_edit(lambda g: g[A][0].update(segmentation=[[1, 1, 3, 2e6, 3, 3, 1, 3]])), "coordinate_out_of_range", "annotations[0].segmentation[0][3]"),
    "empty-polygon-list": (_edit(lambda g: g[A][0].update(segmentation=[])), "empty_segmentation", "annotations[0].segmentation"),
    "rle-size-mismatch": (_edit(lambda g: g[A][1]["segmentation"].update(size=[10, 11])), "rle_size_mismatch", "annotations[1].segmentation.size"),
    "counts-sum-mismatch": (_edit(lambda g: g[A][1]["segmentation"].update(counts=[11, 2, 8, 2, 70])), "rle_sum_mismatch", "annotations[1].segmentation.counts"),
    "negative-count": (_edit(lambda g: g[A][1]["segmentation"].update(counts=[11, 2, 8, -2, 81])), "rle_negative_run", "annotations[1].segmentation.counts[3]"),
    "string-too-short": (_edit(lambda g: g[A][1].update(segmentation={"size": [10, 10], "counts": "0j1"})), "rle_sum_mismatch", "annotations[1].segmentation.counts"),
    "string-ends-inside": (_edit(lambda g: g[A][1].update(segmentation={"size": [10, 10], "counts": "PPYo0a"})), "rle_truncated", "annotations[1].segmentation.counts"),
    "string-bad-characters": (_edit(lambda g: g[A][1].update(segmentation={"size": [10, 10], "counts": "!!!not-rle"})), "rle_bad_character", "annotations[1].segmentation.counts"),
    "string-runs-past-the-image": (_edit(lambda g: g[A][1].update(segmentation={"size": [10, 10], "counts": "0Xo0"})), "rle_sum_mismatch", "annotations[1].segmentation.counts"),
    "segmentation-missing": (_edit(lambda g: g[A][1].pop("segmentation")), "missing_field", "annotations[1]"),
    "segmentation-null": (_edit(lambda g: g[A][1].update(segmentation=None)), "wrong_type", "annotations[1].segmentation"),
    "infinite-area": (_raw(b'"area":4.0', b'"area":1e400'), "invalid_json", None),
    "trailing-comma": (_raw(b"77]}}]}", b"77]}},]}"), "invalid_json", None),
    "not-an-object": (b"[1, 2]", "malformed", None),
    "no-images": (_edit(lambda g: g.pop("images")), "malformed", None),
    "empty-file": (b"", "invalid_json", None),
    # not errors: the Python path builds the cache, the same
    "string-area": (_edit(lambda g: g[A][1].update(area="4")), None, None),  # numpy reads "4"
    "string-coordinate": (_edit(lambda g: g[A][0].update(segmentation=[[1, 1, 3, "1", 3, 3, 1, 3]])), "wrong_type", "annotations[0].segmentation[0][3]"),
    "box-mode": (_edit(lambda g: g[A][0].update(segmentation=[[1, 1, 5, 6]])), "polygon_too_short", "annotations[0].segmentation[0]"),
    "duplicate-key": (_raw(b'"area":4.0', b'"area":3.0,"area":4.0'), None, None),
    # malformed UTF-8 (RFC 3629): orjson refuses the file, the compiled reader declines it
    "overlong-utf8-in-name": (_raw(b'"name":"a"', b'"name":"a\xc0\xaf"'), "invalid_json", None),
    "overlong-3-byte-utf8-in-name": (_raw(b'"name":"a"', b'"name":"a\xe0\x9f\xbf"'), "invalid_json", None),
    "surrogate-utf8-in-name": (_raw(b'"name":"a"', b'"name":"a\xed\xa0\x80"'), "invalid_json", None),
    "above-10ffff-utf8-in-name": (_raw(b'"name":"a"', b'"name":"a\xf4\x90\x80\x80"'), "invalid_json", None),
    "truncated-utf8-in-name": (_raw(b'"name":"a"', b'"name":"a\xe4\xb8"'), "invalid_json", None),
    "continuation-byte-in-key": (_raw(b'"name":"a"', b'"name":"a","\x80":1'), "invalid_json", None),
    "truncated-utf8-at-end-of-file": (orjson.dumps(_base())[:-3] + b',"x":"\xf0\x9f\x98', "invalid_json", None),
    "lone-high-surrogate-in-name": (_raw(b'"name":"a"', b'"name":"a\\ud83d"'), "invalid_json", None),
    "lone-low-surrogate-in-name": (_raw(b'"name":"a"', b'"name":"\\ude00"'), "invalid_json", None),
    "reversed-surrogates-in-name": (_raw(b'"name":"a"', b'"name":"\\ude00\\ud83d"'), "invalid_json", None),
    "split-surrogates-in-name": (_raw(b'"name":"a"', b'"name":"\\ud83d \\ude00"'), "invalid_json", None),
    "unicode-escape-in-counts": (_raw(b'"counts":[11,2,8,2,77]', b'"counts":"\\u00' + _COUNTS[:1].hex().encode() + _COUNTS[1:] + b'"'), None, None),
    "null-iscrowd": (_edit(lambda g: g[A][1].update(iscrowd=None)), None, None),
    "float-iscrowd": (_edit(lambda g: g[A][1].update(iscrowd=1.0)), None, None),
    "float-size": (_raw(b'"height":20', b'"height":20.0'), "bad_id", "images[0]"),
    "big-int-area": (_raw(b'"area":4.0', b'"area":1234567890123456789'), None, None),
    "bool-bbox": (_edit(lambda g: g[A][0].update(bbox=[True, 1, 2, 2])), None, None),
    "deep-extra": (_raw(b'"area":4.0', b'"area":4.0,"extra":' + b"[" * 70 + b"]" * 70), None, None),
}


def _outcome(fn):
    try:
        return ("ok", fn())
    except EngineInputError as exc:
        return ("error", exc.code, exc.location)


@pytest.mark.parametrize("name", list(DECLINED))
def test_declined_files_take_the_python_path(tmp_path, name):
    data, code, location = DECLINED[name]
    path = _write(tmp_path, data)
    assert _load_reference_native(path, True) is None
    with native.disabled():
        eager_py = _outcome(lambda: build_reference_cache(path))
    eager = _outcome(lambda: build_reference_cache(path))
    if code is None:
        assert eager_py[0] == eager[0] == "ok", (eager_py, eager)
        assert_same_cache(eager[1], eager_py[1])
    else:
        assert eager_py == eager
        assert eager[:2] == ("error", code) and (location is None or eager[2] == location), eager


@pytest.mark.parametrize("name", list(DECLINED))
def test_lazy_loading_raises_where_the_python_path_does(tmp_path, name):
    """with_masks=False (evaluate's path): errors of the masks are raised at ensure_masks."""
    data, _, _ = DECLINED[name]
    path = _write(tmp_path, data)

    def run():
        ref = _outcome(lambda: load_reference(path, with_masks=False))
        if ref[0] != "ok":
            return ("load",) + ref[1:]
        r = _outcome(ref[1].ensure_masks)
        return ("masks",) + r[1:] if r[0] != "ok" else ("ok",)

    with native.disabled():
        expected = run()
    assert run() == expected


def test_missing_segmentations_are_fine_for_boxes(tmp_path):
    gt = _base()
    for a in gt[A]:
        del a["segmentation"]
    gt[A][0]["segmentation"] = []
    path = _write(tmp_path, gt)
    ref = load_reference(path, with_masks=False)
    assert ref._geometry is not None  # read by the compiled reader
    with native.disabled():
        py = load_reference(path, with_masks=False)
    for k in FIELDS[:11]:
        assert getattr(ref, k).tobytes() == getattr(py, k).tobytes()
    with pytest.raises(EngineInputError) as exc:
        ref.ensure_masks()
    assert (exc.value.code, exc.value.location) == ("empty_segmentation", "annotations[0].segmentation")


def test_parse_coco_never_accepts_what_orjson_rejects():
    gt = synthetic_reference(7)
    gt["images"] = gt["images"][:2]
    keep = {i["id"] for i in gt["images"]}
    gt[A] = [a for a in gt[A] if a["image_id"] in keep][:4]
    base = orjson.dumps(gt)
    accepted = 0
    for data in mutations(base, seed=12, count=3000):
        r = K.parse_coco(data)
        if r is None:
            continue
        accepted += 1
        ref = orjson.loads(data)  # raises if the reader accepted invalid JSON
        anns = ref[A]
        assert np.frombuffer(r["id"], np.int64).tolist() == [a["id"] for a in anns]
        area = np.asarray([a["area"] for a in anns], dtype=np.float64)
        assert np.frombuffer(r["area"], np.float64).tobytes() == area.tobytes()
        assert np.frombuffer(r["img_id"], np.int64).tolist() == [i["id"] for i in ref["images"]]
        a, b = r["categories"]
        assert (orjson.loads(data[a:b]) if a >= 0 else None) == ref.get("categories")
    assert accepted > 50


def test_parse_coco_values_are_orjsons():
    vals = ["0.1", "-0.0", "-0", "3", "1e5", "1E-3", "123456789012345.6", "9007199254740993.0", "0.30000000000000004", "5e-324", "1.7976931348623157e308", "0.000000000000000000001", "2.675", "-12.5e+2"]
    rng = np.random.default_rng(5)
    vals += [repr(float(v)) for v in rng.uniform(-1e4, 1e4, 2000)]
    vals += [f"{v:.{int(rng.integers(0, 12))}f}" for v in rng.uniform(-1e4, 1e4, 2000)]
    gt = copy.deepcopy(_base())
    text = orjson.dumps(gt).replace(b'"area":4.0,"bbox"', b'"area":AREA,"bbox"', 1)
    for v in vals:
        r = K.parse_coco(text.replace(b"AREA", v.encode()))
        assert r is not None, v
        got = np.frombuffer(r["area"], np.float64)[0]
        assert np.float64(orjson.loads(v)).tobytes() == got.tobytes(), v


@pytest.mark.parametrize("seed", range(4))
def test_rasterizer_boxes_and_areas_are_the_checks(tmp_path, seed):
    """The boxes and areas the rasterizer computes from the runs it wrote are those the gate's
    check computes from the strings (empty masks, polygons outside the image, one-pixel and
    full-image masks, uncompressed counts included)."""
    rng = np.random.default_rng(seed)
    images, anns = [], []
    for i in range(60):
        h, w = int(rng.integers(2, 90)), int(rng.integers(2, 90))
        images.append({"id": i + 1, "height": h, "width": w})
        for _ in range(int(rng.integers(0, 6))):
            r = rng.random()
            if r < 0.1:
                segm = [[-20.0, -20.0, -10.0, -20.0, -10.0, -10.0]]  # outside: an empty mask
            elif r < 0.2:
                segm = [[0.0, 0.0, float(w), 0.0, float(w), float(h), 0.0, float(h)]]
            elif r < 0.3:
                m = np.zeros((h, w), dtype=np.uint8, order="F")
                m[int(rng.integers(0, h)), int(rng.integers(0, w))] = 1
                segm = {"size": [h, w], "counts": run_lengths(mask_utils.encode(m))}
            elif r < 0.4:
                segm = {"size": [h, w], "counts": run_lengths(mask_utils.encode(_mask(rng, h, w)))}
            else:
                segm = [[float(round(v, 2)) for v in rng.uniform(-5, max(h, w) + 5, 2 * int(rng.integers(3, 12)))] for _ in range(int(rng.integers(1, 3)))]
            anns.append({"id": len(anns) + 1, "image_id": i + 1, "category_id": 1, "area": 1.0, "segmentation": segm})
    path = _write(tmp_path, {"images": images, "annotations": anns, "categories": [{"id": 1, "name": "c"}]})
    ref = _load_reference_native(path, True)
    assert ref is not None
    n = len(ref.ann_ids)
    pos = ref.image_index(ref.ann_image_ids)
    area, box = np.empty(n, np.int64), np.empty((n, 4))
    status, detail = np.empty(n, np.int64), np.empty(n, np.int64)
    o = ref.rle_offsets
    K.box_area(ref.rle_blob, o[:-1].copy(), o[1:].copy(), False, ref.img_heights[pos], ref.img_widths[pos], area, box, status, detail)
    assert (status == 0).all()
    assert ref.rle_area.tobytes() == area.tobytes()
    assert ref.rle_box.tobytes() == box.tobytes()
    assert (area == 0).any() and (area > 0).any()


def test_parse_coco_of_a_file_mapping_releases_its_pages_and_reads_the_same(tmp_path):
    """A read-only mapping past the release step (its pages dropped as the parser goes) gives
    the arrays of the same bytes in memory, and the mapping still reads the file after."""
    import mmap

    gt = synthetic_reference(3)
    anns = gt[A]
    # past 32 MB: whole runs of pages are released mid-parse, then the rest at the end
    gt[A] = [dict(a, id=k + 1) for k in range(160_000) for a in anns[k % len(anns) : k % len(anns) + 1]]
    data = orjson.dumps(gt)
    assert len(data) > 36 << 20
    path = tmp_path / "gt.json"
    path.write_bytes(data)
    in_memory = K.parse_coco(data)
    with open(path, "rb") as f, mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ) as mapped:
        from_file = K.parse_coco(mapped)
        assert mapped[:] == data  # pages read back from the file
    assert in_memory is not None and from_file.keys() == in_memory.keys()
    assert all(from_file[k] == in_memory[k] for k in in_memory)
    with open(path, "r+b") as f, mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_COPY) as private:
        private[0:1] = b" "  # a private copy's pages are never dropped: the change stays
        K.parse_coco(private)
        assert private[0:1] == b" "


def _ytvis_text() -> bytes:
    videos = [{"id": 7, "height": 20, "width": 30, "length": 3, "file_names": ["a", "b", "c"]}, {"id": 2, "height": 10, "width": 10, "file_names": ["d", "e"]}]
    anns = [
        {"id": 1, "video_id": 7, "category_id": 1, "iscrowd": 0, "segmentations": [[[1, 1, 9, 1, 9, 9]], None, {"size": [20, 30], "counts": "0\\\\5k1"}]},
        {"id": 2, "video_id": 2, "category_id": 2, "iscrowd": 1, "segmentations": [{"size": [10, 10], "counts": [5, 90, 5]}, []]},
    ]
    return orjson.dumps({"videos": videos, "annotations": anns, "categories": [{"id": 1}, {"id": 2}]})


def test_parse_ytvis_reads_videos_and_every_frame_mask():
    r = K.parse_ytvis(_ytvis_text())
    assert (r["n_videos"], r["n_annotations"], r["n_masks"]) == (2, 2, 3)
    assert np.frombuffer(r["video_frames"], np.int64).tolist() == [3, 2]  # length, else the file names
    assert np.frombuffer(r["mask_ann"], np.int64).tolist() == [0, 0, 1]
    assert np.frombuffer(r["mask_frame"], np.int64).tolist() == [0, 2, 0]
    assert np.frombuffer(r["kind"], np.uint8).tolist() == [0, 1, 2]
    assert np.frombuffer(r["ann_crowd"], np.uint8).tolist() == [0, 1]
    assert r["chars"] == b"0\\\\5k1"  # the string as JSON decodes it (unescaped)


def test_parse_ytvis_never_accepts_what_orjson_rejects():
    accepted = 0
    for data in mutations(_ytvis_text(), seed=21, count=3000):
        r = K.parse_ytvis(data)
        if r is None:
            continue
        accepted += 1
        ref = orjson.loads(data)  # raises if the reader accepted invalid JSON
        assert r["n_videos"] == len(ref["videos"]) and r["n_annotations"] == len(ref["annotations"])
        assert r["n_masks"] == sum(1 for a in ref["annotations"] for s in (a.get("segmentations") or []) if s)
    assert accepted > 50


def test_parse_ytvis_without_geometry_finds_the_same_frames():
    full, frames = K.parse_ytvis(_ytvis_text()), K.parse_ytvis(_ytvis_text(), False)
    for key in ("n_videos", "n_annotations", "n_masks", "video_frames", "mask_ann", "mask_frame", "ann_video", "ann_crowd"):
        assert frames[key] == full[key], key
    assert frames["coords"] == b"" and frames["chars"] == b"" and full["coords"] != b""
    for data in mutations(_ytvis_text(), seed=22, count=1500):
        r = K.parse_ytvis(data, False)
        if r is not None:
            ref = orjson.loads(data)  # raises if the reader accepted invalid JSON
            assert r["n_masks"] == sum(1 for a in ref["annotations"] for s in (a.get("segmentations") or []) if s)


def test_surrogate_pairs_are_read_by_the_compiled_readers(tmp_path):
    """json.dumps writes a character above U+FFFF as a pair of surrogate escapes: the compiled
    readers take such a file (a lone half is declined: DECLINED) and read what the Python
    path reads."""
    import json

    gt = synthetic_reference(2)
    gt["categories"][0]["name"] = "\U0001f600 bolt"
    gt["images"][0]["file_name"] = "\U0001f600/\U0010ffff.png"
    gt[A][0]["attributes"] = {"note\U0001f600": "\U0001f600"}
    text = json.dumps(gt)  # ensure_ascii
    assert "\\ud83d\\ude00" in text and "\\uDBFF".lower() in text.lower()
    path = _write(tmp_path, text.replace("\\ude00 bolt", "\\uDE00 bolt").encode())
    assert _load_reference_native(path, True) is not None
    cache = build_reference_cache(path)
    assert_same_cache(cache, _python(path))
    assert orjson.loads(cache.categories_json)[0]["name"] == "\U0001f600 bolt"
    y = orjson.loads(_ytvis_text())
    y["categories"] = [dict(c, name=f"{c.get('name', '')}\U0001f600") for c in y["categories"]]
    y["videos"][0]["file_names"] = [f"\U0001f600{k}.jpg" for k in range(len(y["videos"][0]["file_names"]))]
    data = json.dumps(y).encode()
    assert b"\\ud83d\\ude00" in data
    r, plain = K.parse_ytvis(data), K.parse_ytvis(_ytvis_text())
    assert r is not None and (r["n_videos"], r["n_annotations"], r["n_masks"]) == (plain["n_videos"], plain["n_annotations"], plain["n_masks"])


# raw UTF-8 as most tools write it (json.dumps(..., ensure_ascii=False), Go, JS): 2-, 3- and
# 4-byte sequences, the edges of each length included
RAW_UTF8 = ["caf\u00e9", "\u628a\u624b", "\U0001f600", "\u0080\u07ff\u0800\ud7ff\ue000\uffff\U00010000\U0010ffff"]


def test_raw_utf8_is_read_by_the_compiled_readers(tmp_path):
    """Names, keys and values in raw UTF-8: the compiled readers take the file (not declined)
    and read the same arrays as the Python path, and as from the same file written escaped."""
    import json

    gt = synthetic_reference(3)
    for k, text in enumerate(RAW_UTF8):
        gt["categories"][k % len(gt["categories"])]["name"] = text
        gt["images"][k]["file_name"] = f"{text}/{k}.png"
        gt[A][k][f"note {text}"] = {text: [text, k]}
    gt["info"] = {text: text for text in RAW_UTF8}
    raw = json.dumps(gt, ensure_ascii=False).encode()
    assert "\u628a\u624b".encode() in raw and "\U0010ffff".encode() in raw  # raw, not escaped
    path = _write(tmp_path, raw)
    assert _load_reference_native(path, True) is not None
    cache = build_reference_cache(path)
    assert_same_cache(cache, _python(path))
    assert [c["name"] for c in orjson.loads(cache.categories_json)] == [c["name"] for c in gt["categories"]]
    escaped = build_reference_cache(_write(tmp_path, json.dumps(gt).encode(), "escaped.json"))
    for k in FIELDS:
        assert getattr(cache, k).tobytes() == getattr(escaped, k).tobytes(), k
    assert orjson.loads(cache.categories_json) == orjson.loads(escaped.categories_json)

    y = orjson.loads(_ytvis_text())
    y["categories"] = [dict(c, name=RAW_UTF8[k]) for k, c in enumerate(y["categories"])]
    y["videos"][1]["file_names"] = [f"{t}.jpg" for t in RAW_UTF8[:2]]
    y["annotations"][0][RAW_UTF8[2]] = RAW_UTF8[3]
    r, plain = K.parse_ytvis(json.dumps(y, ensure_ascii=False).encode()), K.parse_ytvis(_ytvis_text())
    assert r is not None
    for key in ("n_videos", "n_annotations", "n_masks", "video_frames", "mask_ann", "mask_frame", "ann_video", "ann_crowd", "kind", "coords", "chars"):
        assert r[key] == plain[key], key


@pytest.mark.parametrize(
    "bad",
    [b"\xc0\xaf", b"\xc1\xbf", b"\xe0\x80\xaf", b"\xe0\x9f\xbf", b"\xf0\x80\x80\xaf", b"\xf0\x8f\xbf\xbf", b"\xed\xa0\x80", b"\xed\xbf\xbf",
     b"\xf4\x90\x80\x80", b"\xf5\x80\x80\x80", b"\xff", b"\x80", b"\xbf", b"\xc3", b"\xe4\xb8", b"\xf0\x9f\x98", b"\xc3A", b"\xe4\xb8A"],
    ids=lambda b: b.hex(),
)
@pytest.mark.parametrize("where", ["name", "key", "value", "end-of-file"])
def test_malformed_utf8_is_declined_and_refused(tmp_path, bad, where):
    """Malformed UTF-8 anywhere: parse_coco and parse_ytvis decline, orjson refuses."""
    text = orjson.dumps(_base())
    ytext = _ytvis_text()
    if where == "name":
        data, ydata = text.replace(b'"name":"a"', b'"name":"a' + bad + b'"'), ytext.replace(b'"a"', b'"' + bad + b'"', 1)
    elif where == "key":
        data, ydata = text.replace(b'"area":4.0', b'"k' + bad + b'":1,"area":4.0', 1), ytext.replace(b'"iscrowd"', b'"' + bad + b'":1,"iscrowd"', 1)
    elif where == "value":
        data, ydata = text.replace(b'"area":4.0', b'"k":"' + bad + b'","area":4.0', 1), ytext.replace(b'"iscrowd"', b'"k":["x' + bad + b'"],"iscrowd"', 1)
    else:
        data, ydata = text[:-1] + b',"x":"' + bad, ytext[:-1] + b',"x":"' + bad
    for d in (data, ydata):
        with pytest.raises(orjson.JSONDecodeError):
            orjson.loads(d)
    assert K.parse_coco(data) is None and K.parse_ytvis(ydata) is None and K.parse_ytvis(ydata, False) is None


@pytest.mark.parametrize("number", [b"1e400", b"-1E309", b"1" + b"0" * 400])
def test_the_compiled_readers_decline_a_skipped_number_orjson_refuses(number):
    """A number infinite as a double is refused by orjson even where the readers skip it
    (info, an unread key): each reader declines the file, so the generic path raises."""
    with pytest.raises(orjson.JSONDecodeError):
        orjson.loads(number)
    assert K.parse_coco(b'{"info": {"a": ' + number + b'}, "images": [], "annotations": [], "categories": []}') is None
    assert K.parse_ytvis(b'{"info": [' + number + b'], "videos": [], "annotations": []}') is None
    assert K.parse_ytvis(b'{"info": [' + number + b'], "videos": [], "annotations": []}', False) is None
    assert K.parse_results(b'[{"image_id": 1, "category_id": 1, "score": 1, "bbox": [1, 1, 1, 1], "x": ' + number + b"}]") is None
    finite = number.replace(b"400", b"300").replace(b"309", b"300")[:300]
    orjson.loads(finite)
    assert K.parse_coco(b'{"info": {"a": ' + finite + b'}, "images": [], "annotations": [], "categories": []}') is not None
