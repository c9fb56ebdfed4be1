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

A compiled pass comes first (:func:`validate_compiled`, kernels in
``quality/engine/_native/validate.c``): it reads the whole file strictly and checks every
annotation by the same rules; the annotations it does not accept (errors, or what it does
not handle) and the small sections go through the functions below, so every error is
reported by this Python code, whatever the kernels do. A file it cannot read strictly
(invalid JSON, too deep, NaN, ...) or a panoptic file goes through the passes above
(tests/datasets/test_validate_compiled.py compares both paths file by file).

It checks a file and nothing else: no model, no storage (the ingest, ``datasets.ingest``,
runs it on the files it downloaded), so ``python -m datasets validate`` needs no app set up.
"""

from __future__ import annotations

import json
import math
import mmap
import os
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import ijson
import numpy as np

from datasets.limits import Limits, limits
from quality.engine import gate, native
from quality.engine.gate import MaskBounds

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


def _located_failure(path: str, lim: Limits, stop: int | None = None) -> tuple[str, str, str]:
    """Re-read the file tracking array indices, to name where parsing failed or the
    nesting got too deep (only run on the failure path: it is slower). With ``stop``, only
    the bytes before that offset are read: a premature end there is reported as
    ``premature_end`` at the place it falls in."""
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
            reading = _Reading(fh if stop is None else _Prefix(fh, stop))
            for _prefix, event, value in ijson.parse(reading, use_float=True):
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
        # the parser's message is its first line; the lines after it quote the file itself,
        # so only the message is read for the kind of error, and the file's token for NaN
        message = _parser_message(exc)
        if stop is not None and isinstance(exc, ijson.IncompleteJSONError) and "premature EOF" in message:
            return "premature_end", location, ""
        if "invalid bytes in UTF8 string" in message:
            return "invalid_json", location, "not valid JSON: a string is not valid UTF-8 text"
        if _NON_FINITE_WORD.fullmatch(_offending_token(path, reading, exc)):
            return "non_finite_number", location, "NaN and Infinity are not allowed (not JSON numbers)"
        if "floating point) overflow" in message:
            return "non_finite_number", location, "the number is beyond the range of a double (infinite)"
        if "integer overflow" in message:
            return "number_out_of_range", location, "the integer does not fit 64 bits"
        return "invalid_json", location, f"not valid JSON: {text.splitlines()[0] if text else exc!r}"
    except UnicodeDecodeError:
        # bytes that are not UTF-8 in a string, or an escaped surrogate pair (which the
        # parser turns into such bytes)
        if stack and stack[-1][0]:
            stack[-1][1] += 1
        return "invalid_json", where(), "not valid JSON: a string is not valid UTF-8 text"
    return "invalid_json", location, "not valid JSON"


class _Reading:
    """A file as the parser reads it, remembering where in the file the piece it read last
    begins: the parser's error places itself within that piece."""

    def __init__(self, fh: Any) -> None:
        self.fh, self.start, self.piece, self.end = fh, 0, b"", 0

    def read(self, n: int = -1) -> bytes:
        data = self.fh.read(n)
        self.start, self.piece = self.end, data
        self.end += len(data)
        return data


# a word the parser stopped in that is meant as a non-finite number (Python's json.dumps
# writes NaN, Infinity and -Infinity; other writers nan and inf)
_NON_FINITE_WORD = re.compile(rb"[-+]?(nan|inf|infinity)", re.IGNORECASE)
# the characters of a number or a bare word: what the parser stopped inside
_WORD = re.compile(rb"[-+.0-9A-Za-z]*")
# yajl's error text: the message, then the piece read around the error (up to 30 bytes
# either side, end-of-line bytes shown as spaces, the error's byte in column 40), then a
# caret line
_CONTEXT_COLUMN, _CONTEXT_SIDE = 40, 30
_END_OF_LINE_AS_SPACE = bytes.maketrans(b"\n\r", b"  ")


def _parser_error_lines(exc: Exception) -> list[bytes]:
    raw = exc.args[0] if exc.args else b""
    if isinstance(raw, str):
        raw = raw.encode("utf-8", "surrogateescape")
    return raw.split(b"\n") if isinstance(raw, bytes) else []


def _parser_message(exc: Exception) -> str:
    lines = _parser_error_lines(exc)
    return lines[0].decode("utf-8", "replace") if lines else ""


def _error_offset(piece: bytes, context: bytes) -> int | None:
    """Where in ``piece`` (the bytes yajl was given last) its error lies: the offset whose
    rendering, as yajl renders it (yajl_render_error_string), is ``context``."""
    flat = piece.translate(_END_OF_LINE_AS_SPACE)

    def rendered(offset: int) -> bytes:
        pad = _CONTEXT_COLUMN - offset if offset < _CONTEXT_SIDE else _CONTEXT_COLUMN - _CONTEXT_SIDE
        return b" " * pad + flat[max(offset - _CONTEXT_SIDE, 0) : offset + _CONTEXT_SIDE]

    for offset in range(min(_CONTEXT_SIDE, len(flat) + 1)):
        if rendered(offset) == context:
            return offset
    quoted = context[_CONTEXT_COLUMN - _CONTEXT_SIDE :]
    at = flat.find(quoted)
    while at >= 0:
        if rendered(at + _CONTEXT_SIDE) == context:
            return at + _CONTEXT_SIDE
        at = flat.find(quoted, at + 1)
    return None


def _offending_token(path: str, reading: _Reading, exc: Exception) -> bytes:
    """The number or bare word the parser stopped in (the byte it consumed last, and its
    neighbours of the same kind), read from the file itself: the quote in the error text
    ends where the piece the parser was given ends, which may cut the word. Empty when the
    error is not inside such a word, or cannot be placed."""
    lines = _parser_error_lines(exc)
    offset = _error_offset(reading.piece, lines[1]) if len(lines) > 2 else None
    if offset is None or reading.start + offset == 0:
        return b""
    last = reading.start + offset - 1  # the byte the parser consumed last (maybe in the piece before)
    lo = max(last - 64, 0)
    with open(path, "rb") as fh:
        fh.seek(lo)
        window = fh.read(last - lo + 65)
    at = last - lo
    begin = at
    while begin > 0 and _WORD.fullmatch(window[begin - 1 : begin]):
        begin -= 1
    return _WORD.match(window, begin).group() if _WORD.fullmatch(window[at : at + 1]) else b""


class _Prefix:
    """The first ``stop`` bytes of a file, as a file to read."""

    def __init__(self, fh: Any, stop: int) -> None:
        self.fh, self.left = fh, stop

    def read(self, n: int = -1) -> bytes:
        data = self.fh.read(self.left if n < 0 else min(n, self.left))
        self.left -= len(data)
        return data


# a \uXXXX escape of a surrogate, with the backslashes before it (an even run of them is
# escaped backslashes, and then the 'u' is text); a high one (D800-DBFF) is only Unicode
# text when a low one (DC00-DFFF) follows at once, a low one only right after a high one
_SURROGATE = re.compile(rb"(\\+)u([dD][89abAB][0-9a-fA-F]{2})(\\u[dD][c-fC-F][0-9a-fA-F]{2})?|(\\+)u([dD][c-fC-F][0-9a-fA-F]{2})")


def lone_surrogate(data: Any) -> tuple[int, str] | None:
    """(byte offset, escape) of the first escape in the JSON text ``data`` (bytes or a
    mapped file) that is half of a UTF-16 surrogate pair without its other half (a high
    one not followed at once by a low one, or a low one on its own); None when there is
    none. A correctly paired escape (what ``json.dumps`` writes for a character above
    U+FFFF) is one code point; a lone half is no Unicode text (the JSON readers disagree
    on it: one turns it into '?', another refuses it)."""
    for m in _SURROGATE.finditer(data):
        slashes = m.group(1) or m.group(4)
        if len(slashes) % 2 == 0:  # an escaped backslash and then the text "uD..."
            continue
        if m.group(2) is not None and m.group(3) is not None:
            continue
        return m.end(1) - 1 if m.group(1) else m.end(4) - 1, "\\u" + (m.group(2) or m.group(5)).decode("ascii")
    return None


LONE_SURROGATE_MESSAGE = (
    "not valid JSON: the escape {escape} is half of a surrogate pair without its other half (not Unicode text: a "
    "character above U+FFFF is written as a high escape \\ud800-\\udbff followed at once by a low one \\udc00-\\udfff)"
)


def _lone_surrogate_error(path: str, lim: Limits) -> tuple[str, str, str] | None:
    """The error of a file whose first lone surrogate escape comes before any other JSON
    error, located; None when it has none (or another error comes first: the structure
    pass reports that one)."""
    with open(path, "rb") as fh:
        if not os.fstat(fh.fileno()).st_size:
            return None  # (an empty file: the structure pass says so)
        with mmap.mmap(fh.fileno(), 0, access=mmap.ACCESS_READ) as data:
            found = lone_surrogate(data)
    if found is None:
        return None
    code, location, _message = _located_failure(path, lim, stop=found[0])
    if code != "premature_end":
        return None
    return "invalid_json", location, LONE_SURROGATE_MESSAGE.format(escape=found[1])


def _structure(path: str, lim: Limits, report: Report) -> dict[str, str] | None:
    """Top-level sections and their JSON types; None (with an error) when the file is not
    a well-formed JSON object within the depth limit."""
    if (lone := _lone_surrogate_error(path, lim)) is not None:
        report.error(*lone)
        return None
    types: dict[str, str] = {}
    depth = 0
    max_depth = lim.json_max_depth
    first = True
    try:
        with open(path, "rb") as fh:
            # numbers read as the later passes read them (use_float): one that overflows a
            # double or an int64 fails here, located, not in the middle of a section
            for prefix, event, _value in ijson.parse(fh, use_float=True):
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
    return _format_of(_first(path, "annotations.item"), lambda: _first(path, "images.item"))


def _format_of(ann: Any, first_image: Callable[[], Any]) -> str:
    """The format of a file without videos, from its first annotation and first image."""
    if isinstance(ann, dict) and "segments_info" in ann:
        return "coco_panoptic"
    img = first_image()
    if (isinstance(ann, dict) and ("track_id" in ann or "video_id" in ann)) or (isinstance(img, dict) and "video_id" in img):
        return "coco_video"
    return "coco_instances"


REQUIRED = {
    "coco_instances": ("images", "annotations", "categories"),
    "coco_video": ("images", "annotations", "categories"),
    "youtube_vis": ("videos", "annotations", "categories"),
    "coco_panoptic": ("images", "annotations", "categories"),
}


def mask_bounds(lim: Limits) -> MaskBounds:
    """The gate's bounds for a seller's files: the configured image limits, and polygons
    inside their image (one pixel of slack: polygons on the border are commonly drawn at
    x = width)."""
    return MaskBounds(max_side=lim.image_max_side, max_pixels=lim.image_max_pixels, polygon_margin=1.0)


def _check_segmentation(segm: Any, h: int, w: int, loc: str, report: Report, bounds: MaskBounds) -> None:
    issue = gate.segmentation_issue(segm, h, w, loc, bounds)
    if issue is not None:
        report.error(str(issue.code), issue.location, issue.message)


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
    image_sizes: Mapping[str, tuple[int, int]] | None = None,
    lim: Limits | None = None,
) -> ValidationResult:
    """Validate one annotation file and compute its statistics.

    ``check_image_files(file_name) -> bool`` says whether an image named by the file was
    uploaded (None: the JSON alone is checked, as ``python -m datasets validate`` does).
    ``image_sizes`` maps uploaded image names to the (height, width) their file's header
    declares; an image (or video frame) declared with another size is
    ``image_size_mismatch``. Every segmentation passes the engine's mask gate
    (:mod:`quality.engine.gate`), so the rules and the messages are the engine's.
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
    elif (accepted := validate_compiled(path, lim, check_image_files, image_sizes)) is not None:
        return accepted
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
                files = _ImageFiles(check_image_files, image_sizes)
                stats = _validate_sections(path, fmt, report, result, files, mask_bounds(lim))
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


@dataclass
class _ImageFiles:
    """The uploaded image files, as far as the caller knows them."""

    present: Callable[[str], bool] | None
    sizes: Mapping[str, tuple[int, int]] | None
    _by_base: dict[str, tuple[int, int]] | None = None

    def size(self, name: str) -> tuple[int, int] | None:
        """(height, width) of the file ``name`` (or of the one with its base name), if known."""
        if not self.sizes:
            return None
        if name in self.sizes:
            return self.sizes[name]
        if self._by_base is None:
            self._by_base = {n.rsplit("/", 1)[-1]: hw for n, hw in self.sizes.items()}
        return self._by_base.get(name.rsplit("/", 1)[-1])


@dataclass
class _Sections:
    """What the passes keep: ids, sizes, names and counters, never the polygons."""

    fmt: str
    bounds: MaskBounds
    categories: dict[int, str] = field(default_factory=dict)
    licenses: dict[int, dict] = field(default_factory=dict)
    dims: dict[int, tuple[int, int]] = field(default_factory=dict)  # (0, 0): the image's size is bad
    video_frames: dict[int, int] = field(default_factory=dict)
    without_license: int = 0
    frames: int = 0
    ann_ids: set[int] = field(default_factory=set)
    per_image: dict[int, int] = field(default_factory=dict)
    per_cat: dict[int, int] = field(default_factory=dict)
    area_counts: list[int] = field(default_factory=lambda: [0] * len(AREA_EDGES))
    instances: int = 0
    tracks: set = field(default_factory=set)

    @property
    def video(self) -> bool:
        return self.fmt == "youtube_vis"

    @property
    def section(self) -> str:
        return "videos" if self.video else "images"


def _validate_sections(path: str, fmt: str, report: Report, result: ValidationResult, files: _ImageFiles, bounds: MaskBounds) -> dict:
    s = _Sections(fmt=fmt, bounds=bounds)
    _read_categories(_items(path, "categories.item"), s, report, result)
    _read_licenses(_items(path, "licenses.item"), s, report)
    if not _read_images(_items(path, f"{s.section}.item"), s, report, result, files):
        return {}
    _read_annotations(path, s, report, files)
    return {} if report.count else _statistics(s)


def _read_categories(items: Iterable[Any], s: _Sections, report: Report, result: ValidationResult) -> None:
    for i, cat in enumerate(items):
        loc = f"categories[{i}]"
        if not isinstance(cat, dict):
            report.error("wrong_type", loc, "a category must be an object")
            continue
        cid = cat.get("id")
        if not _is_int(cid):
            report.error("missing_field" if cid is None else "wrong_type", f"{loc}.id", "a category needs an integer id")
            continue
        if cid in s.categories:
            report.error("duplicate_id", f"{loc}.id", f"category id {cid} appears twice")
        if not isinstance(cat.get("name"), str):
            report.error("missing_field" if "name" not in cat else "wrong_type", f"{loc}.name", "a category needs a name")
        s.categories[cid] = str(cat.get("name", ""))
        result.categories.append({"id": cid, "name": str(cat.get("name", "")), **({"isthing": cat["isthing"]} if "isthing" in cat else {})})
    s.per_cat = dict.fromkeys(s.categories, 0)


def _read_licenses(items: Iterable[Any], s: _Sections, report: Report) -> None:
    for i, lic in enumerate(items):
        if not isinstance(lic, dict) or not _is_int(lic.get("id")):
            report.error("wrong_type", f"licenses[{i}]", "a license needs an integer id")
            continue
        s.licenses[lic["id"]] = {"id": lic["id"], "name": str(lic.get("name", "")), "url": str(lic.get("url", "")), "images": 0}


def _read_images(items: Iterable[Any], s: _Sections, report: Report, result: ValidationResult, files: _ImageFiles) -> bool:
    """The images (or videos) section; False when the file has too many errors to go on."""
    section = s.section
    for i, img in enumerate(items):
        loc = f"{section}[{i}]"
        if not isinstance(img, dict):
            report.error("wrong_type", loc, "must be an object")
            continue
        iid = img.get("id")
        if not _is_int(iid):
            report.error("missing_field" if iid is None else "wrong_type", f"{loc}.id", "needs an integer id")
            continue
        if iid in s.dims:
            report.error("duplicate_id", f"{loc}.id", f"id {iid} appears twice")
            continue
        h, w = _image_dims(img, loc, s.bounds, report)
        s.dims[iid] = (h, w)
        file_names = _video_file_names(img, loc, s, report) if s.video else _image_file_name(img, loc, s, report, result, h, w)
        if s.fmt == "coco_video":
            _check_frame(img, loc, report)
        _check_files(file_names, loc, s, report, files, h, w)
        _count_license(img, loc, s, report)
        if report.full:
            return False
    result.image_ids = list(s.dims)
    return True


def _image_dims(img: dict, loc: str, bounds: MaskBounds, report: Report) -> tuple[int, int]:
    """(height, width), or (0, 0) after reporting why they are not a size the engine takes."""
    h, w = img.get("height"), img.get("width")
    ok = True
    for key, v in (("height", h), ("width", w)):
        if not (_is_int(v) and v > 0):
            report.error("missing_field" if v is None else "wrong_type", f"{loc}.{key}", f"{key} must be a positive integer")
            ok = False
    if ok:
        issue = gate.dims_issue(h, w, loc, bounds)
        if issue is not None:
            report.error(str(issue.code), issue.location, issue.message)
            ok = False
    return (h, w) if ok else (0, 0)


def _video_file_names(img: dict, loc: str, s: _Sections, report: Report) -> list[str]:
    names = img.get("file_names")
    if not (isinstance(names, list) and names and all(isinstance(n, str) for n in names)):
        report.error("missing_field" if names is None else "wrong_type", f"{loc}.file_names", "file_names must be a non-empty list of strings")
        names = []
    s.video_frames[img["id"]] = len(names)
    s.frames += len(names)
    return names


# COCO with tracks: the keys a frame's index may have (as quality.engine.temporal reads them)
FRAME_KEYS = ("frame_id", "frame_index", "frame")


def _check_frame(img: dict, loc: str, report: Report) -> None:
    """A COCO frame names its video and its place in it (the tracks are read in that order)."""
    if not _is_int(img.get("video_id")):
        report.error("missing_field" if img.get("video_id") is None else "wrong_type", f"{loc}.video_id", "a video frame needs an integer video_id")
    key = next((k for k in FRAME_KEYS if k in img), None)
    if key is None:
        report.error("missing_field", f"{loc}.frame_index", "a video frame needs its index in the video (frame_index, frame_id or frame)")
    elif not _is_int(img[key]):
        report.error("wrong_type", f"{loc}.{key}", "a frame index must be an integer")


def _image_file_name(img: dict, loc: str, s: _Sections, report: Report, result: ValidationResult, h: int, w: int) -> list[str]:
    name = img.get("file_name")
    if not isinstance(name, str) or not name:
        report.error("missing_field" if name is None else "wrong_type", f"{loc}.file_name", "file_name must be a string")
        names = []
    else:
        names = [name]
    s.frames += 1
    result.images.append({"id": img["id"], "height": h, "width": w, "file_name": name if isinstance(name, str) else ""})
    return names


def unsafe_file_name(name: str) -> str | None:
    """Why a file name read from a seller's JSON cannot name a file of the version (an
    absolute path, a '..' part, a backslash, a drive letter or a NUL), else None. Such a
    name is refused at validation; the steps never join a name onto a folder anyway, they
    look it up in the version's own file index."""
    if "\x00" in name:
        return "a file name may not contain NUL"
    if "\\" in name:
        return "a file name uses '/' between folders, never a backslash"
    if name.startswith("/") or (len(name) > 1 and name[1] == ":"):
        return "a file name is relative to the version's files, never an absolute path"
    if ".." in name.split("/"):
        return "a file name may not leave the version's files ('..')"
    return None


def _check_files(names: list[str], loc: str, s: _Sections, report: Report, files: _ImageFiles, h: int, w: int) -> None:
    """Every file an image (or video) names was uploaded, and its header has the declared size."""
    for k, name in enumerate(names):
        at = f"{loc}.file_names[{k}]" if s.video else f"{loc}.file_name"
        if (why := unsafe_file_name(name)) is not None:
            report.error("unsafe_path", at, f"{name!r}: {why}")
            continue
        if files.present is not None and not files.present(name):
            report.error("image_file_missing", at, f"{name!r} is referenced but was not uploaded")
            continue
        actual = files.size(name)
        if actual is not None and h and actual != (h, w):
            report.error(
                "image_size_mismatch",
                at if s.video else loc,
                f"the file {name!r} is {actual[0]}x{actual[1]} (height x width); it is declared {h}x{w}",
            )


def _count_license(img: dict, loc: str, s: _Sections, report: Report) -> None:
    lic = img.get("license")
    if lic is None:
        s.without_license += 1
    elif not isinstance(lic, (list, dict)) and lic in s.licenses:
        s.licenses[lic]["images"] += 1
    elif s.licenses:
        report.error("dangling_license_id", f"{loc}.license", f"license id {lic!r} is not in licenses")
    else:  # no licenses section at all: the id means nothing; counted as without license
        s.without_license += 1
        report.warn("unknown_license_id", f"{loc}.license", "the file has no licenses section")


def _read_annotations(path: str, s: _Sections, report: Report, files: _ImageFiles) -> None:
    for i, ann in enumerate(_items(path, "annotations.item")):
        if report.full:
            break
        _check_item(ann, f"annotations[{i}]", s, report, files)


def _check_item(ann: Any, loc: str, s: _Sections, report: Report, files: _ImageFiles) -> None:
    if not isinstance(ann, dict):
        report.error("wrong_type", loc, "an annotation must be an object")
    elif s.fmt == "coco_panoptic":
        s.instances += _check_panoptic_annotation(ann, loc, s, report, files)
    else:
        _check_annotation(ann, loc, s, report)


def _check_annotation(ann: dict, loc: str, s: _Sections, report: Report) -> None:
    aid = ann.get("id")
    if not _is_int(aid):
        report.error("missing_field" if aid is None else "wrong_type", f"{loc}.id", "an annotation needs an integer id")
    elif aid in s.ann_ids:
        report.error("duplicate_id", f"{loc}.id", f"annotation id {aid} appears twice")
    else:
        s.ann_ids.add(aid)
    owner_key = "video_id" if s.video else "image_id"
    owner = ann.get(owner_key)
    if not _is_int(owner):
        report.error("missing_field" if owner is None else "wrong_type", f"{loc}.{owner_key}", f"{owner_key} must be an integer")
        return
    if owner not in s.dims:
        report.error("dangling_video_id" if s.video else "dangling_image_id", f"{loc}.{owner_key}", f"{owner_key} {owner} is not in {s.section}")
        return
    cid = ann.get("category_id")
    if not _is_int(cid):
        report.error("missing_field" if cid is None else "wrong_type", f"{loc}.category_id", "category_id must be an integer")
    elif cid not in s.categories:
        report.error("dangling_category_id", f"{loc}.category_id", f"category_id {cid} is not in categories")
    else:
        s.per_cat[cid] += 1
    h, w = s.dims[owner]
    if s.video:
        _check_video_masks(ann, loc, s, report, owner, h, w)
        if _is_int(aid):
            s.tracks.add(aid)
    else:
        if "segmentation" not in ann:
            report.error("missing_field", f"{loc}.segmentation", "an annotation needs a segmentation")
        elif h:  # an image without a valid size has its own error; its masks cannot be checked
            _check_segmentation(ann["segmentation"], h, w, f"{loc}.segmentation", report, s.bounds)
        if "track_id" not in ann and s.fmt == "coco_video":
            report.error("missing_field", f"{loc}.track_id", "an annotation of a video frame needs a track_id")
        if "track_id" in ann:
            if _is_int(ann["track_id"]):
                video = ann.get("video_id")  # any JSON value: a list or an object counts by its text
                s.tracks.add((json.dumps(video) if isinstance(video, (list, dict)) else video, ann["track_id"]))
            else:
                report.error("wrong_type", f"{loc}.track_id", "track_id must be an integer")
    if "bbox" in ann:
        _check_bbox(ann["bbox"], f"{loc}.bbox", report)
    area = ann.get("area")
    if area is not None and _check_number(area, f"{loc}.area", report, minimum=0):
        _area_bin(area, s.area_counts)
    if "iscrowd" in ann and ann["iscrowd"] not in (0, 1):
        report.error("wrong_type", f"{loc}.iscrowd", "iscrowd must be 0 or 1")
    s.per_image[owner] = s.per_image.get(owner, 0) + 1
    s.instances += 1


def _check_video_masks(ann: dict, loc: str, s: _Sections, report: Report, owner: int, h: int, w: int) -> None:
    segs = ann.get("segmentations")
    if not isinstance(segs, list):
        report.error("missing_field" if segs is None else "wrong_type", f"{loc}.segmentations", "segmentations must be a list (one entry per frame)")
        return
    if len(segs) != s.video_frames.get(owner, 0):
        report.error("frame_count_mismatch", f"{loc}.segmentations", f"{len(segs)} entries for a video of {s.video_frames.get(owner, 0)} frames")
    if not h:
        return
    for f, seg in enumerate(segs):
        if seg is not None:
            _check_segmentation(seg, h, w, f"{loc}.segmentations[{f}]", report, s.bounds)


def _statistics(s: _Sections) -> dict:
    counts = list(s.per_image.values()) + [0] * (len(s.dims) - len(s.per_image))
    hist: dict[str, int] = {}
    for c in counts:
        key = str(c) if c < 10 else "10+"
        hist[key] = hist.get(key, 0) + 1
    return {
        "format": s.fmt,
        "images": len(s.dims) if not s.video else s.frames,
        "videos": len(s.dims) if s.video else None,
        "instances": s.instances,
        "categories": [{"id": cid, "name": name, "count": s.per_cat.get(cid, 0)} for cid, name in s.categories.items()],
        "instances_per_image": {
            "mean": (sum(counts) / len(counts)) if counts else 0.0,
            "max": max(counts) if counts else 0,
            "histogram": hist,
        },
        "area_histogram": {"edges": AREA_EDGES, "counts": s.area_counts},
        "images_without_annotations": sum(1 for c in counts if c == 0),
        "licenses": list(s.licenses.values()),
        "images_without_license": s.without_license,
        "has_tracks": bool(s.tracks) or s.video,
        "tracks": len(s.tracks),
        "frames": s.frames,
    }


def _area_bin(area: float, counts: list[int]) -> None:
    k = 0
    while k + 1 < len(AREA_EDGES) and area >= AREA_EDGES[k + 1]:
        k += 1
    counts[k] += 1


def _check_panoptic_annotation(ann: dict, loc: str, s: _Sections, report: Report, files: _ImageFiles) -> int:
    owner = ann.get("image_id")
    if not _is_int(owner) or owner not in s.dims:
        report.error("dangling_image_id", f"{loc}.image_id", f"image_id {owner!r} is not in images")
        return 0
    name = ann.get("file_name")
    if not isinstance(name, str):
        report.error("missing_field", f"{loc}.file_name", "a panoptic annotation names its PNG")
    elif (why := unsafe_file_name(name)) is not None:
        report.error("unsafe_path", f"{loc}.file_name", f"{name!r}: {why}")
    elif files.present is not None and not files.present(name):
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
        if isinstance(cid, (list, dict)) or cid not in s.categories:
            report.error("dangling_category_id", f"{sloc}.category_id", f"category_id {cid!r} is not in categories")
        else:
            s.per_cat[cid] += 1
        if "area" in seg and _check_number(seg["area"], f"{sloc}.area", report, minimum=0):
            _area_bin(seg["area"], s.area_counts)
        if "bbox" in seg:
            _check_bbox(seg["bbox"], f"{sloc}.bbox", report)
    s.per_image[owner] = s.per_image.get(owner, 0) + len(segments)
    return len(segments)


# --------------------------------------------------------------------------------------
# the compiled pass: accept or decline

_MODES = {"coco_instances": 0, "coco_video": 1, "youtube_vis": 2}


def validate_compiled(
    path: str, lim: Limits, check_image_files: Callable[[str], bool] | None, image_sizes: Mapping[str, tuple[int, int]] | None
) -> ValidationResult | None:
    """The result of a file through the compiled kernels, or None: the streaming Python
    path then validates it. The kernels read the whole file strictly (``json_outline``:
    JSON syntax, depth, numbers, UTF-8; anything else declines the file, so that the
    Python path locates the error) and then every annotation (``check_annotations``),
    accepting each that the Python checks would pass and marking the others (errors, and
    what they do not handle: duplicate keys, integers of more than 18 digits, non-ASCII
    keys, ...); the marked ones, and the small sections (categories, licenses, images or
    videos), go through the Python checks themselves. So the report, the statistics and
    the result are the Python path's. Panoptic files are declined."""
    kernels = native.kernels()
    if kernels is None or os.path.getsize(path) == 0:
        return None
    with open(path, "rb") as fh, mmap.mmap(fh.fileno(), 0, access=mmap.ACCESS_READ) as data:
        return _accept(kernels, data, path, lim, _ImageFiles(check_image_files, image_sizes))


def _accept(kernels: Any, data: mmap.mmap, path: str, lim: Limits, files: _ImageFiles) -> ValidationResult | None:
    # the annotations (nearly all of the file) are read strictly once, by check_annotations
    outline = kernels.json_outline(data, lim.json_max_depth, "annotations")
    if outline is None:
        return None
    sections = {key: (kind, start, stop, first_start, first_stop) for key, kind, start, stop, first_start, first_stop in outline}

    def first(name: str) -> Any:
        if name not in sections or sections[name][0] != "array" or sections[name][3] < 0:
            return None
        return _loads(data[sections[name][3] : sections[name][4]])

    fmt = "youtube_vis" if "videos" in sections else _format_of(first("annotations"), lambda: first("images"))
    if fmt not in _MODES or any(sections.get(name, ("",))[0] != "array" for name in REQUIRED[fmt]):
        return None
    if "licenses" in sections and sections["licenses"][0] != "array":
        return None

    def items(name: str) -> list:
        return _loads(data[sections[name][1] : sections[name][2]]) if name in sections else []

    report = Report(lim.max_errors)
    bounds = mask_bounds(lim)
    result = ValidationResult(path=path, format=fmt, report={}, statistics={})
    s = _Sections(fmt=fmt, bounds=bounds)
    _read_categories(items("categories"), s, report, result)
    _read_licenses(items("licenses"), s, report)
    stats: dict | None = {}
    if _read_images(items(s.section), s, report, result, files):
        stats = _compiled_annotations(kernels, data, sections["annotations"], s, report, files, lim.json_max_depth)
        if stats is None:
            return None
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


def _loads(text: bytes) -> Any:
    # UTF-8 (json_outline checked it): json.loads would guess the encoding of bytes
    return json.loads(text.decode("utf-8"))


def _compiled_annotations(
    kernels: Any, data: mmap.mmap, section: tuple, s: _Sections, report: Report, files: _ImageFiles, max_depth: int
) -> dict | None:
    """The annotations' checks and statistics, or None when the kernel declines the array
    (not strict JSON). The kernel accepts each annotation the Python checks would pass (but
    for a duplicate id) and marks the others; when it marks none and the ids are unique, the
    statistics come from its arrays; else each annotation is taken in order, the marked
    ones through the Python checks (so the report is theirs), the others counted from the
    arrays."""
    ids = np.fromiter(s.dims, dtype=np.int64, count=len(s.dims))
    order = np.argsort(ids, kind="stable")
    sorted_ids = np.ascontiguousarray(ids[order])
    hw = np.array(list(s.dims.values()), dtype=np.int64).reshape(-1, 2)[order]
    frames = np.fromiter((s.video_frames.get(i, 0) for i in s.dims), dtype=np.int64, count=len(s.dims))[order]
    cat_ids = np.sort(np.fromiter(s.categories, dtype=np.int64, count=len(s.categories)))
    r = kernels.check_annotations(
        data, section[1], section[2], _MODES[s.fmt], max_depth, float(s.bounds.polygon_margin),
        sorted_ids, np.ascontiguousarray(hw[:, 0]), np.ascontiguousarray(hw[:, 1]), np.ascontiguousarray(frames), cat_ids, True,
    )  # fmt: skip
    if r is None:
        return None
    n = r["n"]
    ann_ids = np.frombuffer(r["id"], dtype=np.int64)
    marked = np.zeros(n, dtype=bool)
    marked[np.frombuffer(r["bad"], dtype=np.int64)] = True
    starts = np.frombuffer(r["str_start"], dtype=np.int64)
    if len(starts):
        v = gate.string_verdicts(
            data, starts, np.frombuffer(r["str_stop"], dtype=np.int64),
            np.frombuffer(r["str_h"], dtype=np.int64), np.frombuffer(r["str_w"], dtype=np.int64), escaped=True,
        )  # fmt: skip
        marked[np.frombuffer(r["str_ann"], dtype=np.int64)[v.status != gate.STRING_OK]] = True
    owner = np.frombuffer(r["owner"], dtype=np.int64)
    category = np.frombuffer(r["category"], dtype=np.int64)
    s.area_counts = list(r["area_bins"])  # of the annotations the kernel accepted
    ordered = np.sort(ann_ids[~marked])
    if marked.any() or (ordered[1:] == ordered[:-1]).any():
        _annotations_in_order(r, data, marked, sorted_ids, cat_ids, s, report, files)
        return {} if report.count else _statistics(s)
    if n:
        # annotations per image, in the order of each image's first annotation (as the
        # Python path's dict fills)
        per_owner = np.bincount(owner, minlength=len(sorted_ids))
        by_owner = np.argsort(owner, kind="stable")
        heads = np.r_[True, owner[by_owner][1:] != owner[by_owner][:-1]]
        first_at = by_owner[heads]  # each annotated image's first annotation
        seen = owner[np.sort(first_at)]
        s.per_image = dict(zip(sorted_ids[seen].tolist(), per_owner[seen].tolist(), strict=True))
        per_cat = np.bincount(category, minlength=len(cat_ids))
        for cid, count in zip(cat_ids.tolist(), per_cat.tolist(), strict=True):
            s.per_cat[cid] = count
    s.instances = n
    if s.video:
        s.tracks = set(ann_ids.tolist())
    else:
        has = np.frombuffer(r["has_track"], dtype=np.uint8).astype(bool)
        if has.any():
            keys = np.stack(
                [np.frombuffer(r["video_id_kind"], dtype=np.uint8)[has].astype(np.int64),
                 np.frombuffer(r["video_id"], dtype=np.int64)[has], np.frombuffer(r["track_id"], dtype=np.int64)[has]],
                axis=1,
            )  # fmt: skip
            s.tracks = {(vid if kind else None, track) for kind, vid, track in np.unique(keys, axis=0).tolist()}
    return _statistics(s)


def _annotations_in_order(
    r: dict, data: mmap.mmap, marked: np.ndarray, sorted_ids: np.ndarray, cat_ids: np.ndarray, s: _Sections, report: Report, files: _ImageFiles
) -> None:
    """_read_annotations over the kernel's arrays: a marked annotation is parsed and checked
    by the Python checks; one the kernel accepted can only be a duplicate id, and is
    counted as _check_annotation counts it. The arrays become Python values a chunk at a
    time."""
    arrays = {key: np.frombuffer(r[key], dtype=np.int64) for key in ("start", "stop", "id", "owner", "category", "video_id", "track_id")}
    arrays["has_track"] = np.frombuffer(r["has_track"], dtype=np.uint8)
    arrays["video_id_kind"] = np.frombuffer(r["video_id_kind"], dtype=np.uint8)
    # marked rows have owner and category -1: any valid index stands in (they are not read)
    arrays["owner"] = sorted_ids[np.maximum(arrays["owner"], 0)] if len(sorted_ids) else np.zeros_like(arrays["owner"])
    arrays["category"] = cat_ids[np.maximum(arrays["category"], 0)] if len(cat_ids) else np.zeros_like(arrays["category"])
    n = len(marked)
    for lo in range(0, n, 65_536):
        hi = min(n, lo + 65_536)
        c = {key: a[lo:hi].tolist() for key, a in arrays.items()}
        for k, is_marked in enumerate(marked[lo:hi].tolist()):
            if report.full:
                return
            loc = f"annotations[{lo + k}]"
            if is_marked:
                _check_item(_loads(data[c["start"][k] : c["stop"][k]]), loc, s, report, files)
                continue
            aid = c["id"][k]
            if aid in s.ann_ids:
                report.error("duplicate_id", f"{loc}.id", f"annotation id {aid} appears twice")
            else:
                s.ann_ids.add(aid)
            s.per_cat[c["category"][k]] += 1
            if s.video:
                s.tracks.add(aid)
            elif c["has_track"][k]:
                s.tracks.add((c["video_id"][k] if c["video_id_kind"][k] else None, c["track_id"][k]))
            owner = c["owner"][k]
            s.per_image[owner] = s.per_image.get(owner, 0) + 1
            s.instances += 1
