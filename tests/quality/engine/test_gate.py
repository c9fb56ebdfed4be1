"""The mask gate: every hostile mask and image size of the corpus is refused with a code and a
JSON path, the same word for word with the compiled kernels and on the Python path, by every
engine entry point that reads masks; and nothing unchecked reaches pycocotools or the kernels."""

from __future__ import annotations

import ast
import contextlib
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from quality.engine import gate, masks, native
from quality.engine.agreement import agreement_compare
from quality.engine.audit import audit_compare
from quality.engine.cache import ReferenceCache, build_reference_cache
from quality.engine.cocoeval import check_results, evaluate
from quality.engine.errors import EngineInputError
from quality.engine.gate import CheckedRLE
from quality.engine.intrinsic import intrinsic_checks
from quality.engine.iou import mask_iou_cells_cpu, mask_iou_pairs_torch
from quality.engine.plots import render_overlay
from quality.engine.ytvis import reference_tracks
from tests.hostile_masks import CASES, MASK_CASES, SIZE_CASES, coco_text, encode_runs, location, results_text
from tests.quality.engine.json_mutations import mutations

ROOT = Path(__file__).resolve().parents[3]
needs_kernels = pytest.mark.usefixtures("compiled_kernels")


def _outcome(fn):
    try:
        fn()
        return ("ok",)
    except EngineInputError as exc:
        return (exc.code, exc.location, exc.message)


def _both_paths(fn):
    """(compiled, Python) outcomes of ``fn``."""
    compiled = _outcome(fn)
    with native.disabled():
        python = _outcome(fn)
    return compiled, python


def _expect(outcome, case, where: str, file: Path):
    code = case.engine_code
    if code == "ok":
        assert outcome == ("ok",)
    elif code == "invalid_json":
        assert outcome[:2] == ("invalid_json", str(file))
    else:
        assert outcome[:2] == (code, location(case, where)), outcome


@needs_kernels
@pytest.mark.parametrize("name", sorted(CASES))
def test_reference_files_are_refused_alike_on_both_paths(tmp_path, name):
    case = CASES[name]
    gt = tmp_path / "gt.json"
    gt.write_text(coco_text(case), encoding="utf-8")
    compiled, python = _both_paths(lambda: build_reference_cache(str(gt)))
    assert compiled == python
    _expect(compiled, case, "annotations[1].segmentation", gt)
    # lazily (an evaluation's path): the same issue when the masks are first needed
    lazy, lazy_py = _both_paths(lambda: evaluate(str(gt), [{"image_id": 1, "category_id": 1, "score": 1.0, "segmentation": [[1, 1, 5, 1, 5, 5]]}]))
    assert lazy == lazy_py
    _expect(lazy, case, "annotations[1].segmentation", gt)


@needs_kernels
@pytest.mark.parametrize("name", sorted(MASK_CASES))
def test_results_are_refused_alike_on_both_paths(tmp_path, name):
    case = MASK_CASES[name]
    gt = tmp_path / "gt.json"
    gt.write_text(coco_text(CASES["polygon-outside-the-image"]), encoding="utf-8")
    dt = tmp_path / "dt.json"
    dt.write_text(results_text(case), encoding="utf-8")
    compiled, python = _both_paths(lambda: evaluate(str(gt), str(dt)))
    assert compiled == python
    assert _both_paths(lambda: check_results(str(gt), str(dt))) == (compiled, python)  # the check alone: the same
    if name == "segmentation-null":  # a result without a mask (COCO.loadRes's reading)
        assert compiled[:2] == ("missing_field", "results[1]")
        return
    _expect(compiled, case, "results[1].segmentation", dt)
    # results given as Python objects (a buyer's evaluation): the same
    import orjson

    try:
        parsed = orjson.loads(dt.read_bytes())
    except orjson.JSONDecodeError:
        return
    compiled, python = _both_paths(lambda: evaluate(str(gt), parsed))
    assert compiled == python
    _expect(compiled, case, "results[1].segmentation", dt)
    bbox, bbox_py = _both_paths(lambda: evaluate(str(gt), parsed, params=_bbox_params()))
    assert bbox == bbox_py == compiled  # box evaluations read the masks' areas: the same gate


def _bbox_params():
    from quality.engine.cocoeval import EvalParams

    return EvalParams(iou_type="bbox")


def test_the_issue_files_are_refused_by_the_engine_cli(tmp_path):
    files = {
        "runs-past-the-image": (CASES["rle-runs-past-the-image"], "rle_sum_mismatch", "annotations[1].segmentation.counts"),
        "not-rle": (CASES["rle-not-rle"], "rle_bad_character", "annotations[1].segmentation.counts"),
        "70000-square": (CASES["image-70000-square"], "image_too_large", "images[1].height"),
    }
    for name, (case, code, where) in files.items():
        gt = tmp_path / f"{name}.json"
        gt.write_text(coco_text(case))
        lines = set()
        for flag in ("1", "0"):
            out = subprocess.run(
                [sys.executable, "-m", "quality", "cache", "--gt", str(gt), "--out", str(tmp_path / "c.npz")],
                capture_output=True, text=True, timeout=120, cwd=ROOT, env={"QUALITY_NATIVE": flag, "PATH": "/usr/bin:/bin"},
            )
            assert out.returncode == 2 and "Traceback" not in out.stderr, out.stderr
            assert f"error: {code}: " in out.stderr and out.stderr.rstrip().endswith(f"at {where}"), out.stderr
            lines.add(out.stderr)
        assert len(lines) == 1  # the same line on both paths


def test_two_polygons_on_a_70000_square_image_are_refused_before_rasterizing():
    images = [{"id": 1, "height": 70000, "width": 70000}]
    anns = [{"id": 1, "image_id": 1, "category_id": 1, "area": 1.0, "segmentation": [[0, 0, 100, 0, 100, 100], [200, 200, 300, 200, 300, 300]]}]
    for off in (False, True):
        with native.disabled() if off else contextlib.nullcontext(), pytest.raises(EngineInputError) as exc:
            build_reference_cache(images=images, categories=[{"id": 1}], annotations=anns)
        assert (exc.value.code, exc.value.location) == ("image_too_large", "images[0].height")
    with pytest.raises(EngineInputError) as exc:  # the rasterizer itself never sees such a size
        masks.to_rles([anns[0]["segmentation"]], [70000], [70000])
    assert exc.value.code == "image_too_large"


# --------------------------------------------------------------------------------------
# the reports and their inputs


def _coco(case) -> dict:
    import orjson

    return orjson.loads(coco_text(case))


_JSON_MASK_CASES = sorted(n for n, c in MASK_CASES.items() if c.engine_code not in ("ok", "invalid_json"))


@pytest.mark.parametrize("name", _JSON_MASK_CASES)
def test_every_report_refuses_the_corpus(name):
    case = MASK_CASES[name]
    bad = _coco(case)
    good = _coco(CASES["polygon-outside-the-image"])
    where = location(case, "annotations[1].segmentation")
    runs = {
        "audit (reference)": lambda: audit_compare(bad, good, n_boot=2),
        "audit (seller)": lambda: audit_compare(good, bad, n_boot=2),
        "agreement": lambda: agreement_compare(good, bad, n_boot=2),
    }
    for what, run in runs.items():
        compiled, python = _both_paths(run)
        assert compiled == python, what
        assert compiled[:2] == (case.engine_code, where), (what, compiled)
    # intrinsic checks count a refused mask as a finding and never rasterize it
    report = intrinsic_checks(bad)
    assert 2 in report.finding("invalid_polygon").examples + report.finding("mask_outside_image").examples


@pytest.mark.parametrize("name", _JSON_MASK_CASES)
def test_video_tracks_refuse_the_corpus(name):
    import orjson

    case = MASK_CASES[name]
    seg = orjson.loads(case.segmentation)
    gt = {
        "videos": [{"id": 1, "height": 10, "width": 10, "length": 2, "file_names": ["a.png", "b.png"]}],
        "categories": [{"id": 1}],
        "annotations": [{"id": 1, "video_id": 1, "category_id": 1, "segmentations": [[[1, 1, 5, 1, 5, 5]], seg]}],
    }
    if not seg:  # an empty or null frame is a frame without a mask
        assert reference_tracks(gt)[0].masks[1] is None
        return
    compiled, python = _both_paths(lambda: reference_tracks(gt))
    assert compiled == python
    assert compiled[:2] == (case.engine_code, location(case, "annotations[0].segmentations[1]"))


@pytest.mark.parametrize("name", sorted(SIZE_CASES))
def test_image_and_video_sizes_are_bounded(name):
    case = SIZE_CASES[name]
    bad = _coco(case)
    good = _coco(CASES["polygon-outside-the-image"])
    for run in (lambda: audit_compare(bad, good, n_boot=2), lambda: intrinsic_checks(bad), lambda: build_reference_cache(bad)):
        assert _outcome(run)[:2] == (case.code, case.where)
    video = {"videos": [dict(bad["images"][1], id=7, file_names=["a.png"])], "categories": [], "annotations": []}
    assert _outcome(lambda: reference_tracks(video))[:2] == (case.code, case.where.replace("images[1]", "videos[0]"))


# --------------------------------------------------------------------------------------
# the compiled check and its numpy twin


def _random_strings(rng, n):
    out = []
    for i in range(n):
        h, w = int(rng.integers(1, 40)), int(rng.integers(1, 40))
        runs = []
        left = h * w
        while left > 0:
            r = int(rng.integers(0, min(left, 3 * h) + 1))
            runs.append(r)
            left -= r
        s = encode_runs(runs)
        if i % 3:  # break it: a byte replaced, dropped or added
            k = int(rng.integers(0, len(s) + 1))
            c = chr(int(rng.integers(32, 127)))
            s = [s[:k] + c + s[k + 1 :], s[:k] + s[k + 1 :], s[:k] + c + s[k:]][i % 3]
        out.append((s.encode(), h, w))
    return out


@needs_kernels
def test_the_kernel_and_the_numpy_twin_give_the_same_verdicts():
    rng = np.random.default_rng(3)
    items = _random_strings(rng, 3000)
    items += [(b"0oooooooo0", 10, 10), (b"", 10, 10), (b"P", 10, 10), (encode_runs([2**32 - 1, 1]).encode(), 65536, 65536)]
    blob = b"".join(s for s, _, _ in items)
    lens = np.array([len(s) for s, _, _ in items])
    stop = np.cumsum(lens)
    hs = np.array([h for _, h, _ in items])
    ws = np.array([w for _, _, w in items])
    compiled = gate.string_verdicts(blob, stop - lens, stop, hs, ws)
    with native.disabled():
        python = gate.string_verdicts(blob, stop - lens, stop, hs, ws)
    assert np.array_equal(compiled.status, python.status)
    assert np.array_equal(compiled.detail, python.detail)
    assert len(set(compiled.status.tolist())) >= 5  # the mutations reach most verdicts
    ok = compiled.status == gate.STRING_OK
    assert ok.sum() > 500
    # the same strings as a JSON file holds them (the compiled results reader leaves them
    # escaped): the same verdicts, positions counted with the escapes undone
    import json

    texts = [json.dumps(s.decode("latin-1"), ensure_ascii=False).encode("latin-1")[1:-1] for s, _, _ in items]
    assert any(b"\\" in t for t in texts)
    esc_lens = np.array([len(t) for t in texts])
    esc_stop = np.cumsum(esc_lens)
    escaped = gate.string_verdicts(b"".join(texts), esc_stop - esc_lens, esc_stop, hs, ws, escaped=True)
    assert np.array_equal(escaped.status, compiled.status) and np.array_equal(escaped.detail, compiled.detail)
    # past a megabyte the kernel splits the strings over threads: the same verdicts, boxes, areas
    reps = 1 + (3 << 20) // len(blob)
    big = gate.string_verdicts(blob * reps, np.concatenate([stop - lens + r * len(blob) for r in range(reps)]),
                               np.concatenate([stop + r * len(blob) for r in range(reps)]), np.tile(hs, reps), np.tile(ws, reps))
    assert np.array_equal(big.status, np.tile(compiled.status, reps)) and np.array_equal(big.detail, np.tile(compiled.detail, reps))
    assert np.array_equal(big.box, np.tile(compiled.box, (reps, 1))) and np.array_equal(big.area, np.tile(compiled.area, reps))


# --------------------------------------------------------------------------------------
# nothing unchecked gets in


def test_only_the_mask_module_imports_pycocotools():
    offenders = []
    for path in ROOT.rglob("*.py"):
        rel = path.relative_to(ROOT)
        if rel.parts[0] in (".venv", "tests", "bench", "load", "var") or rel.parts[0].startswith("."):
            continue
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else [node.module or ""] if isinstance(node, ast.ImportFrom) else []
            if any(n.split(".")[0] == "pycocotools" for n in names) and str(rel) != "quality/engine/masks.py":
                offenders.append(f"{rel}:{node.lineno}")
    assert offenders == []


def test_engine_entry_points_refuse_unchecked_masks():
    raw = {"size": [10, 10], "counts": b"0Xo0"}
    with pytest.raises(TypeError):
        mask_iou_cells_cpu([raw], [raw], np.zeros(1, bool), [(0, 1)], [(0, 1)], np.zeros(1, np.int64), np.zeros(1, np.int64), np.array([0, 1]))
    with pytest.raises(TypeError):
        render_overlay(10, 10, [raw], [])
    with pytest.raises(TypeError):
        mask_iou_pairs_torch((np.array([0, 100]), np.array([0, 2])), (np.array([0, 100]), np.array([0, 2])), np.zeros(1), np.zeros(1), np.zeros(1, bool), np.zeros(1, np.int64), np.zeros(1, np.int64))
    with pytest.raises(TypeError):
        gate.MaskStrings(b"0Xo0", np.array([0]), np.array([4]), False, np.array([10]), np.array([10]), np.zeros(1), np.zeros((1, 4)))
    with pytest.raises(TypeError):
        CheckedRLE(10, 10, b"0Xo0")
    with pytest.raises(AttributeError):
        masks.to_rles([[[1, 1, 5, 1, 5, 5]]], [10], [10])[0].counts = b"0Xo0"


def _cache_with_blob(blob: bytes) -> ReferenceCache:
    ref = build_reference_cache({"images": [{"id": 1, "height": 10, "width": 10}], "categories": [{"id": 1}],
                                 "annotations": [{"id": 1, "image_id": 1, "category_id": 1, "area": 16.0, "segmentation": [[1, 1, 5, 1, 5, 5, 1, 5]]}]})
    return ReferenceCache(**{**{k: getattr(ref, k) for k in ("img_ids", "img_heights", "img_widths", "cat_ids", "categories_json", "ann_ids",
                                                            "ann_image_ids", "ann_category_ids", "ann_area", "ann_iscrowd", "ann_ignore", "ann_bbox")},
                             "rle_blob": blob, "rle_offsets": np.array([0, len(blob)]), "rle_box": np.zeros((1, 4)), "rle_area": np.zeros(1, np.int64)})


def test_a_cache_made_or_read_from_outside_is_checked_before_use(tmp_path):
    for off in (False, True):
        with native.disabled() if off else contextlib.nullcontext():
            ref = _cache_with_blob(b"0Xo0")
            with pytest.raises(EngineInputError) as exc:
                ref.rles([0])
            assert (exc.value.code, exc.value.location) == ("rle_sum_mismatch", "annotations[0].segmentation.counts")
            good = _cache_with_blob(encode_runs([11, 2, 8, 2, 77]).encode())
            assert good.rles([0])[0].size == [10, 10] and good.rle_area.tolist() == [4]  # areas recomputed, not trusted
    # a tampered file: the blob, then the arrays
    ref = _cache_with_blob(b"0Xo0")
    path = tmp_path / "ref.npz"
    np.savez(path, **{"format": np.array(1), **{k: getattr(ref, k) for k in ("img_ids", "img_heights", "img_widths", "cat_ids", "ann_ids", "ann_image_ids",
                                                                            "ann_category_ids", "ann_area", "ann_iscrowd", "ann_ignore", "ann_bbox", "rle_offsets", "rle_box", "rle_area")},
                      "categories_json": np.frombuffer(ref.categories_json, np.uint8), "rle_blob": np.frombuffer(b"0Xo0", np.uint8)})
    with pytest.raises(EngineInputError) as exc:
        evaluate(str(path), [{"image_id": 1, "category_id": 1, "score": 1.0, "segmentation": [[1, 1, 5, 1, 5, 5]]}])
    assert exc.value.code == "rle_sum_mismatch"
    with np.load(path) as z:
        arrays = dict(z)
    arrays["rle_offsets"] = np.array([0.0, 4.0])
    np.savez(path, **arrays)
    with pytest.raises(EngineInputError) as exc:
        ReferenceCache.load(path)
    assert exc.value.code == "bad_cache"


@needs_kernels
def test_the_kernels_refuse_sizes_they_would_wrap():
    k = native.kernels()
    poly = [[[0.0, 0.0, 100.0, 0.0, 100.0, 100.0], [200.0, 200.0, 300.0, 200.0, 300.0, 300.0]]]
    assert k.rasterize(poly, np.array([70000]), np.array([70000])) == [None]
    assert k.rasterize(poly, np.array([10]), np.array([10])) != [None]
    out = [np.empty(1, np.int64), np.empty((1, 4)), np.empty(1, np.int64), np.empty(1, np.int64)]
    k.box_area(b"0", np.array([0]), np.array([1]), False, np.array([70000]), np.array([70000]), *out)
    assert out[2][0] == gate.STRING_BAD_SIZE
    offsets = np.empty(2, np.int64)
    args = (np.zeros(1, np.uint8), np.zeros(1, np.int64), np.ones(1, np.int64))
    with pytest.raises(ValueError):
        k.encode_masks(*args, np.array([70000]), np.array([70000]), np.array([6]), np.zeros(6), b"", np.zeros(0, np.uint32), offsets)
    with pytest.raises(ValueError):
        k.encode_masks(*args, np.array([10]), np.array([10]), np.array([6]), np.array([0, 0, 5, 0, np.nan, 5.0]), b"", np.zeros(0, np.uint32), offsets)


@needs_kernels
def test_mutated_reference_files_give_the_same_error_on_both_paths(tmp_path):
    """Seeded byte mutations of a small reference: whatever the compiled reader makes of them,
    the outcome equals the Python path's."""
    base = coco_text(CASES["polygon-outside-the-image"]).encode()
    gt = tmp_path / "gt.json"
    seen = set()
    for data in mutations(base, seed=5, count=400):
        gt.write_bytes(data)
        compiled, python = _both_paths(lambda: build_reference_cache(str(gt)))
        assert compiled == python, data
        seen.add(compiled[0])
    assert len(seen) >= 4


@pytest.mark.parametrize("compiled", [True, False], ids=["kernels", "numpy"])
def test_masks_checked_in_bulk_get_the_one_at_a_time_issues(compiled, request):
    """The bulk check (a buyer's results: the compressed strings in one kernel call) gives
    each segmentation of the whole hostile corpus, mixed with good and mutated masks, the
    issue the one-at-a-time check gives, at the same path."""
    import json

    if compiled:
        request.getfixturevalue("compiled_kernels")
    rng = np.random.default_rng(5)
    good = {"size": [10, 10], "counts": encode_runs([11, 2, 8, 2, 77])}
    items = []
    for name in sorted(MASK_CASES):
        items += [(json.loads(MASK_CASES[name].segmentation), 10, 10), (dict(good), 10, 10)]
    items += [({"size": [h, w], "counts": s.decode("latin-1")}, h, w) for s, h, w in _random_strings(rng, 400)]
    items += [({"size": [h, w], "counts": s}, h, w) for s, h, w in _random_strings(rng, 100)]  # counts as bytes
    items += [([[1, 1, 5, 1, 5, 5]], 10, 10), (None, 10, 10), ({"size": [10, 10], "counts": [50, 50]}, 10, 10)]
    with contextlib.nullcontext() if compiled else native.disabled():
        bulk = gate.segmentation_issues(items, lambda i: f"[{i}].segmentation")
        one = {i: issue for i, (segm, h, w) in enumerate(items) if (issue := gate.segmentation_issue(segm, h, w, f"[{i}].segmentation")) is not None}
    assert {i: issue.to_dict() for i, issue in bulk.items()} == {i: issue.to_dict() for i, issue in one.items()}
    assert list(bulk) == sorted(bulk)
    assert len(one) > len(MASK_CASES) and len(one) < len(items) - len(MASK_CASES)  # refused and accepted ones both
