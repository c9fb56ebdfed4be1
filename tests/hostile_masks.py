"""A corpus of hostile masks and image sizes, for every path that takes masks from outside.

Each case puts one bad thing into a small, otherwise valid file: a segmentation (in
``annotations[1]`` of a COCO reference or seller file, in ``results[1]`` of a results
file) or an image's declared size (``images[1]``). ``code`` and ``where`` are what the gate
reports for a seller's file (``where`` relative to the segmentation's path, or absolute
for image sizes); the engine applies the same rules except that a polygon may lie outside
its image (pycocotools clips it), and what orjson cannot read is ``invalid_json`` to it
(``Case.engine``).

The JSON is written as text so that a case can hold what Python's json cannot write
(NaN, numbers past the float range). Use :func:`coco_text` and :func:`results_text`.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

H = W = 10  # the size of the image the hostile annotation lies on


def encode_values(values: list[int]) -> str:
    """A counts string holding exactly ``values`` (rleToString's coding of each value, before
    its delta), so that any run, negative or past 32 bits, can be written."""
    out = []
    for x in values:
        more = True
        while more:
            c = x & 0x1F
            x >>= 5
            more = x != -1 if c & 0x10 else x != 0
            if more:
                c |= 0x20
            out.append(chr(c + 48))
    return "".join(out)


def encode_runs(runs: list[int]) -> str:
    """rleToString of ``runs`` (values are runs minus the run two back, from run 3 on)."""
    return encode_values([r - runs[i - 2] if i > 2 else r for i, r in enumerate(runs)])


@dataclass(frozen=True)
class Case:
    segmentation: str | None  # JSON text of the hostile segmentation (None: an image-size case)
    code: str
    where: str  # appended to the segmentation's path, or the absolute location of a size case
    image: str | None = None  # JSON text of images[1]'s "height", "width" members (size cases)
    # what the engine reports when it differs: "ok" (it takes polygons outside the image),
    # "invalid_json" (orjson refuses NaN, Infinity, numbers past the float range), or the
    # code for what orjson reads (integers past 64 bits become floats, where the streaming
    # validation reports number_out_of_range)
    engine: str | None = None

    @property
    def engine_code(self) -> str:
        return self.engine or self.code


_OK_RUNS = [11, 2, 8, 2, 77]
_HUGE = 2**32

CASES: dict[str, Case] = {
    # compressed counts
    "rle-runs-past-the-image": Case('{"size": [10, 10], "counts": "0Xo0"}', "rle_sum_mismatch", ".counts"),
    "rle-not-rle": Case('{"size": [10, 10], "counts": "!!!not-rle"}', "rle_bad_character", ".counts"),
    "rle-cut-off": Case('{"size": [10, 10], "counts": "PPYo0a"}', "rle_truncated", ".counts"),
    "rle-cut-off-one-char": Case('{"size": [10, 10], "counts": "P"}', "rle_truncated", ".counts"),
    "rle-bad-char-late": Case(json.dumps({"size": [10, 10], "counts": encode_runs(_OK_RUNS) + "~"}), "rle_bad_character", ".counts"),
    "rle-space": Case(json.dumps({"size": [10, 10], "counts": encode_runs(_OK_RUNS)[:2] + " " + encode_runs(_OK_RUNS)[2:]}), "rle_bad_character", ".counts"),
    "rle-escaped-quote": Case('{"size": [10, 10], "counts": "0\\"1"}', "rle_bad_character", ".counts"),
    "rle-escaped-backslash": Case('{"size": [10, 10], "counts": "Y\\\\0"}', "rle_sum_mismatch", ".counts"),
    "rle-non-ascii": Case('{"size": [10, 10], "counts": "0\u00e91"}', "rle_bad_character", ".counts"),
    "rle-value-too-long": Case('{"size": [10, 10], "counts": "0oooooooo0"}', "rle_run_overflow", ".counts"),
    "rle-run-of-2-to-the-32": Case(json.dumps({"size": [10, 10], "counts": encode_values([_HUGE, 0])}), "rle_run_overflow", ".counts"),
    "rle-run-overflow-by-delta": Case(
        json.dumps({"size": [10, 10], "counts": encode_values([0, 2**32 - 1, 0, 2**32 - 1])}), "rle_run_overflow", ".counts"
    ),
    "rle-negative-first-run": Case(json.dumps({"size": [10, 10], "counts": encode_values([-5, 105])}), "rle_negative_run", ".counts"),
    "rle-negative-by-delta": Case(json.dumps({"size": [10, 10], "counts": encode_values([10, 20, 30, -25, 65])}), "rle_negative_run", ".counts"),
    "rle-sum-short": Case(json.dumps({"size": [10, 10], "counts": encode_runs([10, 20])}), "rle_sum_mismatch", ".counts"),
    "rle-empty-string": Case('{"size": [10, 10], "counts": ""}', "rle_sum_mismatch", ".counts"),
    "rle-size-not-the-images": Case(json.dumps({"size": [10, 11], "counts": encode_runs([110])}), "rle_size_mismatch", ".size"),
    "rle-size-huge": Case('{"size": [70000, 70000], "counts": "0"}', "rle_size_mismatch", ".size"),
    "rle-size-strings": Case('{"size": ["10", "10"], "counts": "0"}', "wrong_type", ".size"),
    "rle-size-three": Case('{"size": [10, 10, 1], "counts": "0"}', "wrong_type", ".size"),
    "rle-size-missing": Case('{"counts": "0"}', "missing_field", ".size"),
    "rle-counts-missing": Case('{"size": [10, 10]}', "missing_field", ".counts"),
    "rle-counts-number": Case('{"size": [10, 10], "counts": 100}', "wrong_type", ".counts"),
    # uncompressed counts
    "counts-negative": Case('{"size": [10, 10], "counts": [50, -1, 51]}', "rle_negative_run", ".counts[1]"),
    "counts-sum-short": Case('{"size": [10, 10], "counts": [10, 20]}', "rle_sum_mismatch", ".counts"),
    "counts-sum-long": Case('{"size": [10, 10], "counts": [0, 1000]}', "rle_sum_mismatch", ".counts"),
    "counts-empty": Case('{"size": [10, 10], "counts": []}', "rle_sum_mismatch", ".counts"),
    "counts-float": Case('{"size": [10, 10], "counts": [50.0, 50]}', "wrong_type", ".counts[0]"),
    "counts-bool": Case('{"size": [10, 10], "counts": [true, 99]}', "wrong_type", ".counts[0]"),
    "counts-string": Case('{"size": [10, 10], "counts": [50, "50"]}', "wrong_type", ".counts[1]"),
    "counts-past-32-bits": Case(f'{{"size": [10, 10], "counts": [{_HUGE}, 0]}}', "rle_run_overflow", ".counts[0]"),
    "counts-huge": Case('{"size": [10, 10], "counts": [123456789012345678901234567890, 0]}', "number_out_of_range", ".counts[0]", engine="wrong_type"),
    # polygons
    "polygon-odd": Case("[[1, 1, 5, 1, 5]]", "polygon_odd_length", "[0]"),
    "polygon-two-points": Case("[[1, 1, 5, 5]]", "polygon_too_short", "[0]"),
    "polygon-one-number": Case("[[1]]", "polygon_odd_length", "[0]"),
    "polygon-empty-polygon": Case("[[1, 1, 5, 1, 5, 5], []]", "polygon_too_short", "[1]"),
    "polygon-list-empty": Case("[]", "empty_segmentation", ""),
    "polygon-flat": Case("[1, 1, 5, 1, 5, 5]", "wrong_type", "[0]"),
    "polygon-string-coordinate": Case('[[1, 1, "5", 1, 5, 5]]', "wrong_type", "[0][2]"),
    "polygon-bool-coordinate": Case("[[1, 1, true, 1, 5, 5]]", "wrong_type", "[0][2]"),
    "polygon-null-coordinate": Case("[[1, 1, null, 1, 5, 5]]", "wrong_type", "[0][2]"),
    "polygon-nested-coordinate": Case("[[1, 1, [5], 1, 5, 5]]", "wrong_type", "[0][2]"),
    "polygon-nan": Case("[[1, 1, NaN, 1, 5, 5]]", "non_finite_number", "[0][2]", engine="invalid_json"),
    "polygon-infinity": Case("[[1, 1, 5, 1, 5, -Infinity]]", "non_finite_number", "[0][5]", engine="invalid_json"),
    "polygon-past-float-range": Case("[[1, 1, 1e400, 1, 5, 5]]", "non_finite_number", "[0][2]", engine="invalid_json"),
    "polygon-far-away": Case("[[1, 1, 2e6, 1, 5, 5]]", "coordinate_out_of_range", "[0][2]"),
    "polygon-huge-int": Case("[[1, 1, 123456789012345678901234567890, 1, 5, 5]]", "number_out_of_range", "[0][2]", engine="coordinate_out_of_range"),
    "polygon-outside-the-image": Case("[[1, 1, 50, 1, 50, 5]]", "mask_outside_image", "[0]", engine="ok"),
    "polygon-negative": Case("[[-5, 1, 5, 1, 5, 5]]", "mask_outside_image", "[0]", engine="ok"),
    # not a segmentation
    "segmentation-string": Case('"abc"', "wrong_type", ""),
    "segmentation-number": Case("7", "wrong_type", ""),
    "segmentation-null": Case("null", "wrong_type", ""),
    "segmentation-true": Case("true", "wrong_type", ""),
    # image sizes (images[1], the image of annotations[1])
    "image-70000-square": Case(None, "image_too_large", "images[1].height", image='"height": 70000, "width": 70000'),
    "image-too-wide": Case(None, "image_too_large", "images[1].width", image='"height": 10, "width": 65536'),
    "image-too-many-pixels": Case(None, "image_too_large", "images[1]", image='"height": 20000, "width": 20000'),
    "image-zero-height": Case(None, "wrong_type", "images[1].height", image='"height": 0, "width": 10'),
    "image-negative-width": Case(None, "wrong_type", "images[1].width", image='"height": 10, "width": -10'),
}

_GOOD_POLYGON = "[[1, 1, 5, 1, 5, 5, 1, 5]]"


def _image(i: int, dims: str) -> str:
    return f'{{"id": {i}, "file_name": "img{i}.png", {dims}}}'


def coco_text(case: Case) -> str:
    """A COCO file with the case in ``annotations[1]`` (on ``images[1]``)."""
    seg = case.segmentation if case.segmentation is not None else "[[1, 1, 5, 1, 5, 5], [6, 6, 9, 6, 9, 9]]"
    dims = case.image or f'"height": {H}, "width": {W}'
    return (
        '{"images": [' + _image(1, f'"height": {H}, "width": {W}') + ", " + _image(2, dims) + "], "
        '"categories": [{"id": 1, "name": "thing"}], '
        '"annotations": ['
        f'{{"id": 1, "image_id": 1, "category_id": 1, "area": 16.0, "bbox": [1, 1, 4, 4], "iscrowd": 0, "segmentation": {_GOOD_POLYGON}}}, '
        f'{{"id": 2, "image_id": 2, "category_id": 1, "area": 16.0, "bbox": [1, 1, 4, 4], "iscrowd": 0, "segmentation": {seg}}}'
        "]}"
    )


def results_text(case: Case) -> str:
    """A results file (against :func:`coco_text` of a valid case) with the case's mask in
    ``results[1]``."""
    good = json.dumps({"size": [H, W], "counts": encode_runs(_OK_RUNS)})
    return (
        f'[{{"image_id": 1, "category_id": 1, "score": 0.9, "segmentation": {good}}}, '
        f'{{"image_id": 2, "category_id": 1, "score": 0.8, "segmentation": {case.segmentation}}}]'
    )


def location(case: Case, path: str) -> str:
    """Where the gate reports the case when the hostile segmentation lies at ``path``."""
    return case.where if case.segmentation is None else path + case.where


MASK_CASES = {name: c for name, c in CASES.items() if c.segmentation is not None}
SIZE_CASES = {name: c for name, c in CASES.items() if c.segmentation is None}
