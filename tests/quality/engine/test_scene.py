"""Scene complexity and coverage on hand-made masks with known answers."""

import numpy as np
import pytest

from quality.engine import masks
from quality.engine.scene import Declaration, SceneComplexity, coverage, crops, frame_figures, occluded_flags


def rle(mask: np.ndarray) -> dict:
    """The uncompressed COCO RLE of a binary mask (column-major runs, zeros first)."""
    flat = mask.astype(np.uint8).flatten(order="F")
    counts, current, run = [], 0, 0
    for v in flat:
        if v == current:
            run += 1
        else:
            counts.append(run)
            current, run = v, 1
    counts.append(run)
    return {"size": list(mask.shape), "counts": counts}


def box(h: int, w: int, rows: tuple[int, int], cols: tuple[int, int]) -> np.ndarray:
    m = np.zeros((h, w), dtype=np.uint8)
    m[rows[0] : rows[1], cols[0] : cols[1]] = 1
    return m


def checked(*ms: np.ndarray):
    return masks.to_rles([rle(m) for m in ms], [m.shape[0] for m in ms], [m.shape[1] for m in ms])


@pytest.mark.parametrize(
    "second, expected",
    [
        (((0, 10), (10, 20)), [True, True]),  # shares an edge: touches
        (((10, 20), (10, 20)), [True, True]),  # shares a corner only: touches (8-neighbourhood)
        (((5, 15), (5, 15)), [True, True]),  # overlaps
        (((0, 10), (11, 20)), [False, False]),  # one pixel apart
        (((12, 20), (12, 20)), [False, False]),  # diagonal, one pixel apart
        (((2, 5), (2, 5)), [True, True]),  # inside the other
    ],
)
def test_occlusion_is_overlap_or_touch(second, expected):
    a = box(30, 30, (0, 10), (0, 10))
    b = box(30, 30, *second)
    assert occluded_flags(checked(a, b)).tolist() == expected


def test_boxes_that_meet_but_masks_that_do_not():
    # an L shape whose box covers the square; the masks stay two pixels apart
    ell = np.zeros((30, 30), dtype=np.uint8)
    ell[0:20, 0:3] = 1
    ell[17:20, 0:20] = 1
    square = box(30, 30, (2, 8), (8, 14))
    far = box(30, 30, (25, 30), (25, 30))
    assert occluded_flags(checked(ell, square, far)).tolist() == [False, False, False]
    assert occluded_flags(checked(ell)).tolist() == [False]
    assert occluded_flags([]).tolist() == []


def test_frame_figures_sizes_and_categories():
    h = w = 200
    small = box(h, w, (0, 31), (0, 31))  # 961 px < 32²
    medium = box(h, w, (0, 32), (31, 63))  # 1024 px = 32²: medium; its first column is next to small's last
    large = box(h, w, (100, 196), (100, 196))  # 9216 px = 96²: large
    almost_large = box(h, w, (0, 95), (100, 196))  # 9120 px: medium
    f = frame_figures(checked(small, medium, large, almost_large), [1, 2, 2, 3])
    assert (f.instances, f.small, f.medium, f.large, f.categories) == (4, 1, 2, 1, 3)
    assert f.occluded == 2  # small and medium touch; almost_large ends 5 rows above large
    assert frame_figures([], []).instances == 0


def test_summary_over_frames():
    scene = SceneComplexity()
    # frames with 3, 1, 0 and 1 instances; 2 of the 5 instances occluded
    h = w = 100
    a, b, c = box(h, w, (0, 10), (0, 10)), box(h, w, (0, 10), (10, 20)), box(h, w, (50, 60), (50, 60))
    scene.add(frame_figures(checked(a, b, c), [1, 2, 1]))
    scene.add(frame_figures(checked(box(h, w, (0, 35), (0, 35))), [1]))
    scene.add(frame_figures([], []))
    scene.add(frame_figures(checked(box(h, w, (0, 100), (0, 100))), [4]))
    fig = scene.figures()
    assert fig["frames"] == 4 and fig["instances"] == 5
    assert fig["instances_per_frame"] == {"mean": 1.25, "p90": 3}
    assert fig["occlusion"] == 0.4
    assert fig["sizes"] == {"small": 0.6, "medium": 0.2, "large": 0.2}
    assert fig["categories_per_frame"] == {"mean": 1.0, "p90": 2}
    assert SceneComplexity().figures()["occlusion"] is None


@pytest.mark.parametrize(("counts", "p90"), [([0, 1, 2, 3, 4, 5, 6, 7, 8, 9], 8), ([5], 5), ([1] * 9 + [50], 1), ([1] * 8 + [50, 50], 50)])
def test_p90_is_the_nearest_rank(counts, p90):
    scene = SceneComplexity(per_frame=counts, categories=[0] * len(counts))
    assert scene.figures()["instances_per_frame"]["p90"] == p90


def test_coverage_counts_frames_and_episodes_per_declared_value():
    tally = coverage(
        [
            Declaration(frames=10, embodiments=("UR5e",), tasks=("pick",), episode=1),
            Declaration(frames=5, embodiments=("UR5e", "UR5e"), tasks=("pick", "pour"), episode=2),
            Declaration(frames=1, embodiments=("Franka",)),  # a lone image: no episode
            Declaration(frames=1, embodiments=("Franka",), episode=3),
            Declaration(frames=1, embodiments=("Franka",), episode=3),  # another frame of episode 3
            Declaration(frames=7, sensors=("rgb",)),  # a sensor is no embodiment or task
        ]
    )
    assert tally["embodiments"] == {"UR5e": {"frames": 15, "episodes": 2}, "Franka": {"frames": 3, "episodes": 1}}
    assert tally["tasks"] == {"pick": {"frames": 15, "episodes": 2}, "pour": {"frames": 5, "episodes": 1}}
    assert tally["undeclared_frames"] == 7 and tally["declared_frames"] == 18
    assert tally["sensors"] == {"rgb": {"frames": 7, "episodes": 0}}


def test_crops_equal_the_decoded_masks_inside_their_boxes():
    rng = np.random.default_rng(7)
    h, w = 37, 53
    shapes = [box(h, w, (0, h), (0, w)), box(h, w, (0, 1), (0, 1)), box(h, w, (h - 1, h), (w - 1, w)), box(h, w, (5, 6), (0, w))]
    shapes += [(rng.random((h, w)) < p).astype(np.uint8) for p in (0.05, 0.5, 0.95)]  # many runs crossing columns
    rles = checked(*[s for s in shapes if s.any()])
    for r, (top, left, crop) in zip(rles, crops(rles, masks.rle_boxes(rles)), strict=True):
        full = masks.decode(r).astype(bool)
        assert crop.shape[0] >= 1 and crop.dtype == bool
        assert np.array_equal(crop, full[top : top + crop.shape[0], left : left + crop.shape[1]])
        assert crop.sum() == full.sum()  # the box holds the whole mask


def _strings(rles):
    from quality.engine import gate

    blob, off = masks.pack_counts(rles)
    hs = np.array([r.height for r in rles], dtype=np.int64)
    ws = np.array([r.width for r in rles], dtype=np.int64)
    return gate.check_strings(blob, off[:-1], off[1:], hs, ws, lambda i: f"masks[{i}]", box_area=masks.boxes_areas)


def _random_frames(seed: int, frames: int):
    """Frames of random blobs (rectangles, L shapes, rings, empty masks) packed close together
    so that overlaps, edge and corner contacts and near misses are all common."""
    rng = np.random.default_rng(seed)
    rles, frame, cats = [], [], []
    for f in range(frames):
        h, w = int(rng.integers(6, 40)), int(rng.integers(6, 40))
        for _ in range(int(rng.integers(0, 9))):
            m = np.zeros((h, w), dtype=np.uint8)
            kind = rng.integers(0, 4)
            r0, c0 = int(rng.integers(0, h)), int(rng.integers(0, w))
            r1, c1 = min(h, r0 + int(rng.integers(1, 12))), min(w, c0 + int(rng.integers(1, 12)))
            if kind == 0:
                m[r0:r1, c0:c1] = 1
            elif kind == 1:
                m[r0:r1, c0 : c0 + 1] = 1
                m[r1 - 1 : r1, c0:c1] = 1
            elif kind == 2:
                m[r0:r1, c0:c1] = 1
                m[r0 + 1 : r1 - 1, c0 + 1 : c1 - 1] = 0
            rles.append(rle(m))
            frame.append(f)
            cats.append(int(rng.integers(1, 5)))
    sizes = [(r["size"][0], r["size"][1]) for r in rles]
    checked_rles = masks.to_rles(rles, [s[0] for s in sizes], [s[1] for s in sizes])
    return checked_rles, np.array(frame, dtype=np.int64), np.array(cats, dtype=np.int64)


@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize("compiled", [True, False])
def test_strings_scene_is_frame_figures_on_every_frame(seed, compiled):
    from quality.engine import native
    from quality.engine.scene import occluded_strings, strings_scene

    frames = 300
    rles, frame, cats = _random_frames(seed, frames)
    expected = SceneComplexity()
    flags = np.zeros(len(rles), dtype=bool)
    for f in range(frames):
        idx = np.flatnonzero(frame == f)
        expected.add(frame_figures([rles[i] for i in idx], cats[idx].tolist()))
        flags[idx] = occluded_flags([rles[i] for i in idx])
    assert 0 < flags.sum() < len(flags)  # the draw has both
    if compiled:
        got, got_flags = strings_scene(_strings(rles), frame, cats, frames), occluded_strings(_strings(rles), frame)
    else:
        with native.disabled():
            got, got_flags = strings_scene(_strings(rles), frame, cats, frames), occluded_strings(_strings(rles), frame)
    assert got_flags.tolist() == flags.tolist()
    assert got.figures() == expected.figures()
    assert (got.per_frame, got.categories, got.occluded, got.sizes) == (expected.per_frame, expected.categories, expected.occluded, expected.sizes)


def test_strings_scene_steps_bounded(monkeypatch):
    """Cut into many small steps (pairs, candidates, lookups), the figures are the same."""
    from quality.engine import scene
    from quality.engine.scene import occluded_strings

    rles, frame, _cats = _random_frames(5, 200)
    whole = occluded_strings(_strings(rles), frame)
    monkeypatch.setattr(scene, "PAIRS_PER_STEP", 7)
    monkeypatch.setattr(scene, "CANDIDATES_PER_STEP", 3)
    monkeypatch.setattr(scene, "LOOKUPS_PER_STEP", 30)
    assert occluded_strings(_strings(rles), frame).tolist() == whole.tolist()
    assert whole.any()


def test_strings_scene_of_nothing():
    from quality.engine.scene import strings_scene

    got = strings_scene(_strings([]), np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int64), 3)
    assert (got.per_frame, got.categories, got.occluded, got.sizes) == ([0, 0, 0], [0, 0, 0], 0, [0, 0, 0])


def test_the_compiled_touch_test_refuses_bad_arrays(compiled_kernels):
    kernels = compiled_kernels
    counts = np.array([5, 3, 4, 4, 8], dtype=np.int64)  # two 4 x 3 masks
    offsets = np.array([0, 3, 5], dtype=np.int64)
    heights = np.array([4, 4], dtype=np.int64)
    widths = np.array([3, 3], dtype=np.int64)
    pair = (np.array([0]), np.array([1]))
    out = np.zeros(1, dtype=np.uint8)
    kernels.touching_runs(counts, offsets, heights, widths, *pair, out)
    assert out.tolist() == [1]  # both cover rows 1-3 of column 1
    with pytest.raises(ValueError, match="array sizes"):
        kernels.touching_runs(counts, offsets, heights, widths[:1], *pair, out)
    with pytest.raises(ValueError, match="out of range"):
        kernels.touching_runs(counts, offsets, heights, widths, np.array([0]), np.array([2]), out)  # no mask 2
    with pytest.raises(ValueError, match="bad offsets"):
        kernels.touching_runs(counts, np.array([0, 3, 9], dtype=np.int64), heights, widths, *pair, out)  # past the runs
    with pytest.raises(ValueError, match="bad offsets or sizes"):
        kernels.touching_runs(counts, offsets, heights, np.array([3, 0], dtype=np.int64), *pair, out)
    with pytest.raises(ValueError, match="negative run"):
        kernels.touching_runs(-counts, offsets, heights, widths, *pair, out)


@pytest.mark.parametrize(
    "second",
    [
        [4, 4],  # 8 of 12 pixels
        [4, 9],  # 13 of 12
        [0, 2**62, 2**62, 2**62],  # far past the raster, and past int64 once summed
    ],
)
def test_the_compiled_touch_test_refuses_runs_that_do_not_cover_the_mask(second, compiled_kernels):
    """The kernel alone (without the gate before it) refuses a mask whose runs do not sum to
    its height x width, naming the mask; nothing is written."""
    kernels = compiled_kernels
    counts = np.array([5, 3, 4, *second], dtype=np.int64)
    offsets = np.array([0, 3, len(counts)], dtype=np.int64)
    out = np.full(1, 7, dtype=np.uint8)
    with pytest.raises(ValueError, match=r"runs of mask 1 do not cover its 4 x 3 pixels"):
        kernels.touching_runs(counts, offsets, np.array([4, 4]), np.array([3, 3]), np.array([0]), np.array([1]), out)
    assert out.tolist() == [7]
