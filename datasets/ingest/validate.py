"""Streaming validation and statistics of annotation files (COCO instances, COCO with
video/track ids, YouTube-VIS, COCO panoptic).

Memory is constant in the file size: the file is read with ijson (its C backend) one
section at a time, one item at a time; what is kept grows with the number of images and
categories (ids, sizes, names: needed to check references) and with the number of
annotation ids (duplicate check), never with the polygons themselves.

Passes: (1) structure: depth, top-level sections and their types, JSON syntax (NaN and
Infinity are not JSON: they are reported with their JSON path); (2) categories,
licenses, images/videos; (3) annotations. Every error is ``{code, location, message}``
with ``location`` a JSON path such as ``annotations[12].segmentation[0]``.
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

import ijson

from datasets.limits import Limits, limits

FORMATS = ("coco_instances", "coco_video", "youtube_vis", "coco_panoptic")
_STARTS = frozenset(("start_map", "start_array"))
_ENDS = frozenset(("end_map", "end_array"))
AREA_EDGES = [0] + [4**k for k in range(1, 13)]  # 4, 16, 64, ... 4^12 pixels (log bins)


def _is_int(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _is_num(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


class Report:
    def __init__(self, max_errors: int) -> None:
        self.errors: list[dict] = []
        self.warnings: list[dict] = []
        self.count = 0
        self.max_errors = max_errors

    def error(self, code: str, location: str, message: str) -> None:
        self.count += 1
        if len(self.errors) < self.max_errors:
            self.errors.append({"code": code, "location": location, "message": message})

    def warn(self, code: str, location: str, message: str) -> None:
        if len(self.warnings) < self.max_errors:
            self.warnings.append({"code": code, "location": location, "message": message})

    @property
    def full(self) -> bool:
        return self.count >= self.max_errors * 50  # stop scanning a hopeless file


@dataclass(kw_only=True)
class ValidationResult:
    path: str
    format: str | None
    report: dict
    statistics: dict
    image_ids: list[int] = field(default_factory=list)
    images: list[dict] = field(default_factory=list)  # {"id", "height", "width", "file_name"}
    categories: list[dict] = field(default_factory=list)

    @property
    def valid(self) -> bool:
        return self.report["valid"]


def _located_failure(path: str, lim: Limits) -> tuple[str, str, str]:
    """Re-read the file tracking array indices, to name where parsing failed or the
    nesting got too deep (only run on the failure path: it is slower)."""
    stack: list[list] = []  # [is_array, index_or_key]
    location = "$"

    def where() -> str:
        out = ""
        for is_array, k in stack:
            if is_array:
                out += f"[{max(k, 0)}]"
            elif k is not None:
                out += f".{k}" if out else str(k)
        return out or "$"

    try:
        with open(path, "rb") as fh:
            for _prefix, event, value in ijson.parse(fh, use_float=True):
                if event == "map_key":
                    stack[-1][1] = value
                    continue
                if event in _ENDS:
                    stack.pop()
                    continue
                if stack and stack[-1][0]:
                    stack[-1][1] += 1
                if event in _STARTS:
                    stack.append([event == "start_array", -1 if event == "start_array" else None])
                    if len(stack) > lim.json_max_depth:
                        return "too_deep", where(), f"JSON nesting deeper than {lim.json_max_depth} levels"
                elif isinstance(value, float) and not math.isfinite(value):
                    return "non_finite_number", where(), "numbers must be finite"
    except ijson.JSONError as exc:
        if stack and stack[-1][0]:
            stack[-1][1] += 1  # the value that failed to parse is the next element
        location = where()
        text = str(exc)
        if any(tok in text for tok in ("NaN", "Infinity", "nan", "inf")):
            return "non_finite_number", location, "NaN and Infinity are not allowed (not JSON numbers)"
        return "invalid_json", location, f"not valid JSON: {text.splitlines()[0] if text else exc!r}"
    return "invalid_json", location, "not valid JSON"


def _structure(path: str, lim: Limits, report: Report) -> dict[str, str] | None:
    """Top-level sections and their JSON types; None (with an error) when the file is not
    a well-formed JSON object within the depth limit."""
    types: dict[str, str] = {}
    depth = 0
    max_depth = lim.json_max_depth
    first = True
    try:
        with open(path, "rb") as fh:
            for prefix, event, _value in ijson.parse(fh):
                if first:
                    first = False
                    if event != "start_map":
                        report.error("wrong_type", "$", "the file must hold a JSON object")
                        return None
                if event in _STARTS:
                    if depth == 1:
                        types[prefix] = "array" if event == "start_array" else "object"
                    depth += 1
                    if depth > max_depth:
                        raise _TooDeep
                elif event in _ENDS:
                    depth -= 1
                elif depth == 1 and event != "map_key":
                    types[prefix] = event
    except (ijson.JSONError, _TooDeep, OverflowError, ValueError):
        code, location, message = _located_failure(path, lim)
        report.error(code, location, message)
        return None
    if first:
        report.error("invalid_json", "$", "the file is empty")
        return None
    return types


class _TooDeep(Exception):
    pass


def _items(path: str, prefix: str) -> Iterable[Any]:
    with open(path, "rb") as fh:
        yield from ijson.items(fh, prefix, use_float=True)


def _first(path: str, prefix: str) -> Any:
    for item in _items(path, prefix):
        return item
    return None


def detect_format(path: str, types: dict[str, str]) -> str:
    if "videos" in types:
        return "youtube_vis"
    ann = _first(path, "annotations.item")
    if isinstance(ann, dict) and "segments_info" in ann:
        return "coco_panoptic"
    img = _first(path, "images.item")
    if (isinstance(ann, dict) and ("track_id" in ann or "video_id" in ann)) or (isinstance(img, dict) and "video_id" in img):
        return "coco_video"
    return "coco_instances"


REQUIRED = {
    "coco_instances": ("images", "annotations", "categories"),
    "coco_video": ("images", "annotations", "categories"),
    "youtube_vis": ("videos", "annotations", "categories"),
    "coco_panoptic": ("images", "annotations", "categories"),
}


def _check_polygons(segm: list, h: int, w: int, loc: str, report: Report) -> None:
    if not segm:
        report.error("empty_segmentation", loc, "the segmentation has no polygon")
        return
    for j, poly in enumerate(segm):
        ploc = f"{loc}[{j}]"
        if not isinstance(poly, list):
            report.error("wrong_type", ploc, "a polygon must be a list of numbers")
            continue
        if len(poly) % 2:
            report.error("polygon_odd_length", ploc, f"a polygon needs x,y pairs; it has {len(poly)} numbers")
            continue
        if len(poly) < 6:
            report.error("polygon_too_short", ploc, f"a polygon needs at least 3 points (6 numbers); it has {len(poly)}")
            continue
        try:
            xs = poly[0::2]
            ys = poly[1::2]
            lo_x, hi_x, lo_y, hi_y = min(xs), max(xs), min(ys), max(ys)
        except TypeError:
            report.error("wrong_type", ploc, "polygon coordinates must be numbers")
            continue
        if not all(_is_num(v) for v in poly):
            report.error("wrong_type", ploc, "polygon coordinates must be numbers")
            continue
        if not (math.isfinite(lo_x) and math.isfinite(hi_x) and math.isfinite(lo_y) and math.isfinite(hi_y)):
            report.error("non_finite_number", ploc, "polygon coordinates must be finite")
            continue
        # one pixel of slack: polygons on the border are commonly drawn at x = width
        if lo_x < -1 or lo_y < -1 or hi_x > w + 1 or hi_y > h + 1:
            report.error(
                "mask_outside_image", ploc, f"the polygon reaches outside the {w}x{h} image (x {lo_x:g}..{hi_x:g}, y {lo_y:g}..{hi_y:g})"
            )


def _check_rle(segm: dict, h: int, w: int, loc: str, report: Report) -> None:
    size = segm.get("size")
    counts = segm.get("counts")
    if not (isinstance(size, list) and len(size) == 2 and all(_is_int(v) for v in size)):
        report.error("wrong_type", f"{loc}.size", "RLE size must be [height, width]")
        return
    if size != [h, w]:
        report.error("rle_size_mismatch", f"{loc}.size", f"RLE size {size} does not match the image's [{h}, {w}]")
        return
    if isinstance(counts, str):
        if not counts:
            report.error("wrong_type", f"{loc}.counts", "RLE counts are empty")
    elif isinstance(counts, list):
        if not all(_is_int(c) and c >= 0 for c in counts):
            report.error("wrong_type", f"{loc}.counts", "RLE counts must be non-negative integers")
        elif sum(counts) != h * w:
            report.error("mask_outside_image", f"{loc}.counts", f"RLE counts cover {sum(counts)} pixels; the image has {h * w}")
    else:
        report.error("wrong_type", f"{loc}.counts", "RLE counts must be a string or a list of integers")


def _check_segmentation(segm: Any, h: int, w: int, loc: str, report: Report) -> None:
    if isinstance(segm, list):
        _check_polygons(segm, h, w, loc, report)
    elif isinstance(segm, dict):
        _check_rle(segm, h, w, loc, report)
    else:
        report.error("wrong_type", loc, "segmentation must be a list of polygons or an RLE object")


def _check_number(value: Any, loc: str, report: Report, *, minimum: float | None = None) -> bool:
    if not _is_num(value):
        report.error("wrong_type", loc, "must be a number")
        return False
    if not math.isfinite(value):
        report.error("non_finite_number", loc, "must be finite")
        return False
    if minimum is not None and value < minimum:
        report.error("out_of_range", loc, f"must be at least {minimum}")
        return False
    return True


def _check_bbox(bbox: Any, loc: str, report: Report) -> None:
    if not (isinstance(bbox, list) and len(bbox) == 4):
        report.error("wrong_type", loc, "bbox must be [x, y, width, height]")
        return
    for k, v in enumerate(bbox):
        if not _check_number(v, f"{loc}[{k}]", report, minimum=0 if k >= 2 else None):
            return


def validate_annotation_file(
    path: str | os.PathLike,
    *,
    check_image_files: Callable[[str], bool] | None = None,
    lim: Limits | None = None,
) -> ValidationResult:
    """Validate one annotation file and compute its statistics.

    ``check_image_files(file_name) -> bool`` says whether an image named by the file was
    uploaded (None: the JSON alone is checked, as ``python -m datasets validate`` does).
    """
    lim = lim or limits()
    path = str(path)
    report = Report(lim.max_errors)
    fmt: str | None = None
    stats: dict = {}
    result = ValidationResult(path=path, format=None, report={}, statistics={})
    size = os.path.getsize(path)
    if size > lim.json_max_bytes:
        report.error("file_too_large", "$", f"the file has {size} bytes; at most {lim.json_max_bytes} are accepted")
    else:
        types = _structure(path, lim, report)
        if types is not None:
            fmt = detect_format(path, types)
            for name in REQUIRED[fmt]:
                if name not in types:
                    report.error("missing_section", name, f"the '{name}' section is missing")
                elif types[name] != "array":
                    report.error("wrong_type", name, f"'{name}' must be a list")
            if "licenses" in types and types["licenses"] != "array":
                report.error("wrong_type", "licenses", "'licenses' must be a list")
            if not report.count:
                stats = _validate_sections(path, fmt, report, result, check_image_files)
    result.format = fmt
    result.report = {
        "valid": report.count == 0,
        "format": fmt,
        "error_count": report.count,
        "errors": report.errors,
        "truncated": report.count > len(report.errors),
        "warnings": report.warnings,
    }
    result.statistics = stats if report.count == 0 else {}
    return result


def _validate_sections(path: str, fmt: str, report: Report, result: ValidationResult, check_image_files) -> dict:
    video = fmt == "youtube_vis"
    # categories
    categories: dict[int, str] = {}
    for i, cat in enumerate(_items(path, "categories.item")):
        loc = f"categories[{i}]"
        if not isinstance(cat, dict):
            report.error("wrong_type", loc, "a category must be an object")
            continue
        cid = cat.get("id")
        if not _is_int(cid):
            report.error("missing_field" if cid is None else "wrong_type", f"{loc}.id", "a category needs an integer id")
            continue
        if cid in categories:
            report.error("duplicate_id", f"{loc}.id", f"category id {cid} appears twice")
        if not isinstance(cat.get("name"), str):
            report.error("missing_field" if "name" not in cat else "wrong_type", f"{loc}.name", "a category needs a name")
        categories[cid] = str(cat.get("name", ""))
        result.categories.append({"id": cid, "name": str(cat.get("name", "")), **({"isthing": cat["isthing"]} if "isthing" in cat else {})})
    # licenses
    licenses: dict[int, dict] = {}
    for i, lic in enumerate(_items(path, "licenses.item")):
        if not isinstance(lic, dict) or not _is_int(lic.get("id")):
            report.error("wrong_type", f"licenses[{i}]", "a license needs an integer id")
            continue
        licenses[lic["id"]] = {"id": lic["id"], "name": str(lic.get("name", "")), "url": str(lic.get("url", "")), "images": 0}
    # images (or videos)
    section = "videos" if video else "images"
    dims: dict[int, tuple[int, int]] = {}
    video_frames: dict[int, int] = {}
    without_license = 0
    frames = 0
    for i, img in enumerate(_items(path, f"{section}.item")):
        loc = f"{section}[{i}]"
        if not isinstance(img, dict):
            report.error("wrong_type", loc, "must be an object")
            continue
        iid = img.get("id")
        if not _is_int(iid):
            report.error("missing_field" if iid is None else "wrong_type", f"{loc}.id", "needs an integer id")
            continue
        if iid in dims:
            report.error("duplicate_id", f"{loc}.id", f"id {iid} appears twice")
            continue
        h, w = img.get("height"), img.get("width")
        ok = True
        for key, v in (("height", h), ("width", w)):
            if not (_is_int(v) and v > 0):
                report.error("missing_field" if v is None else "wrong_type", f"{loc}.{key}", f"{key} must be a positive integer")
                ok = False
        dims[iid] = (h, w) if ok else (0, 0)
        if video:
            names = img.get("file_names")
            if not (isinstance(names, list) and names and all(isinstance(n, str) for n in names)):
                report.error(
                    "missing_field" if names is None else "wrong_type",
                    f"{loc}.file_names",
                    "file_names must be a non-empty list of strings",
                )
                names = []
            video_frames[iid] = len(names)
            frames += len(names)
            file_names = names
        else:
            name = img.get("file_name")
            if not isinstance(name, str) or not name:
                report.error("missing_field" if name is None else "wrong_type", f"{loc}.file_name", "file_name must be a string")
                file_names = []
            else:
                file_names = [name]
            frames += 1
            result.images.append(
                {"id": iid, "height": h if ok else 0, "width": w if ok else 0, "file_name": name if isinstance(name, str) else ""}
            )
        if check_image_files is not None:
            for k, name in enumerate(file_names):
                if not check_image_files(name):
                    report.error(
                        "image_file_missing",
                        f"{loc}.file_names[{k}]" if video else f"{loc}.file_name",
                        f"{name!r} is referenced but was not uploaded",
                    )
        lic = img.get("license")
        if lic is None:
            without_license += 1
        elif lic in licenses:
            licenses[lic]["images"] += 1
        elif licenses:
            report.error("dangling_license_id", f"{loc}.license", f"license id {lic!r} is not in licenses")
        else:  # no licenses section at all: the id means nothing; counted as without license
            without_license += 1
            report.warn("unknown_license_id", f"{loc}.license", "the file has no licenses section")
        if report.full:
            return {}
    result.image_ids = list(dims)
    # annotations
    ann_ids: set[int] = set()
    per_image: dict[int, int] = {}
    per_cat: dict[int, int] = dict.fromkeys(categories, 0)
    area_counts = [0] * len(AREA_EDGES)
    instances = 0
    tracks: set = set()
    panoptic = fmt == "coco_panoptic"
    for i, ann in enumerate(_items(path, "annotations.item")):
        loc = f"annotations[{i}]"
        if report.full:
            break
        if not isinstance(ann, dict):
            report.error("wrong_type", loc, "an annotation must be an object")
            continue
        if panoptic:
            instances += _check_panoptic_annotation(ann, loc, dims, categories, per_cat, per_image, area_counts, report, check_image_files)
            continue
        aid = ann.get("id")
        if not _is_int(aid):
            report.error("missing_field" if aid is None else "wrong_type", f"{loc}.id", "an annotation needs an integer id")
        elif aid in ann_ids:
            report.error("duplicate_id", f"{loc}.id", f"annotation id {aid} appears twice")
        else:
            ann_ids.add(aid)
        owner_key = "video_id" if video else "image_id"
        owner = ann.get(owner_key)
        if not _is_int(owner):
            report.error("missing_field" if owner is None else "wrong_type", f"{loc}.{owner_key}", f"{owner_key} must be an integer")
            continue
        if owner not in dims:
            report.error(
                "dangling_image_id" if not video else "dangling_video_id", f"{loc}.{owner_key}", f"{owner_key} {owner} is not in {section}"
            )
            continue
        cid = ann.get("category_id")
        if not _is_int(cid):
            report.error("missing_field" if cid is None else "wrong_type", f"{loc}.category_id", "category_id must be an integer")
        elif cid not in categories:
            report.error("dangling_category_id", f"{loc}.category_id", f"category_id {cid} is not in categories")
        else:
            per_cat[cid] += 1
        h, w = dims[owner]
        if video:
            segs = ann.get("segmentations")
            if not isinstance(segs, list):
                report.error(
                    "missing_field" if segs is None else "wrong_type",
                    f"{loc}.segmentations",
                    "segmentations must be a list (one entry per frame)",
                )
            else:
                if len(segs) != video_frames.get(owner, 0):
                    report.error(
                        "frame_count_mismatch",
                        f"{loc}.segmentations",
                        f"{len(segs)} entries for a video of {video_frames.get(owner, 0)} frames",
                    )
                for f, s in enumerate(segs):
                    if s is not None:
                        _check_segmentation(s, h, w, f"{loc}.segmentations[{f}]", report)
            tracks.add(aid)
        else:
            if "segmentation" not in ann:
                report.error("missing_field", f"{loc}.segmentation", "an annotation needs a segmentation")
            else:
                _check_segmentation(ann["segmentation"], h, w, f"{loc}.segmentation", report)
            if "track_id" in ann:
                if _is_int(ann["track_id"]):
                    tracks.add((ann.get("video_id"), ann["track_id"]))
                else:
                    report.error("wrong_type", f"{loc}.track_id", "track_id must be an integer")
        if "bbox" in ann:
            _check_bbox(ann["bbox"], f"{loc}.bbox", report)
        area = ann.get("area")
        if area is not None and _check_number(area, f"{loc}.area", report, minimum=0):
            _area_bin(area, area_counts)
        if "iscrowd" in ann and ann["iscrowd"] not in (0, 1):
            report.error("wrong_type", f"{loc}.iscrowd", "iscrowd must be 0 or 1")
        per_image[owner] = per_image.get(owner, 0) + 1
        instances += 1
    if report.count:
        return {}
    counts = list(per_image.values()) + [0] * (len(dims) - len(per_image))
    hist: dict[str, int] = {}
    for c in counts:
        key = str(c) if c < 10 else "10+"
        hist[key] = hist.get(key, 0) + 1
    return {
        "format": fmt,
        "images": len(dims) if not video else frames,
        "videos": len(dims) if video else None,
        "instances": instances,
        "categories": [{"id": cid, "name": name, "count": per_cat.get(cid, 0)} for cid, name in categories.items()],
        "instances_per_image": {
            "mean": (sum(counts) / len(counts)) if counts else 0.0,
            "max": max(counts) if counts else 0,
            "histogram": hist,
        },
        "area_histogram": {"edges": AREA_EDGES, "counts": area_counts},
        "images_without_annotations": sum(1 for c in counts if c == 0),
        "licenses": list(licenses.values()),
        "images_without_license": without_license,
        "has_tracks": bool(tracks) or video,
        "tracks": len(tracks),
        "frames": frames,
    }


def _area_bin(area: float, counts: list[int]) -> None:
    k = 0
    while k + 1 < len(AREA_EDGES) and area >= AREA_EDGES[k + 1]:
        k += 1
    counts[k] += 1


def _check_panoptic_annotation(ann, loc, dims, categories, per_cat, per_image, area_counts, report: Report, check_image_files) -> int:
    owner = ann.get("image_id")
    if not _is_int(owner) or owner not in dims:
        report.error("dangling_image_id", f"{loc}.image_id", f"image_id {owner!r} is not in images")
        return 0
    name = ann.get("file_name")
    if not isinstance(name, str):
        report.error("missing_field", f"{loc}.file_name", "a panoptic annotation names its PNG")
    elif check_image_files is not None and not check_image_files(name):
        report.error("image_file_missing", f"{loc}.file_name", f"{name!r} is referenced but was not uploaded")
    segments = ann.get("segments_info")
    if not isinstance(segments, list):
        report.error("wrong_type", f"{loc}.segments_info", "segments_info must be a list")
        return 0
    seen: set = set()
    for j, seg in enumerate(segments):
        sloc = f"{loc}.segments_info[{j}]"
        if not isinstance(seg, dict) or not _is_int(seg.get("id")):
            report.error("wrong_type", sloc, "a segment needs an integer id")
            continue
        if seg["id"] in seen:
            report.error("duplicate_id", f"{sloc}.id", f"segment id {seg['id']} appears twice in this image")
        seen.add(seg["id"])
        cid = seg.get("category_id")
        if cid not in categories:
            report.error("dangling_category_id", f"{sloc}.category_id", f"category_id {cid!r} is not in categories")
        else:
            per_cat[cid] += 1
        if "area" in seg and _check_number(seg["area"], f"{sloc}.area", report, minimum=0):
            _area_bin(seg["area"], area_counts)
        if "bbox" in seg:
            _check_bbox(seg["bbox"], f"{sloc}.bbox", report)
    per_image[owner] = per_image.get(owner, 0) + len(segments)
    return len(segments)
