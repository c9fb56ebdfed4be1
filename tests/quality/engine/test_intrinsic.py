"""Intrinsic checks on a small hand-made COCO file with one of each problem."""

from __future__ import annotations

import numpy as np
from pycocotools import mask as mask_utils

from quality.engine.intrinsic import CODES, intrinsic_checks, polygon_self_intersects
from quality.engine.reports import IntrinsicReport


def _square(x0, y0, s):
    return [[x0, y0, x0 + s, y0, x0 + s, y0 + s, x0, y0 + s]]


def _rle(h, w, box):
    m = np.zeros((h, w), np.uint8)
    y0, y1, x0, x1 = box
    m[y0:y1, x0:x1] = 1
    return {"size": [h, w], "counts": mask_utils.encode(np.asfortranarray(m))["counts"].decode()}


def _dataset():
    anns = [
        {"id": 1, "image_id": 1, "category_id": 1, "segmentation": _square(2, 2, 10)},  # clean
        {"id": 2, "image_id": 1, "category_id": 1, "segmentation": _square(2, 2, 10)},  # duplicate of 1
        {"id": 3, "image_id": 1, "category_id": 2, "segmentation": [[0, 0, 10, 10, 10, 0, 0, 6]]},  # bow-tie
        {"id": 4, "image_id": 1, "category_id": 2, "segmentation": [[1, 1, 2, 2]]},  # two points
        {"id": 5, "image_id": 2, "category_id": 1, "segmentation": _square(25, 25, 10)},  # past the border
        {"id": 6, "image_id": 2, "category_id": 1, "segmentation": _rle(30, 30, (0, 0, 0, 0))},  # empty
        {"id": 7, "image_id": 2, "category_id": 2, "segmentation": _rle(30, 30, (5, 7, 5, 7))},  # 4 px
        {"id": 8, "image_id": 2, "category_id": 2, "segmentation": _rle(20, 20, (0, 5, 0, 5))},  # wrong size
        {"id": 9, "image_id": 99, "category_id": 1, "segmentation": _square(1, 1, 3)},  # unknown image
        {"id": 10, "image_id": 2, "category_id": 42, "segmentation": _square(1, 1, 8)},  # unknown class
    ]
    return {
        "images": [{"id": i, "height": 30, "width": 30, "file_name": f"{i}.jpg"} for i in (1, 2, 3)],
        "categories": [{"id": 1, "name": "a"}, {"id": 2, "name": "b"}],
        "annotations": anns,
    }


def test_given_one_of_each_problem_then_each_finding_counts_it():
    report = intrinsic_checks(_dataset())
    expected = {
        "invalid_polygon": [4],
        "self_intersecting_polygon": [3],
        "mask_outside_image": [5, 8],
        "empty_mask": [6],  # the two-point polygon is refused by the gate: never rasterised
        "duplicate_instance": [2],
        "tiny_mask": [7],
        "image_without_annotations": [3],
        "unknown_image": [9],
        "unknown_category": [10],
    }
    assert [f.code for f in report.findings] == list(CODES)
    for code, ids in expected.items():
        finding = report.finding(code)
        assert (finding.count, sorted(finding.examples)) == (len(ids), ids), code
    assert report.n_images == 3 and report.n_annotations == 10
    assert report.class_distribution == {"1": 5, "2": 4, "42": 1}
    assert report.instances_per_image == {"min": 0, "max": 5, "mean": 3.0, "median": 4.0}
    assert report.instances_per_image_histogram == {"0": 1, "4": 1, "5": 1}
    assert sum(report.area_histogram["counts"]) == 7  # all rasterised masks (not invalid, wrong-size, unknown image)
    assert IntrinsicReport.from_dict(report.to_dict()) == report


def test_given_clean_dataset_then_all_counts_zero():
    data = _dataset()
    data["annotations"] = data["annotations"][:1]
    data["images"] = data["images"][:1]
    report = intrinsic_checks(data)
    assert all(f.count == 0 for f in report.findings)


def test_polygon_self_intersection():
    assert polygon_self_intersects(np.array([[0, 0], [10, 10], [10, 0], [0, 10]], float))
    assert not polygon_self_intersects(np.array([[0, 0], [10, 0], [10, 10], [0, 10]], float))
    assert not polygon_self_intersects(np.array([[0, 0], [10, 0], [5, 3], [10, 10], [0, 10]], float))


def test_self_intersection_is_the_same_in_blocks_and_bounded_in_memory(monkeypatch):
    """Edges are compared block by block: the answer equals the all-pairs one, and a
    100,000-point polygon needs memory proportional to its length, not its square."""
    import tracemalloc

    import numpy as np

    from quality.engine import intrinsic

    def all_pairs(pts):
        n = len(pts)
        a, b = pts, np.roll(pts, -1, axis=0)

        def orient(p, q, r):
            return (q[..., 0] - p[..., 0]) * (r[..., 1] - p[..., 1]) - (q[..., 1] - p[..., 1]) * (r[..., 0] - p[..., 0])

        ai, bi, aj, bj = a[:, None], b[:, None], a[None], b[None]
        cross = (orient(ai, bi, aj) * orient(ai, bi, bj) < 0) & (orient(aj, bj, ai) * orient(aj, bj, bi) < 0)
        i, j = np.triu_indices(n, k=2)
        keep = ~((i == 0) & (j == n - 1))
        return bool(cross[i[keep], j[keep]].any())

    rng = np.random.default_rng(7)
    for trial in range(200):
        n = int(rng.integers(4, 40))
        if trial % 2:
            angles = np.sort(rng.random(n) * 2 * np.pi)
            pts = np.c_[np.cos(angles), np.sin(angles)] * (1 + rng.random(n))[:, None]
        else:
            pts = rng.random((n, 2)) * 10
        monkeypatch.setattr(intrinsic, "SELF_INTERSECT_BLOCK", int(rng.integers(1, 9)))
        assert intrinsic.polygon_self_intersects(pts) == all_pairs(pts)

    monkeypatch.setattr(intrinsic, "SELF_INTERSECT_BLOCK", 256)
    angles = np.linspace(0, 2 * np.pi, 4_000, endpoint=False)
    circle = np.c_[np.cos(angles), np.sin(angles)] * 1000.0
    tracemalloc.start()
    assert intrinsic.polygon_self_intersects(circle) is False
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert peak < 250_000_000, f"peak {peak} bytes"  # all pairs at once would need over 1 GB
