"""The compiled RLE kernels (``quality/engine/_native/rle.c``) against pycocotools and orjson.

Each kernel is compared with the reference it ports on seeded random inputs, element for
element: rasterization with ``annToRLE``, boxes/areas with ``toBbox``/``area``, pair IoUs
with ``iou``, and the results reader with orjson (including the rule that it never accepts
a file orjson rejects). The end-to-end parity with COCOeval runs in test_cocoeval_parity.py
with the kernels on (the default) and in test_native_eval.py with them off.
"""

from __future__ import annotations

import contextlib
import json

import numpy as np
import orjson
import pytest
from pycocotools import mask as mask_utils

from quality.engine import gate, masks, native
from quality.engine.cocoeval import evaluate
from quality.engine.errors import EngineInputError
from tests.quality.engine.json_mutations import mutations

K = native.kernels()
pytestmark = pytest.mark.usefixtures("compiled_kernels")


def _ann_to_rle(segm, h, w):
    return mask_utils.merge(mask_utils.frPyObjects(segm, h, w))


def _random_polygons(rng, n):
    items = []
    for i in range(n):
        h, w = int(rng.integers(1, 120)), int(rng.integers(1, 120))
        polys = []
        for _ in range(int(rng.integers(1, 4))):
            k = int(rng.integers(3, 14))
            if i % 7 == 0:  # coordinates outside the image, negative ones included
                xy = rng.uniform(-30, max(w, h) + 30, 2 * k)
            elif i % 7 == 1:  # on the pixel grid, collinear runs
                xy = rng.integers(0, max(w, h), 2 * k).astype(float)
            else:
                cx, cy, r = rng.uniform(0, w), rng.uniform(0, h), rng.uniform(0.2, max(w, h) / 2)
                ang = np.sort(rng.uniform(0, 2 * np.pi, k))
                xy = np.stack([cx + r * np.cos(ang), cy + r * np.sin(ang)], 1).ravel()
            poly = [round(float(v), int(rng.integers(0, 4))) for v in xy]
            if i % 5 == 0:
                poly = [int(v) if float(v).is_integer() else v for v in poly]  # ints and floats mixed
            polys.append(poly)
        items.append((polys, h, w))
    return items


def test_rasterize_equals_ann_to_rle_on_random_polygons():
    rng = np.random.default_rng(7)
    items = _random_polygons(rng, 1500)
    got = K.rasterize([s for s, _, _ in items], np.array([h for _, h, _ in items]), np.array([w for _, _, w in items]))
    expected = [_ann_to_rle(s, h, w)["counts"] for s, h, w in items]
    assert got == expected


@pytest.mark.parametrize(
    "segm",
    [
        [[2, 3, 8, 9]],  # 4 numbers: fewer than 3 points
        [[1, 2, 3]],
        [[1, 2, 3, 4, 5, 6], [1, 2, 3, 4]],
        [[1, 2, 3e6, 4, 5, 6]],
        [[1, 2, "x", 4, 5, 6]],
        [[1, 2, float("nan"), 4, 5, 6]],
        [[1, 2, True, 4, 5, 6]],
        [],
        {"size": [10, 10], "counts": "PPYo0"},
        [(1, 2, 3, 4, 5, 6)],
    ],
)
def test_rasterize_declines_what_the_checked_path_must_see(segm):
    assert K.rasterize([segm], np.array([10]), np.array([10])) == [None]


@pytest.mark.parametrize(
    "segm",
    [
        [[1, 1, 5, 1, 5, 5, 1, 1]],  # the last point repeats the first: a zero-length closing edge
        [[1, 1, 1, 1, 5, 1, 5, 5]],  # two equal consecutive points
        [[0, 0, 0, 0, 0, 0]],  # one point three times
        [[3, 3, 3, 3, 8, 9, 8, 9, 2, 7]],
    ],
)
def test_zero_length_edges_rasterize_as_pycocotools(segm):
    # maskApi.c divides 0 by 0 there and casts the NaN to int (x86: INT_MIN); a fuzzing find
    got = K.rasterize([segm], np.array([10]), np.array([10]))[0]
    assert got == _ann_to_rle(segm, 10, 10)["counts"]


def test_to_rles_gives_the_same_strings_with_and_without_the_kernels():
    rng = np.random.default_rng(8)
    items = _random_polygons(rng, 300)
    segs = [s for s, _, _ in items]
    hs, ws = [h for _, h, _ in items], [w for _, _, w in items]
    fast = masks.to_rles(segs, hs, ws)
    with native.disabled():
        slow = masks.to_rles(segs, hs, ws)
    assert [r["counts"] for r in fast] == [r["counts"] for r in slow]


def _random_masks(rng, n):
    rles = []
    for i in range(n):
        h, w = int(rng.integers(1, 50)), int(rng.integers(1, 50))
        kind = i % 5
        if kind == 0:
            m = (rng.random((h, w)) < rng.random()).astype(np.uint8)
        elif kind == 1:
            m = np.zeros((h, w), np.uint8)
            y0, x0 = int(rng.integers(0, h)), int(rng.integers(0, w))
            m[y0 : y0 + int(rng.integers(0, h + 1)), x0 : x0 + int(rng.integers(0, w + 1))] = 1
        elif kind == 2:
            m = np.full((h, w), i % 2, np.uint8)  # empty and full
        elif kind == 3:
            m = np.zeros((h, w), np.uint8)
            m.flat[rng.integers(0, h * w, 3)] = 1
        else:  # runs that cross columns: a band in column-major order
            flat = np.zeros(h * w, np.uint8)
            a = int(rng.integers(0, h * w))
            flat[a : a + int(rng.integers(1, 3 * h))] = 1
            m = flat.reshape(w, h).T
        rles.append(mask_utils.encode(np.asfortranarray(m)))
    return rles


def _json_content_bounds(data: bytes, n: int) -> tuple[np.ndarray, np.ndarray]:
    """Start/stop of the first n JSON strings' content in data (for the escaped form)."""
    starts, stops, p = [], [], 0
    for _ in range(n):
        q = data.index(b'"', p) + 1
        e = q
        while data[e : e + 1] != b'"':
            e += 2 if data[e : e + 1] == b"\\" else 1
        starts.append(q)
        stops.append(e)
        p = e + 1
    return np.array(starts), np.array(stops)


def test_boxes_areas_and_pair_ious_equal_pycocotools():
    rng = np.random.default_rng(9)
    rles = _random_masks(rng, 2500)
    blob = b"".join(r["counts"] for r in rles)
    off = np.r_[0, np.cumsum([len(r["counts"]) for r in rles])]
    hs = np.array([r["size"][0] for r in rles])
    ws = np.array([r["size"][1] for r in rles])
    got = gate.check_strings(blob, off[:-1], off[1:], hs, ws, str)
    areas = np.concatenate([mask_utils.area(rles[s : s + 255]) for s in range(0, len(rles), 255)])
    assert np.array_equal(got.box, mask_utils.toBbox(rles))
    assert np.array_equal(got.area, areas.astype(np.int64))
    # the same strings as they lie in a JSON file (backslashes escaped)
    data = json.dumps([r["counts"].decode() for r in rles]).encode()
    assert b"\\\\" in data
    st, sp = _json_content_bounds(data, len(rles))
    esc = gate.check_strings(data, st, sp, hs, ws, str, escaped=True)
    assert np.array_equal(esc.box, got.box) and np.array_equal(esc.area, got.area)
    # pairs of equal-size masks, crowd and not
    by_size: dict = {}
    for i, r in enumerate(rles):
        by_size.setdefault(tuple(r["size"]), []).append(i)
    pd, pg = [], []
    for group in by_size.values():
        for a in group[:8]:
            for b in group[:8]:
                pd.append(a)
                pg.append(b)
    pd, pg = np.array(pd), np.array(pg)
    crowd = (np.arange(len(rles)) % 3 == 0).astype(np.uint8)
    out = np.empty(len(pd))
    K.pair_ious(data, st, sp, True, blob, off[:-1], off[1:], False, pd, pg, got.area, got.area, crowd, out)
    expected = np.array([mask_utils.iou([rles[a]], [rles[b]], [int(crowd[b])])[0, 0] for a, b in zip(pd, pg)])
    assert np.array_equal(out, expected)


def test_malformed_strings_are_marked_not_read_past():
    blob = b"0" + b"Pa"  # 'a' - 48 = 49: continuation bit set at the very end
    v = gate.string_verdicts(blob, np.array([0, 1]), np.array([1, 3]), np.array([10, 10]), np.array([10, 10]))
    assert v.status.tolist() == [gate.STRING_SUM, gate.STRING_TRUNCATED]
    out = [np.empty(1, np.int64), np.empty((1, 4)), np.empty(1, np.int64), np.empty(1, np.int64)]
    with pytest.raises(ValueError):
        K.box_area(blob, np.array([0]), np.array([99]), False, np.array([1]), np.array([1]), *out)


# --------------------------------------------------------------------------------------
# results reader


def _results(rng, n, *, with_bbox=False):
    rles = _random_masks(rng, n)
    out = []
    for i, r in enumerate(rles):
        res = {"image_id": int(rng.integers(1, 50)), "category_id": int(rng.integers(1, 5)), "segmentation": {"size": r["size"], "counts": r["counts"].decode()}, "score": float(rng.random())}
        if i % 3 == 0:
            res["score"] = round(res["score"], 2)
        if i % 11 == 0:
            res["extra"] = {"note": "x\\ny", "list": [1, 2.5e-3, None, True, False], "u": "\\u00e9"}
        if with_bbox or i % 4 == 0:
            res["bbox"] = [float(v) for v in mask_utils.toBbox(r)]
        out.append(res)
    return out


def _parsed(r):
    n = r["n"]
    return {
        "image_id": np.frombuffer(r["image_id"], np.int64),
        "category_id": np.frombuffer(r["category_id"], np.int64),
        "score": np.frombuffer(r["score"], np.float64),
        "bbox": np.frombuffer(r["bbox"], np.float64).reshape(n, 4),
        "size": np.frombuffer(r["size"], np.int64).reshape(n, 2),
        "start": np.frombuffer(r["counts_start"], np.int64),
        "stop": np.frombuffer(r["counts_stop"], np.int64),
    }


@pytest.mark.parametrize("dumps", [orjson.dumps, lambda x: json.dumps(x, indent=1).encode()], ids=["orjson", "json-indented"])
def test_parse_results_equals_orjson(dumps):
    rng = np.random.default_rng(10)
    res = _results(rng, 400)
    data = dumps(res)
    r = K.parse_results(data)
    assert r is not None and r["n"] == len(res) and r["first_bbox"] == 1
    p = _parsed(r)
    ref = orjson.loads(data)
    assert p["image_id"].tolist() == [a["image_id"] for a in ref]
    assert p["category_id"].tolist() == [a["category_id"] for a in ref]
    assert p["score"].tolist() == [a["score"] for a in ref]
    assert p["size"].tolist() == [a["segmentation"]["size"] for a in ref]
    for i, a in enumerate(ref):
        raw = data[p["start"][i] : p["stop"][i]]
        assert orjson.loads(b'"' + raw + b'"') == a["segmentation"]["counts"]
        if "bbox" in a:
            assert p["bbox"][i].tolist() == a["bbox"]
        else:
            assert np.isnan(p["bbox"][i]).all()


@pytest.mark.parametrize(
    "text",
    [
        b'[{"image_id": 1, "category_id": 1, "score": 0.5, "segmentation": [[1, 2, 3, 4, 5, 6]]}]',  # polygon
        b'[{"image_id": 1, "category_id": 1, "score": 0.5, "segmentation": {"size": [2, 2], "counts": [0, 4]}}]',
        b'[{"image_id": 1.0, "category_id": 1, "score": 0.5, "bbox": [0, 0, 1, 1]}]',  # float id
        b'[{"image_id": 1, "image_id": 2, "category_id": 1, "score": 0.5, "bbox": [0, 0, 1, 1]}]',  # duplicate key
        b'[{"image_id": 1, "category_id": 1, "bbox": [0, 0, 1, 1]}]',  # no score
        b'[{"image_id": 1, "category_id": 1, "score": 1e999, "bbox": [0, 0, 1, 1]}]',
        b'[{"image_id": 1, "category_id": 1, "score": 0.5, "bbox": [0, 0, 1]}]',
        b'[{"image_id": 1, "category_id": 1, "score": 0.5, "bbox": [0, 0, 1, 1]},]',  # trailing comma
        b'[{"image_id": 01, "category_id": 1, "score": 0.5, "bbox": [0, 0, 1, 1]}]',
        b'[{"image_id": 1, "category_id": 1, "score": 0.5, "bbox": [0, 0, 1, 1]}] x',
        b'[{"image_id": 1, "category_id": 1, "score": NaN, "bbox": [0, 0, 1, 1]}]',
        b'[{"image_id": 1, "category_id": 1, "score": 0.5, "bbox": [0, 0, 1, 1], "n\xc3": 1}]',  # truncated UTF-8
        b'[{"image_id": 1, "category_id": 1, "score": 0.5, "bbox": [0, 0, 1, 1], "n": "\xed\xa0\x80"}]',  # a surrogate
        b'[{"image_id": 1, "category_id": 1, "score": 0.5, "bbox": [0, 0, 1, 1], "n": "\xc0\xaf"}]',  # overlong
        b'[{"image_id": 1, "category_id": 1, "score": 0.5, "segmentation": {"size": [2, 2], "counts": "a\\nb"}}]',
        b'{"annotations": []}',
        b"[]",
        b"",
    ],
)
def test_parse_results_declines_anything_unusual(text):
    assert K.parse_results(text) is None


def test_parse_results_reads_raw_utf8_keys_and_values():
    """Extra keys and values in raw UTF-8 (json.dumps(..., ensure_ascii=False)): taken, the
    same arrays as the file without them."""
    res = _results(np.random.default_rng(12), 20)
    plain = _parsed(K.parse_results(orjson.dumps(res)))
    for k, a in enumerate(res):
        a[["caf\u00e9", "\u628a\u624b", "\U0001f600"][k % 3]] = ["\u0080\u07ff\u0800\uffff\U00010000\U0010ffff", k]
    r = K.parse_results(json.dumps(res, ensure_ascii=False).encode())
    assert r is not None and r["n"] == len(res)
    p = _parsed(r)
    for key in ("image_id", "category_id", "score", "bbox", "size"):
        assert p[key].tobytes() == plain[key].tobytes(), key


def test_parse_results_never_accepts_what_orjson_rejects():
    base = orjson.dumps(_results(np.random.default_rng(11), 3))
    accepted = 0
    for data in mutations(base, seed=11, count=4000):
        r = K.parse_results(data)
        if r is None:
            continue
        accepted += 1
        ref = orjson.loads(data)  # raises if the reader accepted invalid JSON
        p = _parsed(r)
        assert p["image_id"].tolist() == [a["image_id"] for a in ref]
        assert p["score"].tolist() == [float(a["score"]) for a in ref]
    assert accepted > 50  # the mutations do leave many files valid


def _write(tmp_path, gt, dt):
    g, d = tmp_path / "gt.json", tmp_path / "dt.json"
    g.write_bytes(orjson.dumps(gt))
    d.write_bytes(orjson.dumps(dt))
    return g, d


@pytest.mark.parametrize("fast", [True, False], ids=["kernels", "python"])
@pytest.mark.parametrize(
    "counts,code",
    [("PPYo0a", "rle_truncated"), ("0j1", "rle_sum_mismatch"), ("0Xo0", "rle_sum_mismatch"), ("!!!not-rle", "rle_bad_character")],
    ids=["ends-inside-a-value", "covers-too-few-pixels", "covers-too-many-pixels", "bad-characters"],
)
def test_results_whose_runs_do_not_cover_the_image_are_rejected_with_where(tmp_path, fast, counts, code):
    gt = {
        "images": [{"id": 1, "height": 10, "width": 10}],
        "categories": [{"id": 1, "name": "a"}],
        "annotations": [{"id": 1, "image_id": 1, "category_id": 1, "area": 16.0, "bbox": [1, 1, 4, 4], "iscrowd": 0, "segmentation": [[1, 1, 5, 1, 5, 5, 1, 5]]}],
    }
    ok = mask_utils.encode(np.asfortranarray(np.pad(np.ones((4, 4), np.uint8), ((1, 5), (1, 5)))))["counts"].decode()
    dt = [
        {"image_id": 1, "category_id": 1, "score": 0.9, "segmentation": {"size": [10, 10], "counts": ok}},
        {"image_id": 1, "category_id": 1, "score": 0.8, "segmentation": {"size": [10, 10], "counts": counts}},
    ]
    g, d = _write(tmp_path, gt, dt)
    ctx = native.disabled() if not fast else contextlib.nullcontext()
    with ctx, pytest.raises(EngineInputError) as exc:
        evaluate(str(g), str(d))
    assert exc.value.code == code
    assert exc.value.location == "results[1].segmentation.counts"


def test_integer_minus_zero_reads_as_orjson_does():
    r = K.parse_results(b'[{"image_id": 1, "category_id": 1, "score": -0, "bbox": [0, 0, 1, 1]}]')
    score = np.frombuffer(r["score"], np.float64)[0]
    assert score == 0.0 and not np.signbit(score) and not np.signbit(float(orjson.loads(b"-0")))


@pytest.mark.parametrize("fast", [True, False], ids=["kernels", "python"])
def test_coordinates_beyond_a_million_pixels_are_bad_input(fast):
    segs = [[[0, 0, 10, 0, 3e21, 10]], [[0, 0, 10, 0, 10, 10]]]
    ctx = native.disabled() if not fast else contextlib.nullcontext()
    with ctx, pytest.raises(EngineInputError) as exc:
        masks.to_rles(segs, [20, 20], [20, 20], locations=["annotations[0].segmentation", "annotations[1].segmentation"])
    assert exc.value.code == "coordinate_out_of_range"
    assert exc.value.location.startswith("annotations[0].segmentation")


def _assert_parsed_is_orjsons(data: bytes) -> None:
    r = K.parse_results(data)
    assert r is not None
    ref = orjson.loads(data)
    p = _parsed(r)
    assert r["n"] == len(ref) and r["n_seg"] == len(ref)
    assert p["image_id"].tolist() == [a["image_id"] for a in ref]
    assert p["category_id"].tolist() == [a["category_id"] for a in ref]
    assert p["score"].tolist() == [a["score"] for a in ref]
    assert p["size"].tolist() == [a["segmentation"]["size"] for a in ref]
    assert [orjson.loads(b'"' + data[a:b] + b'"') for a, b in zip(p["start"].tolist(), p["stop"].tolist())] == [a["segmentation"]["counts"] for a in ref]


def test_parse_results_on_two_cores_is_the_one_thread_read():
    """Past a few MB the reader splits the file at a guessed element start near the middle;
    a guess inside a value (objects inside a list member) is found out and read through."""
    rng = np.random.default_rng(12)
    res = _results(rng, 400) * 130  # about 8 MB
    data = orjson.dumps(res)
    assert len(data) > 5 << 20
    _assert_parsed_is_orjsons(data)
    # the middle of the file inside one result's list of objects: "},{" that is no element start
    middle = dict(res[0], objects=[{"k": i} for i in range(200_000)])
    half = len(res) // 2
    tricky = orjson.dumps(res[:half] + [middle] + res[half:])
    mid = len(tricky) // 2
    start = tricky.index(b'"objects"')
    assert start < mid < start + len(orjson.dumps(middle["objects"]))
    _assert_parsed_is_orjsons(tricky)
    # what the reader declines, before or after the middle, is declined as a whole
    polygon = dict(res[0], segmentation=[[1, 2, 3, 4, 5, 6]])
    for at in (10, len(res) - 10):
        assert K.parse_results(orjson.dumps(res[:at] + [polygon] + res[at:])) is None
    assert K.parse_results(data[:-1] + b",]") is None  # a trailing comma at the very end
    assert K.parse_results(data + b" x") is None


def _runs_with_empty_runs(rng, count: int) -> list[tuple[int, int, list[int]]]:
    """Small masks whose runs include zero-length ones (leading, inside, trailing), as a
    seller's counts list or string may hold them."""
    out = []
    for _ in range(count):
        h, w = int(rng.integers(1, 7)), int(rng.integers(1, 7))
        runs, left = [], h * w
        for _ in range(int(rng.integers(0, 9))):
            r = int(min(left, rng.integers(0, 5)))
            runs.append(r)
            left -= r
        runs.append(left)
        if rng.random() < 0.3:
            runs += [0] * int(rng.integers(1, 3))
        out.append((h, w, runs))
    return out


def test_boxes_of_runs_with_empty_runs_equal_pycocotools():
    """A zero-length run moves no side of pycocotools' box (rleToBbox since 2.0.8): the
    gate's compiled check and the encoder's box of a counts list agree with toBbox (the
    scene's occlusion test compares only masks whose boxes meet)."""
    rng = np.random.default_rng(31)
    cases = _runs_with_empty_runs(rng, 3000)
    rles = [mask_utils.frPyObjects({"size": [h, w], "counts": runs}, h, w) for h, w, runs in cases]
    expected = mask_utils.toBbox(rles)
    assert any(runs[0] == 0 and len(runs) > 2 and runs[1] == 0 for _h, _w, runs in cases)  # the case that differed
    blob = b"".join(r["counts"] for r in rles)
    off = np.r_[0, np.cumsum([len(r["counts"]) for r in rles])]
    hs = np.array([h for h, _w, _r in cases])
    ws = np.array([w for _h, w, _r in cases])
    got = gate.check_strings(blob, off[:-1], off[1:], hs, ws, str)
    assert np.array_equal(got.box, expected)
    # the encoder's box of uncompressed counts (kind 2), from the runs it writes
    n = len(cases)
    ucounts = np.array([v for _h, _w, runs in cases for v in runs], np.uint32)
    ends = np.cumsum([len(runs) for _h, _w, runs in cases])
    offsets, area, box = np.empty(n + 1, np.int64), np.empty(n, np.int64), np.empty((n, 4))
    K.encode_masks(np.full(n, 2, np.uint8), ends - [len(r) for _h, _w, r in cases], ends, hs, ws, np.zeros(0, np.int64), np.zeros(0),
                   b"", ucounts, offsets, area, box)
    assert np.array_equal(box, expected)
    assert np.array_equal(area, np.concatenate([mask_utils.area(rles[s : s + 255]) for s in range(0, n, 255)]).astype(np.int64))
