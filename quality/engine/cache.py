"""The reference side of an evaluation, parsed and rasterized once.

:class:`ReferenceCache` holds a COCO reference (images, categories, annotations) as flat
arrays plus every annotation's mask as compressed RLE (pycocotools' string form, all
strings in one blob with offsets), its box and area. It is what :func:`evaluate` uses for
``gt`` internally; built from JSON it is the "cold" path, loaded from a file the "warm"
one.

File format: one uncompressed ``.npz`` (numpy's zip of ``.npy`` arrays; ``np.load`` with
``allow_pickle=False``), keys as the dataclass fields, plus ``format`` (int). Loading is a
few memory copies; nothing is re-parsed or re-rasterized.

A JSON path is read by the compiled reader (``_native/coco_gt.c``) when the kernels are
built: flat arrays, no Python object per annotation, masks rasterized from the flat
geometry (at once, or on demand when built without masks). It declines anything unusual;
the orjson path below then reads the file and raises the precise error.

Streaming ingest: ``build_reference_cache(images=..., categories=..., annotations=...)``
takes the images and categories as sequences and the annotations as any iterable (e.g.
``ijson.items(f, "annotations.item")``); annotations are processed in chunks of
``chunk_size`` so memory holds the compact RLE strings, not the parsed polygons.
"""

from __future__ import annotations

import itertools
import os
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from quality.engine import gate, masks, native
from quality.engine.errors import EngineInputError
from quality.engine.gate import CheckedRLE, MaskStrings

CACHE_FORMAT = 1


def _int_ids(values: list, what: str, where: str) -> np.ndarray:
    arr = np.asarray(values) if values else np.zeros(0, dtype=np.int64)
    if arr.dtype.kind not in "iu" or arr.ndim != 1:
        for i, v in enumerate(values):
            if not isinstance(v, int) or isinstance(v, bool):
                raise EngineInputError("bad_id", f"{what} {v!r} is not an integer", location=f"{where}[{i}]")
        raise EngineInputError("bad_id", f"{what} values are not integers", location=where)
    return arr.astype(np.int64)


def _numbers(values: list, what: str, where: str, shape_tail: tuple = ()) -> np.ndarray:
    try:
        arr = np.asarray(values, dtype=np.float64)
        ok = arr.shape[1:] == shape_tail
    except (TypeError, ValueError):
        ok = False
    if not ok:
        for i, v in enumerate(values):
            try:
                a = np.asarray(v, dtype=np.float64)
                if a.shape != shape_tail:
                    raise ValueError
            except (TypeError, ValueError):
                raise EngineInputError("bad_number", f"{what} {v!r} is malformed", location=f"{where}[{i}]") from None
        raise EngineInputError("bad_number", f"{what} malformed", location=where)
    if not np.isfinite(arr).all():
        bad = int(np.flatnonzero(~np.isfinite(arr.reshape(len(arr), -1)).all(axis=1))[0])
        raise EngineInputError("non_finite", f"{what} is not finite", location=f"{where}[{bad}]")
    return arr


def _field(items: Sequence[Mapping], key: str, where: str, offset: int = 0) -> list:
    try:
        return [a[key] for a in items]
    except (KeyError, TypeError):
        for i, a in enumerate(items):
            if not isinstance(a, Mapping):
                raise EngineInputError("malformed", "expected an object", location=f"{where}[{offset + i}]") from None
            if key not in a:
                raise EngineInputError("missing_field", f"missing '{key}'", location=f"{where}[{offset + i}]") from None
        raise


def dense_index(values: np.ndarray, keys: np.ndarray) -> np.ndarray | None:
    """Position in ``keys`` of each of ``values`` (-1 when absent) through a table indexed by
    id, when the keys are unique non-negative integers no larger than a few times their
    number (image and category ids mostly are): a gather instead of a sort and a binary
    search per value. None otherwise (the caller searches)."""
    n = len(keys)
    if n == 0 or keys.dtype.kind not in "iu" or values.dtype.kind not in "iu" or values.ndim != 1:
        return None
    lo, hi = int(keys.min()), int(keys.max())
    if lo < 0 or hi > 8 * n + 4096:
        return None
    table = np.full(hi + 1, -1, dtype=np.int64)
    at = np.arange(n, dtype=np.int64)
    table[keys] = at
    if not np.array_equal(table[keys], at):
        return None  # a repeated key: the search gives its first position
    inside = (values >= 0) & (values <= hi)
    if inside.all():
        return table[values]
    out = np.full(len(values), -1, dtype=np.int64)
    out[inside] = table[values[inside]]
    return out


def unique_check(ids: np.ndarray, what: str, where: str) -> None:
    if len(ids) > 1:
        s = np.sort(ids)
        dup = s[1:][s[1:] == s[:-1]]
        if dup.size:
            i = int(np.flatnonzero(ids == dup[0])[1])
            raise EngineInputError("duplicate_id", f"{what} {int(dup[0])} appears twice", location=f"{where}[{i}]")


@dataclass(kw_only=True)
class ReferenceCache:
    """A parsed (and, with masks, rasterized) COCO reference. Arrays are in file order."""

    img_ids: np.ndarray  # int64 [I]
    img_heights: np.ndarray  # int64 [I]
    img_widths: np.ndarray  # int64 [I]
    cat_ids: np.ndarray  # int64 [K], file order
    categories_json: bytes  # the categories list as JSON (names etc.)
    ann_ids: np.ndarray  # int64 [N]
    ann_image_ids: np.ndarray  # int64 [N]
    ann_category_ids: np.ndarray  # int64 [N]
    ann_area: np.ndarray  # float64 [N], the 'area' field as given
    ann_iscrowd: np.ndarray  # bool [N]
    ann_ignore: np.ndarray  # bool [N], the 'ignore' field (pycocotools overwrites it with iscrowd)
    ann_bbox: np.ndarray  # float64 [N, 4], the 'bbox' field (NaN when absent)
    rle_blob: bytes | None = None  # compressed RLE strings, concatenated
    rle_offsets: np.ndarray | None = None  # int64 [N+1]
    rle_box: np.ndarray | None = None  # float64 [N, 4], box of the mask (rleToBbox)
    rle_area: np.ndarray | None = None  # int64 [N], pixels of the mask
    # not saved: the raw segmentations when built without masks (rasterized on demand)
    _segmentations: list | None = None
    # not saved: the same as flat arrays, when the compiled reader read the file
    _geometry: _Geometry | None = None
    # not saved: rle_blob's strings once they passed the gate (built here, or checked when a
    # cache from a file or from a caller is first used)
    _strings: MaskStrings | None = None

    @property
    def has_masks(self) -> bool:
        return self.rle_blob is not None

    def image_index(self, image_ids: np.ndarray) -> np.ndarray:
        """Positions in ``img_ids`` of ``image_ids`` (-1 when unknown)."""
        fast = dense_index(np.asarray(image_ids), self.img_ids)
        if fast is not None:
            return fast
        order = np.argsort(self.img_ids, kind="stable")
        s = self.img_ids[order]
        pos = np.searchsorted(s, image_ids)
        pos_c = np.minimum(pos, max(len(s) - 1, 0))
        found = (len(s) > 0) & (s[pos_c] == image_ids) if len(s) else np.zeros(len(image_ids), bool)
        return np.where(found, order[pos_c] if len(s) else -1, -1)

    def rles(self, index: Sequence[int] | np.ndarray) -> list[CheckedRLE]:
        """The masks of the annotations at ``index``."""
        self.ensure_masks()
        return self._strings.rles(index)

    def strings(self, kernels=None) -> MaskStrings:
        """Every annotation's mask as a checked compressed string in ``rle_blob`` (no copy)."""
        self.ensure_masks()
        return self._strings

    def ensure_masks(self) -> None:
        """Rasterize the masks if they are not yet, and make sure every mask passed the gate
        (a cache read from a file, or made by a caller, is checked on first use)."""
        if self._strings is not None:
            return
        if self.rle_blob is not None:
            self._check_strings()
            return
        if self._geometry is not None:
            kernels = native.kernels()
            if kernels is not None and not (self._geometry.kind == 3).any():
                self._encode_geometry(kernels)
                return
            # switched off since the file was read, or segmentations missing: the Python
            # path, on the same segmentations (it raises the error)
            self._segmentations = self._geometry.segmentations()
            self._geometry = None
        if self._segmentations is None:
            raise EngineInputError("no_masks", "this reference was built without segmentations")
        img_pos = self.image_index(self.ann_image_ids)
        rles = masks.to_rles(
            self._segmentations,
            self.img_heights[img_pos].tolist(),
            self.img_widths[img_pos].tolist(),
            locations=_LazyLoc("annotations", ".segmentation"),
            image_keys=img_pos.tolist(),
        )
        self._set_rles(rles)
        self._segmentations = None

    def _encode_geometry(self, kernels) -> None:
        """Rasterize the compiled reader's geometry (the strings of masks.to_rles)."""
        g = self._geometry
        img_pos = self.image_index(self.ann_image_ids)
        hs = self.img_heights[img_pos]
        ws = self.img_widths[img_pos]
        n = len(g.kind)
        # The kernel releases the GIL: past a few thousand masks the annotations are cut into
        # contiguous runs rasterized on every core at once and joined in order, so the
        # strings are the same bytes as one call's whatever the number of cores.
        parts = min(os.cpu_count() or 1, 8) if n >= PARALLEL_MASKS else 1
        cuts = [n * k // parts for k in range(parts + 1)]

        # each string's area and box come from the runs it was written from; only the
        # strings copied from the file (area -1) go through the gate's check
        area = np.empty(n, dtype=np.int64)
        box = np.empty((n, 4), dtype=np.float64)

        def encode(a: int, b: int) -> tuple[bytes, np.ndarray]:
            off = np.empty(b - a + 1, dtype=np.int64)
            blob = kernels.encode_masks(
                g.kind[a:b], g.seg_lo[a:b], g.seg_hi[a:b], hs[a:b], ws[a:b], g.poly_end, g.coords, g.chars, g.ucounts, off, area[a:b], box[a:b]
            )
            return blob, off

        if parts == 1:
            blob, offsets = encode(0, n)
            self._geometry = g = None  # the coordinates are no longer needed
        else:
            import threading

            # plain threads (this one takes the first run): the pool's module and logging are
            # imports a cold command line would pay for; the first error in run order is raised
            pieces: list = [None] * parts
            errors: list[BaseException | None] = [None] * parts

            def run(j: int) -> None:
                try:
                    pieces[j] = encode(cuts[j], cuts[j + 1])
                except BaseException as exc:  # raised below, in this thread
                    errors[j] = exc

            threads = [threading.Thread(target=run, args=(j,), name=f"rasterize {j}") for j in range(1, parts)]
            for t in threads:
                t.start()
            run(0)
            for t in threads:
                t.join()
            failed = next((e for e in errors if e is not None), None)
            if failed is not None:
                raise failed
            # the coordinates go before the pieces are joined: the two never sit in memory together
            self._geometry = g = None
            offsets = np.empty(n + 1, dtype=np.int64)
            base = 0
            for (a, b), (piece, off) in zip(itertools.pairwise(cuts), pieces, strict=True):
                offsets[a:b] = off[:-1] + base
                base += len(piece)
            offsets[n] = base
            blob = b"".join(piece for piece, _ in pieces)
        self._adopt_encoded(blob, offsets, area, box)
        self._geometry = None

    def _adopt_encoded(self, blob: bytes, offsets: np.ndarray, area: np.ndarray, box: np.ndarray) -> None:
        """:meth:`_adopt` for strings the rasterizer wrote with their areas and boxes: the
        strings it copied from the file (area -1) pass the gate here (the raised issue is
        the generic path's: the first in annotation order, as only these can have one)."""
        self.rle_blob, self.rle_offsets = blob, offsets
        img_pos = self.image_index(self.ann_image_ids)
        if len(img_pos) and img_pos.min() < 0:
            i = int(np.flatnonzero(img_pos < 0)[0])
            raise EngineInputError("unknown_image", f"image_id {int(self.ann_image_ids[i])} is not in images", location=f"annotations[{i}]")
        gate.check_dims(self.img_heights, self.img_widths, lambda i: f"images[{i}]")
        hs, ws = self.img_heights[img_pos], self.img_widths[img_pos]
        copied = np.flatnonzero(area < 0)
        if copied.size:
            loc = _LazyLoc("annotations", ".segmentation")
            checked = gate.check_strings(
                blob, offsets[copied], offsets[copied + 1], hs[copied], ws[copied],
                lambda j: loc[int(copied[j])], box_area=masks.boxes_areas,
            )
            area[copied], box[copied] = checked.area, checked.box
        self._strings = gate.seal_encoded_strings(blob, offsets[:-1], offsets[1:], hs, ws, area, box)
        self.rle_box, self.rle_area = self._strings.box, self._strings.area

    def _set_rles(self, rles: list[CheckedRLE]) -> None:
        self._adopt(*masks.pack_counts(rles))

    def _adopt(self, blob: bytes, offsets: np.ndarray) -> None:
        """Take ``blob`` (string i at offsets[i]:offsets[i+1], annotation i's mask) as the masks,
        through the gate, with boxes and areas from it."""
        self.rle_blob, self.rle_offsets, self.rle_box, self.rle_area = blob, offsets, None, None
        self._check_strings()

    def _check_strings(self) -> None:
        n = len(self.ann_ids)
        o = self.rle_offsets
        if (
            not isinstance(self.rle_blob, bytes)
            or not isinstance(o, np.ndarray)
            or o.dtype != np.int64
            or o.shape != (n + 1,)
            or (n and (o[0] != 0 or o[-1] != len(self.rle_blob) or (np.diff(o) < 0).any()))
        ):
            raise EngineInputError("bad_cache", "the masks do not match the annotations", location="rle_offsets")
        img_pos = self.image_index(self.ann_image_ids)
        if n and img_pos.min() < 0:
            i = int(np.flatnonzero(img_pos < 0)[0])
            raise EngineInputError("unknown_image", f"image_id {int(self.ann_image_ids[i])} is not in images", location=f"annotations[{i}]")
        gate.check_dims(self.img_heights, self.img_widths, lambda i: f"images[{i}]")
        # a cache read from a file keeps its boxes (computed when it was built); the areas
        # come from the check
        boxes = self.rle_box if isinstance(self.rle_box, np.ndarray) and self.rle_box.shape == (n, 4) else None
        strings = gate.check_strings(
            self.rle_blob, o[:-1], o[1:], self.img_heights[img_pos], self.img_widths[img_pos],
            _LazyLoc("annotations", ".segmentation").__getitem__, box_area=masks.boxes_areas, boxes=boxes,
        )
        self._strings = strings
        self.rle_box, self.rle_area = strings.box, strings.area

    def save(self, path: str | os.PathLike) -> None:
        """Write the cache (with masks) to ``path`` (an uncompressed npz)."""
        self.ensure_masks()
        arrays = {
            "format": np.array(CACHE_FORMAT),
            "img_ids": self.img_ids,
            "img_heights": self.img_heights,
            "img_widths": self.img_widths,
            "cat_ids": self.cat_ids,
            "categories_json": np.frombuffer(self.categories_json, dtype=np.uint8),
            "ann_ids": self.ann_ids,
            "ann_image_ids": self.ann_image_ids,
            "ann_category_ids": self.ann_category_ids,
            "ann_area": self.ann_area,
            "ann_iscrowd": self.ann_iscrowd,
            "ann_ignore": self.ann_ignore,
            "ann_bbox": self.ann_bbox,
            "rle_blob": np.frombuffer(self.rle_blob, dtype=np.uint8),
            "rle_offsets": self.rle_offsets,
            "rle_box": self.rle_box,
            "rle_area": self.rle_area,
        }
        tmp = Path(str(path) + ".tmp")
        with open(tmp, "wb") as f:
            np.savez(f, **arrays)
        os.replace(tmp, path)

    @classmethod
    def load(cls, path: str | os.PathLike) -> ReferenceCache:
        """Read a cache written by :meth:`save`."""
        try:
            with np.load(path, allow_pickle=False) as z:
                if int(z["format"]) != CACHE_FORMAT:
                    raise EngineInputError("bad_cache", f"cache format {int(z['format'])} not supported", location=str(path))
                d = {k: z[k] for k in z.files if k != "format"}
        except (OSError, ValueError, KeyError) as exc:
            if isinstance(exc, FileNotFoundError):
                raise
            raise EngineInputError("bad_cache", f"not a reference cache ({exc})", location=str(path)) from None
        _check_cache_arrays(d, str(path))
        d["categories_json"] = d["categories_json"].tobytes()
        d["rle_blob"] = d["rle_blob"].tobytes()
        # the masks pass the gate on first use (ensure_masks), boxes and areas recomputed
        return cls(**d)

    def to_coco(self) -> dict[str, Any]:
        """A COCO dict of the reference (segmentations as compressed RLE strings)."""
        import orjson

        self.ensure_masks()
        rles = self.rles(np.arange(len(self.ann_ids)))
        anns = []
        for i in range(len(self.ann_ids)):
            a = {
                "id": int(self.ann_ids[i]),
                "image_id": int(self.ann_image_ids[i]),
                "category_id": int(self.ann_category_ids[i]),
                "area": float(self.ann_area[i]),
                "iscrowd": int(self.ann_iscrowd[i]),
                "segmentation": rles[i].to_json(),
            }
            if np.isfinite(self.ann_bbox[i]).all():
                a["bbox"] = self.ann_bbox[i].tolist()
            anns.append(a)
        return {
            "images": [
                {"id": int(i), "height": int(h), "width": int(w)}
                for i, h, w in zip(self.img_ids, self.img_heights, self.img_widths)
            ],
            "categories": orjson.loads(self.categories_json),
            "annotations": anns,
        }


class _LazyLoc:
    def __init__(self, prefix: str, suffix: str, offset: int = 0) -> None:
        self.prefix, self.suffix, self.offset = prefix, suffix, offset

    def __getitem__(self, i: int) -> str:
        return f"{self.prefix}[{self.offset + i}]{self.suffix}"


# Masks to rasterize from which the work is shared between the cores (below it, one call).
PARALLEL_MASKS = 4096


@dataclass
class _Geometry:
    """Segmentations as the compiled reader leaves them (see coco_gt.c's parse_coco)."""

    kind: np.ndarray  # uint8 [N]: 0 polygons, 1 compressed string, 2 uncompressed counts, 3 none
    seg_lo: np.ndarray  # int64 [N]: first polygon / char / count (kind 3: 0 None, 1 [])
    seg_hi: np.ndarray  # int64 [N]
    poly_end: np.ndarray  # int64 [P]: end of each polygon in coords
    coords: np.ndarray  # float64
    chars: bytes  # compressed counts strings
    ucounts: np.ndarray  # uint32
    rle_size: np.ndarray  # int64 [N, 2], -1 for polygons

    def segmentations(self) -> list:
        """The segmentations as orjson would give them (coordinates as floats)."""
        out: list = []
        starts = np.concatenate(([0], self.poly_end[:-1])).tolist()
        ends = self.poly_end.tolist()
        for k, lo, hi, (h, w) in zip(self.kind.tolist(), self.seg_lo.tolist(), self.seg_hi.tolist(), self.rle_size.tolist()):
            if k == 0:
                out.append([self.coords[starts[q] : ends[q]].tolist() for q in range(lo, hi)])
            elif k == 1:
                out.append({"size": [h, w], "counts": self.chars[lo:hi].decode()})
            elif k == 3:
                out.append([] if lo else None)
            else:
                out.append({"size": [h, w], "counts": self.ucounts[lo:hi].tolist()})
        return out


def _load_reference_native(path: str, with_masks: bool) -> ReferenceCache | None:
    """Read a reference JSON file with the compiled reader; None when it declines or the file
    has anything the checks below reject (then the generic path parses it and raises the
    error with its location). Same arrays as the generic path, no Python object per
    annotation; masks are rasterized from the flat geometry (now, or in ensure_masks)."""
    import mmap

    import orjson

    from quality.engine import readahead

    kernels = native.kernels()
    parse = getattr(kernels, "parse_coco", None)
    if parse is None:
        return None
    # read in a thread since the command line started (readahead), or here
    pre = readahead.take("coco", path)
    if pre is None:
        data = readahead.map_file(path)
        if data is None:
            return None
        r = parse(data)
    else:
        data, r = pre
    try:
        if r is None:
            return None
        a, b = r["categories"]
        categories_value = orjson.loads(data[a:b]) if a >= 0 else []
    except orjson.JSONDecodeError:
        return None
    finally:
        if isinstance(data, mmap.mmap):
            data.close()
    n = r["n_annotations"]
    i64 = lambda k: np.frombuffer(r[k], dtype=np.int64).copy()  # noqa: E731
    try:
        categories = list(categories_value or [])
        img_ids, hs, ws = i64("img_id"), i64("img_height"), i64("img_width")
        unique_check(img_ids, "image id", "images")
        cat_ids = _int_ids(_field(categories, "id", "categories"), "category id", "categories")
        unique_check(cat_ids, "category id", "categories")
        ann_ids = i64("id")
        unique_check(ann_ids, "annotation id", "annotations")
    except (EngineInputError, TypeError, ValueError, KeyError):
        return None
    try:
        gate.check_dims(hs, ws, lambda i: f"images[{i}]")
    except EngineInputError:
        return None  # the generic path raises it
    ref = ReferenceCache(
        img_ids=img_ids,
        img_heights=hs,
        img_widths=ws,
        cat_ids=cat_ids,
        categories_json=orjson.dumps(categories),
        ann_ids=ann_ids,
        ann_image_ids=i64("image_id"),
        ann_category_ids=i64("category_id"),
        ann_area=np.frombuffer(r["area"], dtype=np.float64).copy(),
        ann_iscrowd=np.frombuffer(r["iscrowd"], dtype=np.uint8).astype(bool),
        ann_ignore=np.frombuffer(r["ignore"], dtype=np.uint8).astype(bool),
        ann_bbox=np.frombuffer(r["bbox"], dtype=np.float64).reshape(n, 4).copy(),
    )
    img_pos = ref.image_index(ref.ann_image_ids)
    if n and (img_pos.min() < 0 or not np.isin(ref.ann_category_ids, cat_ids).all()):
        return None  # unknown image or category
    g = _Geometry(
        kind=np.frombuffer(r["kind"], dtype=np.uint8),
        seg_lo=np.frombuffer(r["seg_lo"], dtype=np.int64),
        seg_hi=np.frombuffer(r["seg_hi"], dtype=np.int64),
        poly_end=np.frombuffer(r["poly_end"], dtype=np.int64),
        coords=np.frombuffer(r["coords"], dtype=np.float64),
        chars=r["chars"],
        ucounts=np.frombuffer(r["ucounts"], dtype=np.uint32),
        rle_size=np.frombuffer(r["rle_size"], dtype=np.int64).reshape(n, 2),
    )
    # masks._check_rle's errors (an RLE's size is not its image's, uncompressed counts that
    # do not cover it): the generic path raises them where it does
    rle = (g.kind == 1) | (g.kind == 2)
    if rle.any():
        h, w = hs[img_pos[rle]], ws[img_pos[rle]]
        size = g.rle_size[rle]
        rle_sum = np.frombuffer(r["rle_sum"], dtype=np.int64)[rle]
        counts = g.kind[rle] == 2
        if (size[:, 0] != h).any() or (size[:, 1] != w).any() or (counts & (rle_sum != h * w)).any():
            return None
    ref._geometry = g
    # the parsed fields were copied out; only the geometry's buffers stay (until rasterized)
    r = g = None
    if with_masks:
        if (ref._geometry.kind == 3).any():
            return None  # missing segmentations: the generic path names the first
        try:
            ref._encode_geometry(kernels)
        except EngineInputError:
            return None  # the generic path raises it, in its own order
    return ref


def compiled_reference(path: str | os.PathLike, *, with_masks: bool) -> ReferenceCache | None:
    """The reference of a JSON file read by the compiled reader, masks rasterized on every
    core when ``with_masks``; None when the kernels are off or the reader declines the file
    (then a streaming or generic path reads it and raises any error)."""
    return _load_reference_native(str(path), with_masks)


def read_json(path: str | os.PathLike) -> Any:
    import orjson

    try:
        with open(path, "rb") as f:
            data = f.read()
    except FileNotFoundError:
        raise
    except OSError as exc:
        raise EngineInputError("unreadable_file", exc.strerror or str(exc), location=str(path)) from None
    try:
        return orjson.loads(data)
    except orjson.JSONDecodeError as exc:
        raise EngineInputError("invalid_json", str(exc), location=str(path)) from None


def _images(images: Sequence[Mapping]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    ids = _int_ids(_field(images, "id", "images"), "image id", "images")
    unique_check(ids, "image id", "images")
    hs = _int_ids(_field(images, "height", "images"), "height", "images")
    ws = _int_ids(_field(images, "width", "images"), "width", "images")
    gate.check_dims(hs, ws, lambda i: f"images[{i}]")
    return ids, hs, ws


def _annotation_fields(anns: Sequence[Mapping], offset: int = 0) -> dict[str, Any]:
    where = "annotations"
    n = len(anns)
    ids = _int_ids(_field(anns, "id", where, offset), "annotation id", where)
    img = _int_ids(_field(anns, "image_id", where, offset), "image_id", where)
    cat = _int_ids(_field(anns, "category_id", where, offset), "category_id", where)
    area = _numbers(_field(anns, "area", where, offset), "area", where)
    crowd = np.fromiter((bool(a.get("iscrowd", 0)) for a in anns), dtype=bool, count=n)
    ignore = np.fromiter((bool(a.get("ignore", 0)) for a in anns), dtype=bool, count=n)
    raw_boxes = [a.get("bbox") for a in anns]
    if all(b is not None for b in raw_boxes):
        bbox = _numbers(raw_boxes, "bbox", where, (4,)) if n else np.zeros((0, 4))
    else:
        bbox = np.full((n, 4), np.nan)
        for i, b in enumerate(raw_boxes):
            if b is not None:
                bbox[i] = _numbers([b], "bbox", f"{where}[{offset + i}]", (4,))[0]
    return {"ids": ids, "img": img, "cat": cat, "area": area.reshape(n), "crowd": crowd, "ignore": ignore, "bbox": bbox.reshape(n, 4)}


def load_reference(gt: Any, *, with_masks: bool) -> ReferenceCache:
    """A :class:`ReferenceCache` from a path (JSON or cache file), a COCO dict or a cache."""
    if isinstance(gt, ReferenceCache):
        return gt
    if isinstance(gt, (str, os.PathLike)):
        p = str(gt)
        try:
            with open(p, "rb") as f:
                magic = f.read(2)
        except FileNotFoundError:
            raise
        except OSError as exc:
            raise EngineInputError("unreadable_file", exc.strerror or str(exc), location=p) from None
        if magic == b"PK":
            return ReferenceCache.load(p)
        ref = _load_reference_native(p, with_masks)
        if ref is not None:
            return ref
        gt = read_json(p)
    if not isinstance(gt, Mapping) or "images" not in gt or "annotations" not in gt:
        raise EngineInputError("malformed", "reference must be a COCO object with images and annotations")
    return build_reference_cache(
        images=gt["images"], categories=gt.get("categories", []), annotations=gt["annotations"], with_masks=with_masks
    )


def build_reference_cache(
    gt: Any = None,
    *,
    images: Sequence[Mapping] | None = None,
    categories: Sequence[Mapping] | None = None,
    annotations: Iterable[Mapping] | None = None,
    with_masks: bool = True,
    chunk_size: int = 50_000,
) -> ReferenceCache:
    """Parse, validate and rasterize a COCO reference.

    Either ``gt`` (a path or a COCO dict) or ``images`` + ``categories`` + ``annotations``
    (annotations may be a one-pass iterator; they are consumed in chunks). Masks are
    rasterized exactly as ``COCO.annToRLE``. Raises :class:`EngineInputError` on bad input.
    """
    if gt is not None:
        ref = load_reference(gt, with_masks=with_masks)
        if with_masks:
            ref.ensure_masks()
        return ref
    if images is None or annotations is None:
        raise TypeError("give gt, or images and annotations")
    images = list(images)
    categories = list(categories or [])
    import orjson

    img_ids, hs, ws = _images(images)
    cat_ids = _int_ids(_field(categories, "id", "categories"), "category id", "categories")
    unique_check(cat_ids, "category id", "categories")
    ref = ReferenceCache(
        img_ids=img_ids,
        img_heights=hs,
        img_widths=ws,
        cat_ids=cat_ids,
        categories_json=orjson.dumps(categories),
        ann_ids=np.zeros(0, np.int64),
        ann_image_ids=np.zeros(0, np.int64),
        ann_category_ids=np.zeros(0, np.int64),
        ann_area=np.zeros(0),
        ann_iscrowd=np.zeros(0, bool),
        ann_ignore=np.zeros(0, bool),
        ann_bbox=np.zeros((0, 4)),
    )
    parts: list[dict] = []
    blobs: list[bytes] = []
    offs: list[np.ndarray] = []
    segs_all: list = []
    offset = 0
    it = iter(annotations)
    while True:
        chunk = list(itertools.islice(it, chunk_size))
        if not chunk and offset > 0:
            break
        f = _annotation_fields(chunk, offset)
        img_pos = ref.image_index(f["img"])
        if len(img_pos) and img_pos.min() < 0:
            i = int(np.flatnonzero(img_pos < 0)[0])
            raise EngineInputError("unknown_image", f"image_id {int(f['img'][i])} is not in images", location=f"annotations[{offset + i}]")
        known = np.isin(f["cat"], cat_ids)
        if not known.all():
            i = int(np.flatnonzero(~known)[0])
            raise EngineInputError("unknown_category", f"category_id {int(f['cat'][i])} is not in categories", location=f"annotations[{offset + i}]")
        segs = _field(chunk, "segmentation", "annotations", offset) if with_masks else [a.get("segmentation") for a in chunk]
        if with_masks:
            rles = masks.to_rles(segs, hs[img_pos], ws[img_pos], _LazyLoc("annotations", ".segmentation", offset), img_pos.tolist())
            blob, o = masks.pack_counts(rles)
            blobs.append(blob)
            offs.append(o[1:] + sum(len(b) for b in blobs[:-1]))
        else:
            segs_all.extend(segs)
        parts.append(f)
        offset += len(chunk)
        if len(chunk) < chunk_size:
            break
    cat = lambda k, empty: np.concatenate([p[k] for p in parts]) if parts else empty  # noqa: E731
    ref.ann_ids = cat("ids", np.zeros(0, np.int64))
    unique_check(ref.ann_ids, "annotation id", "annotations")
    ref.ann_image_ids = cat("img", np.zeros(0, np.int64))
    ref.ann_category_ids = cat("cat", np.zeros(0, np.int64))
    ref.ann_area = cat("area", np.zeros(0))
    ref.ann_iscrowd = cat("crowd", np.zeros(0, bool))
    ref.ann_ignore = cat("ignore", np.zeros(0, bool))
    ref.ann_bbox = cat("bbox", np.zeros((0, 4)))
    if with_masks:
        ref._adopt(b"".join(blobs), np.concatenate([np.zeros(1, np.int64)] + offs))
    else:
        ref._segmentations = segs_all
    return ref


# dtype kind and trailing shape of every array a cache file holds
_CACHE_ARRAYS = {
    "img_ids": ("i", ()), "img_heights": ("i", ()), "img_widths": ("i", ()), "cat_ids": ("i", ()),
    "categories_json": ("u", ()), "ann_ids": ("i", ()), "ann_image_ids": ("i", ()), "ann_category_ids": ("i", ()),
    "ann_area": ("f", ()), "ann_iscrowd": ("b", ()), "ann_ignore": ("b", ()), "ann_bbox": ("f", (4,)),
    "rle_blob": ("u", ()), "rle_offsets": ("i", ()), "rle_box": ("f", (4,)), "rle_area": ("i", ()),
}


def _check_cache_arrays(d: dict, where: str) -> None:
    """A cache file's arrays have the kinds, shapes and lengths :meth:`ReferenceCache.save`
    writes (the masks themselves pass the gate when first used)."""
    if set(d) != set(_CACHE_ARRAYS):
        raise EngineInputError("bad_cache", f"a reference cache holds {sorted(_CACHE_ARRAYS)}", location=where)
    for key, (kind, tail) in _CACHE_ARRAYS.items():
        a = d[key]
        if a.dtype.kind != kind or a.dtype.itemsize != {"i": 8, "u": 1, "f": 8, "b": 1}[kind] or a.ndim != 1 + len(tail) or a.shape[1:] != tail:
            raise EngineInputError("bad_cache", f"{key} is not what a reference cache holds", location=where)
    n_img, n_ann = len(d["img_ids"]), len(d["ann_ids"])
    lengths = {"img_heights": n_img, "img_widths": n_img, "ann_image_ids": n_ann, "ann_category_ids": n_ann, "ann_area": n_ann,
               "ann_iscrowd": n_ann, "ann_ignore": n_ann, "ann_bbox": n_ann, "rle_offsets": n_ann + 1, "rle_box": n_ann, "rle_area": n_ann}
    for key, n in lengths.items():
        if len(d[key]) != n:
            raise EngineInputError("bad_cache", f"{key} does not have one entry per {'image' if n == n_img else 'annotation'}", location=where)



