"""The compiled matching and accumulation kernels (``quality/engine/_native/evalcore.c``).

Whole arrays with the kernels equal whole arrays without them (``native.disabled()``), on
seeded random data built to hit every rule: crowds, ignored references, reference ids of 0,
tied scores and IoUs, area-range bounds, maxDets cut-offs, categories without references,
images without detections. With the kernels on, pycocotools' COCOeval still agrees.
"""

from __future__ import annotations

import os
import shutil

import numpy as np
import pytest

from quality.engine import native
from quality.engine.cocoeval import Cell, EvalParams, evaluate, evaluate_cells, evaluate_cells_state, evaluate_shard, merge_shards
from tests.quality.engine.coco_parity_helpers import assert_same_arrays, pycoco_eval, random_case

needs_kernels = pytest.mark.usefixtures("compiled_kernels")

# area bounds on the values the generators draw, so "<" vs "<=" matters
BOUNDS = ((0.0, 1e10), (0.0, 16.0), (16.0, 64.0), (64.0, 1e10))
AREAS = np.array([4.0, 16.0, 16.5, 40.0, 64.0, 64.0, 100.0, 1024.0, 9216.0])
IOUS = np.array([0.1, 0.3, 0.5, 0.5, 0.55, 0.75, 0.75, 0.9, 0.95, 1.0])  # ties, and equal to thresholds


def both_paths(run):
    """``run()`` with the kernels and without them."""
    fast = run()
    with native.disabled():
        assert native.kernels() is None
        slow = run()
    return fast, slow


def assert_same_results(a, b) -> None:
    for key in ("precision", "recall", "scores"):
        x, y = getattr(a, key), getattr(b, key)
        assert x.shape == y.shape, key
        assert np.array_equal(x, y), f"{key} differs at {np.argwhere(x != y)[:3].tolist()}"
    assert a.stats == b.stats


def assert_same_states(a, b) -> None:
    for key in ("matched", "ignored", "npig", "det_kpos", "det_img_pos", "det_rank", "det_score"):
        assert np.array_equal(getattr(a, key), getattr(b, key)), key


def random_cells(seed: int, *, n_images: int = 14, n_cats: int = 5, per_image: bool = False) -> tuple[list[Cell], list[int], list[int]]:
    """Cells with caller IoUs. The last category never has references, the one before never
    has detections; some images have no detections; reference ids of 0 and detection ids of
    0 occur; scores and IoUs tie."""
    rng = np.random.default_rng(seed)
    img_ids = sorted({int(5 * i + rng.integers(0, 4)) for i in range(n_images)})
    cat_ids = list(range(1, n_cats + 1))
    cells, next_gid, next_did = [], 1, 1
    for img in img_ids:
        no_dets = rng.random() < 0.15
        for cat in [0] if per_image else cat_ids:
            G = 0 if cat == n_cats else int(rng.integers(0, 7))
            D = 0 if no_dets or cat == n_cats - 1 else int(rng.integers(0, 9))
            if G == 0 and D == 0 and rng.random() < 0.5:
                continue
            ious = rng.choice(IOUS, size=(D, G)) * (rng.random((D, G)) < 0.6)
            gt_ids = np.arange(next_gid, next_gid + G) * (rng.random(G) > 0.1)  # some ids are 0
            dt_ids = np.arange(next_did, next_did + D) * (rng.random(D) > 0.05)
            next_gid, next_did = next_gid + G, next_did + D
            crowd = rng.random(G) < 0.15
            cells.append(
                Cell(
                    img_id=img,
                    cat_id=cat,
                    ious=ious,
                    gt_ids=gt_ids,
                    gt_area=rng.choice(AREAS, G),
                    gt_crowd=crowd,
                    gt_ignore_flag=crowd | (rng.random(G) < 0.1),
                    dt_ids=dt_ids,
                    dt_scores=rng.integers(1, 5, D) / 4.0,
                    dt_area=rng.choice(AREAS, D),
                )
            )
    rng.shuffle(cells)
    return cells, cat_ids, img_ids


CELL_PARAMS = {
    "default": EvalParams(),
    "cutoffs_and_bounds": EvalParams(
        max_dets=(5, 1, 3),
        area_rng=BOUNDS,
        area_rng_lbl=("all", "small", "medium", "large"),
        iou_thrs=np.array([0.1, 0.5, 0.55, 0.75, 1.0]),
        rec_thrs=np.array([0.5, 0.0, 1.0, 0.25, 1 / 3]),  # unsorted, as searchsorted allows
    ),
    "one_max_det_one_threshold": EvalParams(max_dets=(2,), iou_thrs=np.array([0.95])),
}


# --------------------------------------------------------------------------------------
# kernels vs the numpy path


@needs_kernels
@pytest.mark.parametrize("name", sorted(CELL_PARAMS))
@pytest.mark.parametrize("seed", range(6))
def test_evaluate_cells_with_and_without_kernels(seed, name):
    cells, cat_ids, img_ids = random_cells(seed)
    params = CELL_PARAMS[name]
    fast, slow = both_paths(lambda: evaluate_cells_state(cells, params=params, cat_ids=cat_ids, img_ids=img_ids))
    assert_same_states(fast, slow)
    assert_same_results(fast.result(), slow.result())
    fast, slow = both_paths(lambda: evaluate_cells(cells, params=params, cat_ids=cat_ids, img_ids=img_ids))
    assert_same_results(fast, slow)


@needs_kernels
@pytest.mark.parametrize("seed", range(4))
def test_evaluate_cells_without_categories_with_and_without_kernels(seed):
    cells, cat_ids, img_ids = random_cells(50 + seed, per_image=True)
    params = EvalParams(use_cats=False, max_dets=(1, 4, 100), area_rng=BOUNDS, area_rng_lbl=("all", "small", "medium", "large"))
    fast, slow = both_paths(lambda: evaluate_cells(cells, params=params, cat_ids=cat_ids, img_ids=img_ids))
    assert_same_results(fast, slow)


@needs_kernels
@pytest.mark.parametrize("iou_type", ["segm", "bbox"])
@pytest.mark.parametrize("seed", range(4))
def test_evaluate_with_and_without_kernels(seed, iou_type):
    gt, dt = random_case(700 + seed, n_images=12, score_levels=3)
    for params in (
        EvalParams(iou_type=iou_type),
        EvalParams(iou_type=iou_type, max_dets=(4, 1, 2), area_rng=BOUNDS),
        EvalParams(iou_type=iou_type, use_cats=False),
        EvalParams(iou_type=iou_type, cat_ids=[3, 1, 5], img_ids=[img["id"] for img in gt["images"]][::2]),
    ):
        fast, slow = both_paths(lambda p=params: evaluate_shard(gt, dt, params=p))
        assert_same_states(fast, slow)
        assert_same_results(fast.result(), slow.result())


@needs_kernels
def test_merged_shards_with_kernels_equal_the_single_numpy_run():
    gt, dt = random_case(800, n_images=14)
    with native.disabled():
        single = evaluate(gt, dt)
    merged = merge_shards([evaluate_shard(gt, dt, shard=i, num_shards=3) for i in (2, 0, 1)])
    assert_same_results(merged, single)


def test_empty_inputs_with_and_without_kernels():
    cells, cat_ids, img_ids = random_cells(900)
    no_dets = [
        Cell(
            **{**c.__dict__, "ious": np.zeros((0, len(c.gt_ids))), "dt_ids": np.zeros(0), "dt_scores": np.zeros(0), "dt_area": np.zeros(0)}
        )
        for c in cells
    ]
    for run in (
        lambda: evaluate_cells([], params=EvalParams(), cat_ids=cat_ids, img_ids=img_ids),
        lambda: evaluate_cells(no_dets, params=EvalParams(), cat_ids=cat_ids, img_ids=img_ids),
    ):
        fast, slow = both_paths(run)
        assert_same_results(fast, slow)


# --------------------------------------------------------------------------------------
# kernels vs pycocotools


@needs_kernels
@pytest.mark.parametrize("iou_type", ["segm", "bbox"])
@pytest.mark.parametrize("seed", range(3))
def test_kernels_match_pycocotools(seed, iou_type):
    gt, dt = random_case(1000 + seed, n_images=12, score_levels=3)
    assert_same_arrays(pycoco_eval(gt, dt, iou_type), evaluate(gt, dt, params=EvalParams(iou_type=iou_type)))
    area_rng = [list(b) for b in BOUNDS]
    ev = pycoco_eval(gt, dt, iou_type, maxDets=[1, 2, 4], areaRng=area_rng)
    assert_same_arrays(ev, evaluate(gt, dt, params=EvalParams(iou_type=iou_type, max_dets=(4, 1, 2), area_rng=BOUNDS)))


# --------------------------------------------------------------------------------------
# the build, and the kernels' own checks


def test_kernels_are_built_where_a_compiler_exists():
    # `make test` builds them first; CI must have them (the build fails loudly there).
    if os.environ.get("CI", "").lower() != "true" and shutil.which("cc") is None:
        pytest.skip("no C compiler here: the engine runs its Python path")
    if os.environ.get("QUALITY_NATIVE") == "0":
        pytest.skip("QUALITY_NATIVE=0 turns the kernels off on purpose")
    assert native.available(), native.status()
    k = native.kernels()
    for name in ("match", "accumulate", "parse_results", "box_area", "pair_ious", "rasterize", "decode", "count_runs"):
        assert hasattr(k, name), name


def _match_args(N=3, G=2, A=2, T=2):
    """Valid ``match`` arguments as bytearrays: a bytearray cannot be resized while a buffer
    of it is still held, so resizing them afterwards proves every buffer was released."""
    arrays = [
        np.array([[0.0, 1e10], [0.0, 50.0]]),  # area_rng
        np.array([0.5, 0.75])[:T],  # thr_eff
        np.array([10.0, 60.0, 20.0])[:N],  # d_area
        np.ones(N, bool),  # d_take
        np.array([0, 2, 2, 3], np.int64)[: N + 1],  # pair_start
        np.array([0, 1, 1], np.int64),  # pg
        np.array([0.8, 0.8, 0.6]),  # piou
        np.array([30.0, 70.0])[:G],  # g_area
        np.zeros(G, bool),  # g_ignore
        np.zeros(G, bool),  # g_crowd
        np.ones(G, bool),  # g_real
        np.zeros(A * T * N, bool),  # matched
        np.zeros(A * T * N, bool),  # ignored
    ]
    return [bytearray(a.tobytes()) for a in arrays]


def _assert_released(bufs) -> None:
    for b in bufs:
        b.append(0)  # BufferError if a buffer of it is still exported
        del b[-1]


@needs_kernels
def test_match_checks_sizes_and_indices_and_releases_buffers():
    k = native.kernels()
    args = _match_args()
    k.match(*args)
    _assert_released(args)
    matched = np.frombuffer(bytes(args[11]), bool).reshape(2, 2, 3)
    # d0 takes reference 1 (equal IoUs: the last wins), d2 then finds it taken
    assert matched[0, 0].tolist() == [True, False, False]
    for i, bad in (
        (11, bytearray(5)),
        (4, bytearray(np.array([0, 2, 2], np.int64).tobytes())),
        (5, bytearray(np.array([0, 1, 2], np.int64).tobytes())),
    ):
        args = _match_args()
        args[i] = bad
        with pytest.raises(ValueError):
            k.match(*args)
        _assert_released(args)


@needs_kernels
def test_accumulate_checks_sizes_and_indices_and_releases_buffers():
    k = native.kernels()
    T, R, K, A, M, N = 1, 3, 1, 1, 1, 2

    def args():
        arrays = [
            np.array([1, 0], np.int64),  # order
            np.array([0, N], np.int64),  # kb
            np.zeros(N, np.int64),  # det_rank
            np.array([0.5, 0.9]),  # det_score
            np.array([True, False]),  # matched [A, T, N]
            np.zeros(N, bool),  # ignored
            np.ones(K * A, np.int64),  # npig
            np.array([100], np.int64),  # max_dets
            np.array([0.0, 0.5, 1.0]),  # rec_thrs
            -np.ones(T * R * K * A * M),  # precision
            -np.ones(T * K * A * M),  # recall
            -np.ones(T * R * K * A * M),  # scores
        ]
        return [bytearray(a.tobytes()) for a in arrays]

    ok = args()
    k.accumulate(T, A, *ok)
    _assert_released(ok)
    # order visits detection 1 (unmatched) first, then 0 (matched): rc = [0, 1], pr = [0, 0.5]
    # made monotone [0.5, 0.5]; recall 0 is reached at detection 1 (score 0.9)
    assert np.frombuffer(bytes(ok[9])).tolist() == [0.5, 0.5, 0.5]
    assert np.frombuffer(bytes(ok[10])).tolist() == [1.0]
    assert np.frombuffer(bytes(ok[11])).tolist() == [0.9, 0.5, 0.5]
    for i, bad in (
        (9, bytearray(8)),
        (0, bytearray(np.array([1, 2], np.int64).tobytes())),
        (1, bytearray(np.array([0, 3], np.int64).tobytes())),
    ):
        a = args()
        a[i] = bad
        with pytest.raises(ValueError):
            k.accumulate(T, A, *a)
        _assert_released(a)
