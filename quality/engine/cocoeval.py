"""COCO box and mask evaluation, equal element for element to pycocotools' ``COCOeval``.

Public face:

- :class:`EvalParams` / :class:`EvalResult` (kw-only dataclasses, ``to_dict``/``from_dict``).
- :func:`evaluate` (``gt``/``dt`` as paths, parsed objects or a :class:`ReferenceCache`).
- :func:`evaluate_cells` with :class:`Cell`: the matching + accumulation core for any IoU
  definition (e.g. per-video IoUs).
- :func:`evaluate_shard` / :func:`merge_shards` and :class:`EvalState`: evaluate image
  shards separately and merge to exactly the single-run arrays.

How it stays identical to pycocotools: detections are
stably sorted by -score per (image, category) and cut at ``max(max_dets)``; references are
ordered with ignored ones last; matching walks detections in that order with pycocotools'
rule (start at ``min(t, 1 - 1e-10)``, accept ``>=``, last of equal IoUs wins, a real match
stops at the first ignored reference, crowds absorb); accumulation concatenates images in
id order and sorts stably by -score, with the same float64 operations.

How it is fast: only non-empty cells are visited; each IoU is computed once (candidate
pairs prefiltered by exact box overlap) and reused for all area ranges; matching runs for
all cells at once, one "round" per detection rank, vectorized over thresholds; one outcome
per (area, threshold, detection) replaces ``evalImgs``.
"""

from __future__ import annotations

import mmap
import os
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, fields
from typing import Any

import numpy as np

from quality.engine import gate, masks, native
from quality.engine.cache import ReferenceCache, _field, _int_ids, dense_index, load_reference, read_json
from quality.engine.errors import EngineInputError
from quality.engine.gate import CheckedRLE, MaskStrings


def _default_iou_thrs() -> np.ndarray:
    return np.linspace(0.5, 0.95, int(np.round((0.95 - 0.5) / 0.05)) + 1, endpoint=True)


def _default_rec_thrs() -> np.ndarray:
    return np.linspace(0.0, 1.00, int(np.round((1.00 - 0.0) / 0.01)) + 1, endpoint=True)


@dataclass(kw_only=True)
class EvalParams:
    """COCOeval's ``Params`` for ``segm``/``bbox``; defaults are bit-identical to it."""

    iou_type: str = "segm"
    iou_thrs: np.ndarray = field(default_factory=_default_iou_thrs)
    rec_thrs: np.ndarray = field(default_factory=_default_rec_thrs)
    max_dets: tuple[int, ...] = (1, 10, 100)
    area_rng: tuple[tuple[float, float], ...] = ((0**2, 1e5**2), (0**2, 32**2), (32**2, 96**2), (96**2, 1e5**2))
    area_rng_lbl: tuple[str, ...] = ("all", "small", "medium", "large")
    use_cats: bool = True
    cat_ids: list[int] | None = None
    img_ids: list[int] | None = None

    def validate(self) -> None:
        if self.iou_type not in ("segm", "bbox"):
            raise EngineInputError("bad_param", f"iou_type must be 'segm' or 'bbox', not {self.iou_type!r}")
        if len(self.area_rng) != len(self.area_rng_lbl):
            raise EngineInputError("bad_param", "area_rng and area_rng_lbl differ in length")
        if not self.max_dets or min(self.max_dets) < 0:
            raise EngineInputError("bad_param", "max_dets must be non-negative")

    def to_dict(self) -> dict[str, Any]:
        return {
            "iou_type": self.iou_type,
            "iou_thrs": [float(x) for x in self.iou_thrs],
            "rec_thrs": [float(x) for x in self.rec_thrs],
            "max_dets": [int(x) for x in self.max_dets],
            "area_rng": [[float(a), float(b)] for a, b in self.area_rng],
            "area_rng_lbl": list(self.area_rng_lbl),
            "use_cats": bool(self.use_cats),
            "cat_ids": None if self.cat_ids is None else [int(x) for x in self.cat_ids],
            "img_ids": None if self.img_ids is None else [int(x) for x in self.img_ids],
        }

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> EvalParams:
        kw = dict(d)
        for k in ("iou_thrs", "rec_thrs"):
            if k in kw:
                kw[k] = np.asarray(kw[k], dtype=np.float64)
        if "max_dets" in kw:
            kw["max_dets"] = tuple(int(x) for x in kw["max_dets"])
        if "area_rng" in kw:
            kw["area_rng"] = tuple((a, b) for a, b in kw["area_rng"])
        if "area_rng_lbl" in kw:
            kw["area_rng_lbl"] = tuple(kw["area_rng_lbl"])
        return cls(**{k: v for k, v in kw.items() if k in {f.name for f in fields(cls)}})


@dataclass(kw_only=True)
class EvalResult:
    """COCOeval's ``eval`` arrays and ``stats``.

    ``precision``/``scores`` [T,R,K,A,M], ``recall`` [T,K,A,M] (-1 where a category has no
    reference), ``stats`` the 12 summary numbers in COCOeval order, ``params`` with
    ``cat_ids``/``img_ids`` resolved as COCOeval resolves them.
    """

    precision: np.ndarray
    recall: np.ndarray
    scores: np.ndarray
    stats: list[float]
    params: EvalParams
    engine_version: str
    device: str = "cpu"

    def to_dict(self) -> dict[str, Any]:
        return {
            "precision": self.precision.tolist(),
            "recall": self.recall.tolist(),
            "scores": self.scores.tolist(),
            "stats": [float(s) for s in self.stats],
            "params": self.params.to_dict(),
            "engine_version": self.engine_version,
            "device": self.device,
        }

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> EvalResult:
        return cls(
            precision=np.asarray(d["precision"], dtype=np.float64),
            recall=np.asarray(d["recall"], dtype=np.float64),
            scores=np.asarray(d["scores"], dtype=np.float64),
            stats=[float(s) for s in d["stats"]],
            params=EvalParams.from_dict(d["params"]),
            engine_version=d["engine_version"],
            device=d.get("device", "cpu"),
        )

    def summary_lines(self) -> list[str]:
        """The 12 lines ``COCOeval.summarize`` prints."""
        return [line for line, _ in _summarize(self)]


@dataclass(kw_only=True)
class Cell:
    """One (image, category) pair for :func:`evaluate_cells`.

    Order contract: detections (``dt_*`` arrays and the rows of ``ious``) and references
    (``gt_*`` arrays and the columns of ``ious``) are **as given**, e.g. file order. The
    core sorts detections stably by ``-dt_scores`` itself (ties keep the given order), keeps
    the first ``max(params.max_dets)``, and orders references with ignored ones last
    (stably), exactly as COCOeval. ``ious`` is float64 [D, G]; for crowd references it
    should be intersection / area(detection). ``gt_ignore_flag`` is COCOeval's ``ignore``
    (``evaluate`` sets it to ``iscrowd``, as COCOeval's ``_prepare`` does). ``dt_ids``
    should be positive (COCOeval's ``loadRes`` numbers them from 1); a reference id of 0
    behaves as in COCOeval (its matches count as unmatched). With
    ``params.use_cats=False`` give one cell per image (``cat_id`` is ignored) holding all
    categories' objects, references and detections ordered by category then file order.

    >>> import numpy as np
    >>> cell = Cell(img_id=1, cat_id=1, ious=np.array([[0.8], [0.3]]),
    ...             gt_ids=np.array([1]), gt_area=np.array([100.0]),
    ...             gt_crowd=np.array([False]), gt_ignore_flag=np.array([False]),
    ...             dt_ids=np.array([1, 2]), dt_scores=np.array([0.9, 0.5]),
    ...             dt_area=np.array([90.0, 40.0]))
    >>> r = evaluate_cells([cell], params=EvalParams(), cat_ids=[1], img_ids=[1])
    >>> round(r.stats[1], 3)  # AP@0.5: the top detection matches
    1.0
    """

    img_id: int
    cat_id: int
    ious: np.ndarray
    gt_ids: np.ndarray
    gt_area: np.ndarray
    gt_crowd: np.ndarray
    gt_ignore_flag: np.ndarray
    dt_ids: np.ndarray
    dt_scores: np.ndarray
    dt_area: np.ndarray


# --------------------------------------------------------------------------------------
# State: one outcome per (area range, threshold, detection); additive over image shards.


@dataclass(kw_only=True)
class EvalState:
    """Per-detection outcomes before accumulation. ``merge`` concatenates image shards."""

    params: EvalParams  # cat_ids / img_ids resolved
    det_kpos: np.ndarray  # int64 [N], category slot (0 when use_cats is False)
    det_img_pos: np.ndarray  # int64 [N], position of the image in params.img_ids
    det_rank: np.ndarray  # int64 [N], rank inside its (image, category) cell
    det_score: np.ndarray  # float64 [N]
    matched: np.ndarray  # bool [A, T, N]: matched to a reference with a non-zero id
    ignored: np.ndarray  # bool [A, T, N]
    npig: np.ndarray  # int64 [K, A], references not ignored

    def merge(self, *others: EvalState) -> EvalState:
        states = (self, *others)
        return EvalState(
            params=self.params,
            det_kpos=np.concatenate([s.det_kpos for s in states]),
            det_img_pos=np.concatenate([s.det_img_pos for s in states]),
            det_rank=np.concatenate([s.det_rank for s in states]),
            det_score=np.concatenate([s.det_score for s in states]),
            matched=np.concatenate([s.matched for s in states], axis=2),
            ignored=np.concatenate([s.ignored for s in states], axis=2),
            npig=sum((s.npig for s in states[1:]), start=self.npig.copy()),
        )

    def result(self, device: str = "cpu") -> EvalResult:
        return _accumulate(self, device)


def merge_shards(states: Iterable[EvalState], *, device: str = "cpu") -> EvalResult:
    """Merge shard states (any order) into the result of a single run."""
    states = list(states)
    if not states:
        raise ValueError("no shards")
    return states[0].merge(*states[1:]).result(device)


# --------------------------------------------------------------------------------------
# Inputs


@dataclass
class _Detections:
    img: np.ndarray  # int64 image ids
    cat: np.ndarray  # int64 category ids
    score: np.ndarray  # float64
    bbox: np.ndarray | None  # float64 [N, 4] (NaN rows: derive from the mask)
    area: np.ndarray | None  # float64 box areas (bbox branch) or None (mask areas)
    segs: list  # raw segmentations (None where absent)
    branch: str  # 'bbox' or 'segm', as COCO.loadRes decides from the first result
    # int64 [N, 2] RLE sizes when every segmentation is a compressed RLE dict (str or bytes
    # counts): those dicts go to pycocotools' C functions as they are, no conversion
    rle_hw: np.ndarray | None = None
    # parsed by the compiled reader: segs is None; the compressed strings stay where they lie
    # in the file's bytes (rle_blob[rle_start[i]:rle_stop[i]], JSON-escaped) and rle_hw holds
    # their sizes (-1 rows: no segmentation)
    rle_blob: bytes | mmap.mmap | None = None
    rle_start: np.ndarray | None = None
    rle_stop: np.ndarray | None = None
    # every result's mask once it passed the gate (_check_detection_masks): as checked
    # strings when the compiled kernels are on, as CheckedRLEs otherwise
    strings: MaskStrings | None = None
    rles: list[CheckedRLE] | None = None


def _parse_results_native(path: Any, iou_type: str | None) -> _Detections | None:
    """Read a results file with the compiled reader; None when it declines (then the
    generic path parses it and reports any error with its location)."""
    from quality.engine import readahead

    kernels = native.kernels()
    if kernels is None or not isinstance(path, (str, os.PathLike)):
        return None
    # read in a thread since the command line started (readahead), or here; mapped, not
    # read: the counts strings are decoded where they lie in the page cache, and memory
    # does not hold a second copy of the file
    pre = readahead.take("results", path)
    if pre is None:
        data = readahead.map_file(path)
        if data is None:
            return None  # the generic path raises the right error
        r = kernels.parse_results(data)
    else:
        data, r = pre
    if r is None:
        return None
    n = r["n"]
    branch = "bbox" if r["first_bbox"] else "segm"
    if branch == "segm" and r["n_seg"] != n:
        return None  # a result without segmentation: the generic path names it
    if branch == "bbox" and (r["n_bbox"] != n or (iou_type != "bbox" and r["n_seg"] != n)):
        return None  # missing boxes, or box-only results to rasterize as polygons
    bbox = np.frombuffer(r["bbox"], dtype=np.float64).reshape(n, 4).copy()
    return _Detections(
        img=np.frombuffer(r["image_id"], dtype=np.int64),
        cat=np.frombuffer(r["category_id"], dtype=np.int64),
        score=np.frombuffer(r["score"], dtype=np.float64),
        bbox=bbox,
        area=bbox[:, 2] * bbox[:, 3] if branch == "bbox" else None,
        segs=None,
        branch=branch,
        rle_hw=np.frombuffer(r["size"], dtype=np.int64).reshape(n, 2),
        rle_blob=data,
        rle_start=np.frombuffer(r["counts_start"], dtype=np.int64),
        rle_stop=np.frombuffer(r["counts_stop"], dtype=np.int64),
    )


def _check_detection_ids(img: np.ndarray, cat: np.ndarray, ref: ReferenceCache, where: str) -> None:
    pos = ref.image_index(img)
    if (pos < 0).any():
        i = int(np.flatnonzero(pos < 0)[0])
        raise EngineInputError("unknown_image", f"image_id {int(img[i])} is not in the reference", location=f"{where}[{i}]")
    known = np.isin(cat, ref.cat_ids)
    if not known.all():
        i = int(np.flatnonzero(~known)[0])
        raise EngineInputError("unknown_category", f"category_id {int(cat[i])} is not in the reference", location=f"{where}[{i}]")


def _load_detections(dt: Any, ref: ReferenceCache, iou_type: str | None = None) -> _Detections:
    """The results, with every mask the evaluation decodes through the gate (in file order)."""
    dets = _read_detections(dt, ref, iou_type)
    if iou_type == "segm" or (iou_type == "bbox" and dets.branch == "segm"):
        _check_detection_masks(dets, ref)
    return dets


def _check_detection_masks(dets: _Detections, ref: ReferenceCache) -> None:
    """Every result's mask on its image through the gate; the first issue in file order is
    raised (on one result, a wrong ``size`` before its counts)."""
    n = len(dets.img)
    pos = ref.image_index(dets.img)
    hs, ws = ref.img_heights[pos], ref.img_widths[pos]
    kernels = native.kernels()
    where = _ResLoc(np.arange(n))
    if dets.segs is None:  # the compiled reader: strings where they lie in the file
        dets.strings = gate.check_rle_strings(dets.rle_blob, dets.rle_start, dets.rle_stop, dets.rle_hw, hs, ws, where.__getitem__, escaped=True)
        return
    if dets.rle_hw is not None:  # every segmentation a compressed RLE dict
        parts = [s["counts"] for s in dets.segs]
        parts = [p.encode() if type(p) is str else p for p in parts]
        lens = np.fromiter((len(p) for p in parts), dtype=np.int64, count=n)
        stop = np.cumsum(lens)
        strings = gate.check_rle_strings(b"".join(parts), stop - lens, stop, dets.rle_hw, hs, ws, where.__getitem__, box_area=masks.boxes_areas)
        if kernels is not None:
            dets.strings = strings
        else:
            dets.rles = strings.rles()
        return
    rles = masks.to_rles(dets.segs, hs, ws, locations=where, image_keys=pos.tolist())
    if kernels is None:
        dets.rles = rles
    else:
        blob, off = masks.pack_counts(rles)
        dets.strings = gate.check_strings(blob, off[:-1], off[1:], hs, ws, where.__getitem__)


def _read_detections(dt: Any, ref: ReferenceCache, iou_type: str | None) -> _Detections:
    fast = _parse_results_native(dt, iou_type)
    if fast is not None:
        _check_detection_ids(fast.img, fast.cat, ref, "results")
        return fast
    if isinstance(dt, (str, os.PathLike)):
        dt = read_json(dt)
    if isinstance(dt, Mapping) and "annotations" in dt:
        dt = dt["annotations"]
    if not isinstance(dt, list):
        raise EngineInputError("malformed", "results must be a list of objects", location="results")
    n = len(dt)
    where = "results"
    if n == 0:
        z = np.zeros(0, np.int64)
        return _Detections(z, z, np.zeros(0), np.zeros((0, 4)), np.zeros(0), [], "bbox")
    first = dt[0]
    if not isinstance(first, Mapping):
        raise EngineInputError("malformed", "expected an object", location="results[0]")
    if "bbox" in first and not first["bbox"] == []:  # noqa: SIM201 - pycocotools' own test, kept verbatim
        branch = "bbox"
    elif "segmentation" in first:
        branch = "segm"
    else:
        raise EngineInputError("malformed", "results need 'segmentation' or 'bbox'", location="results[0]")
    img = _int_ids(_field(dt, "image_id", where), "image_id", where)
    cat = _int_ids(_field(dt, "category_id", where), "category_id", where)
    _check_detection_ids(img, cat, ref, where)
    from quality.engine.cache import _numbers

    score = _numbers(_field(dt, "score", where), "score", where).reshape(n)
    segs = [a.get("segmentation") for a in dt]
    if branch == "bbox":
        bbox = _numbers(_field(dt, "bbox", where), "bbox", where, (4,)).reshape(n, 4)
        area = bbox[:, 2] * bbox[:, 3]
        raw = [a["bbox"] for a in dt]
        segs = [s if s is not None else masks.box_polygon(raw[i]) for i, s in enumerate(segs)]
    else:
        area = None
        bbox = np.full((n, 4), np.nan)
        for i in [i for i, a in enumerate(dt) if "bbox" in a]:
            bbox[i] = _numbers([dt[i]["bbox"]], "bbox", f"{where}[{i}]", (4,))[0]
        rle_hw = masks.compressed_sizes(segs)
        if rle_hw is None and any(s is None for s in segs):
            i = next(i for i, s in enumerate(segs) if s is None)
            raise EngineInputError("missing_field", "missing 'segmentation'", location=f"{where}[{i}]")
        return _Detections(img, cat, score, bbox, area, segs, branch, rle_hw)
    return _Detections(img, cat, score, bbox, area, segs, branch)


def check_results(gt: Any, dt: Any, *, iou_type: str = "segm") -> int:
    """Read results ``dt`` against the reference ``gt`` as :func:`evaluate` reads them, with
    every mask the evaluation would decode through the gate, without evaluating; the number
    of results, or the first problem (in file order) as :class:`EngineInputError`."""
    ref = load_reference(gt, with_masks=False)
    return len(_load_detections(dt, ref, iou_type).img)


def _resolve_ids(params: EvalParams, ref: ReferenceCache) -> tuple[np.ndarray, np.ndarray]:
    if params.img_ids is None:
        img_ids = np.unique(ref.img_ids)
    else:
        img_ids = np.unique(np.asarray(list(params.img_ids), dtype=np.int64))
    if params.cat_ids is None:
        cat_ids = np.sort(ref.cat_ids)
    elif params.use_cats:
        cat_ids = np.unique(np.asarray(list(params.cat_ids), dtype=np.int64))
    else:
        cat_ids = np.asarray(list(params.cat_ids), dtype=np.int64)
    return img_ids, cat_ids


def _positions(values: np.ndarray, keys: np.ndarray) -> np.ndarray:
    """Position of each value in ``keys`` (first occurrence), -1 when absent."""
    if len(keys) == 0:
        return np.full(len(values), -1, dtype=np.int64)
    fast = dense_index(values, keys)
    if fast is not None:
        return fast
    order = np.argsort(keys, kind="stable")
    s = keys[order]
    p = np.searchsorted(s, values)
    pc = np.minimum(p, len(s) - 1)
    return np.where(s[pc] == values, order[pc], -1)


# --------------------------------------------------------------------------------------
# evaluate


def evaluate(
    gt: Any,
    dt: Any,
    *,
    params: EvalParams | None = None,
    device: str = "cpu",
) -> EvalResult:
    """Evaluate results ``dt`` against reference ``gt`` as pycocotools' COCOeval would.

    ``gt``: a COCO JSON path, a reference cache path (``.npz`` from
    :meth:`ReferenceCache.save`), a parsed COCO dict or a :class:`ReferenceCache`.
    ``dt``: a results JSON path or a parsed list of results. ``device``: ``"cpu"``
    (pycocotools' C IoU), ``"cuda"`` or ``"torch-cpu"`` (the torch kernel), ``"auto"``.
    """
    return evaluate_shard(gt, dt, params=params, device=device).result(_device_name(device))


def evaluate_shard(
    gt: Any,
    dt: Any,
    *,
    params: EvalParams | None = None,
    device: str = "cpu",
    shard: int = 0,
    num_shards: int = 1,
) -> EvalState:
    """Evaluate the images ``img_ids[shard::num_shards]`` only; merge with :func:`merge_shards`."""
    from quality.engine.iou import resolve_device

    params = params or EvalParams()
    params.validate()
    device = resolve_device(device)
    ref = load_reference(gt, with_masks=False)
    dets = _load_detections(dt, ref, params.iou_type)
    return _shard_state(ref, dets, params, device, shard, num_shards)


def _shard_state(ref, dets, params: EvalParams, device: str, shard: int, num_shards: int, cat_keep: np.ndarray | None = None) -> EvalState:
    img_ids, cat_ids = _resolve_ids(params, ref)
    rp = EvalParams(**{**{f.name: getattr(params, f.name) for f in fields(params)}})
    rp.img_ids = img_ids.tolist()
    rp.cat_ids = cat_ids.tolist()
    rp.max_dets = tuple(sorted(params.max_dets))
    flat = _build_flat(ref, dets, rp, img_ids, cat_ids, device, shard, num_shards, cat_keep)
    return _state_from_flat(rp, flat)


_FORK_MIN_DETS = 20_000  # below this, forking costs more than it saves


def evaluate_forked(gt: Any, dt: Any, *, params: EvalParams | None = None, device: str = "cpu", workers: int = 2) -> EvalResult:
    """:func:`evaluate` with the work after parsing split over ``workers`` forked processes.

    The inputs are parsed (and the reference rasterized) once; the processes share them
    copy-on-write. With categories (``use_cats``) whose work can be balanced, each process
    evaluates a set of whole categories, matching and accumulation included: a category's
    precision, recall and scores depend on its own detections and references only, so
    each process's categories are taken as they are. Otherwise each evaluates the image
    shard ``shard::workers`` and the states are merged with the exact shard merge. Either
    way the result equals :func:`evaluate`'s. Falls back to one process where fork is
    unavailable, for small inputs, and on any error (the single run then raises exactly the
    error :func:`evaluate` raises). For command-line use: forking a multi-threaded server
    process is not safe.
    """
    import gc
    import pickle

    from quality.engine.iou import resolve_device

    params = params or EvalParams()
    params.validate()
    device = resolve_device(device)
    ref = load_reference(gt, with_masks=False)
    dets = _load_detections_rasterizing(dt, ref, params.iou_type, workers)
    if workers < 2 or device != "cpu" or not hasattr(os, "fork") or len(dets.img) < _FORK_MIN_DETS:
        return _shard_state(ref, dets, params, device, 0, 1).result(device)
    if params.iou_type == "segm":
        ref.ensure_masks()
    split = _category_split(ref, dets, params, workers)

    def part(w: int) -> Any:
        if split is None:
            return _shard_state(ref, dets, params, device, w, workers)
        r = _shard_state(ref, dets, params, device, 0, 1, cat_keep=split[w]).result(device)
        return r.precision, r.recall, r.scores, r.params

    gc.freeze()  # keep the collector from touching (and so copying) the shared objects
    children = []
    try:
        for w in range(1, workers):
            r, wfd = os.pipe()
            pid = os.fork()
            if pid == 0:  # child
                os.close(r)
                code = 0
                try:
                    payload = pickle.dumps(part(w), protocol=5)
                except BaseException:
                    payload, code = b"", 1
                try:
                    with os.fdopen(wfd, "wb") as f:
                        f.write(payload)
                finally:
                    os._exit(code)
            os.close(wfd)
            children.append((pid, r))
        failed = False
        try:
            parts = [part(0)]
        except EngineInputError:
            failed, parts = True, []
        for pid, r in children:
            with os.fdopen(r, "rb") as f:
                data = f.read()
            _, status = os.waitpid(pid, 0)
            if os.waitstatus_to_exitcode(status) != 0 or not data:
                failed = True
            elif not failed:
                parts.append(pickle.loads(data))
        children = []
    finally:
        for pid, r in children:  # only on an unexpected error in this process
            try:
                os.close(r)
                os.waitpid(pid, 0)
            except OSError:
                pass
        gc.unfreeze()
    if failed:
        return _shard_state(ref, dets, params, device, 0, 1).result(device)
    if split is None:
        return parts[0].merge(*parts[1:]).result(device)
    return _join_categories(parts, split, device)


# a process's share of the categories' work may exceed an even share by this factor;
# past it the images are split instead
_CATEGORY_IMBALANCE = 1.25


def _category_split(ref: ReferenceCache, dets: _Detections, params: EvalParams, workers: int) -> list[np.ndarray] | None:
    """Sets of categories (bool over the resolved category list), one per process, with
    about equal work (detections and references), or None when categories are not used
    or cannot be balanced. Heaviest first to the least loaded: the same split every run."""
    if not params.use_cats:
        return None
    _, cat_ids = _resolve_ids(params, ref)
    K = len(cat_ids)
    if workers > K:
        return None
    d_pos = _positions(dets.cat, cat_ids)
    g_pos = _positions(ref.ann_category_ids, cat_ids)
    weight = np.bincount(d_pos[d_pos >= 0], minlength=K)[:K] + np.bincount(g_pos[g_pos >= 0], minlength=K)[:K]
    total = int(weight.sum())
    if total == 0:
        return None
    load = [0] * workers
    owner = np.zeros(K, dtype=np.int64)
    for k in np.argsort(-weight, kind="stable").tolist():
        w = min(range(workers), key=lambda i: (load[i], i))
        owner[k] = w
        load[w] += int(weight[k])
    if max(load) > _CATEGORY_IMBALANCE * total / workers:
        return None
    return [owner == w for w in range(workers)]


def _join_categories(parts: list, split: list[np.ndarray], device: str) -> EvalResult:
    """One result from the processes' results, each category's arrays from its process."""
    from quality.engine.version import ENGINE_VERSION

    precision, recall, scores, p = (np.array(a, copy=True) if i < 3 else a for i, a in enumerate(parts[0]))
    for (pr, rc, sc, _), keep in zip(parts[1:], split[1:], strict=True):
        precision[:, :, keep] = pr[:, :, keep]
        recall[:, keep] = rc[:, keep]
        scores[:, :, keep] = sc[:, :, keep]
    res = EvalResult(precision=precision, recall=recall, scores=scores, stats=[], params=p, engine_version=ENGINE_VERSION, device=device)
    res.stats = [s for _, s in _summarize(res)]
    return res


def _load_detections_rasterizing(dt: Any, ref: ReferenceCache, iou_type: str, workers: int) -> _Detections:
    """:func:`_load_detections`, with the reference's masks rasterized (and checked) in a
    second thread meanwhile when there are cores for it: the compiled rasterizer and the
    results' checks release the interpreter's lock. The errors are those of reading the
    results first, then of the masks, as when the two run one after the other."""
    if iou_type != "segm" or workers < 2 or ref._strings is not None:
        return _load_detections(dt, ref, iou_type)
    import threading

    failure: list[BaseException] = []

    def rasterize() -> None:
        try:
            ref.ensure_masks()
        except BaseException as exc:  # raised in the caller's thread below
            failure.append(exc)

    t = threading.Thread(target=rasterize, name="rasterize reference", daemon=True)
    t.start()
    try:
        dets = _load_detections(dt, ref, iou_type)
    finally:
        t.join()
    if failure:
        raise failure[0]
    return dets


def _device_name(device: str) -> str:
    from quality.engine.iou import resolve_device

    return resolve_device(device)


@dataclass
class _Flat:
    """Everything matching needs, detections and references grouped by cell."""

    K: int
    # detections (kept, rank < max(max_dets)), sorted by (cell, rank)
    d_cell: np.ndarray
    d_kpos: np.ndarray
    d_img_pos: np.ndarray
    d_rank: np.ndarray
    d_score: np.ndarray
    d_area: np.ndarray
    d_id: np.ndarray
    # references, sorted by (cell, order inside the cell)
    g_cell: np.ndarray
    g_kpos: np.ndarray
    g_area: np.ndarray
    g_crowd: np.ndarray
    g_ignore: np.ndarray
    g_id: np.ndarray
    # candidate pairs with their IoU
    pd: np.ndarray
    pg: np.ndarray
    piou: np.ndarray


def _cells(img_pos: np.ndarray, slot: np.ndarray, K: int) -> np.ndarray:
    return img_pos * max(K, 1) + slot


def _build_flat(ref, dets, p: EvalParams, img_ids, cat_ids, device, shard, num_shards, cat_keep=None) -> _Flat:
    use_cats = bool(p.use_cats)
    K = len(cat_ids) if use_cats else 1
    maxdet = max(p.max_dets)
    # references in scope
    g_img = _positions(ref.ann_image_ids, img_ids)
    g_cpos = _positions(ref.ann_category_ids, cat_ids)
    g_sel = (g_img >= 0) & (g_cpos >= 0)
    if num_shards > 1:
        g_sel &= g_img % num_shards == shard
    if cat_keep is not None:
        g_sel &= cat_keep[g_cpos]  # g_cpos -1 rows are already out
    g_idx = np.flatnonzero(g_sel)
    g_img, g_cpos = g_img[g_idx], g_cpos[g_idx]
    g_kpos = g_cpos if use_cats else np.zeros_like(g_cpos)
    g_cell = _cells(g_img, g_kpos, K)
    # g_idx is increasing and the sorts are stable, so file order breaks the ties; with
    # categories the cell holds the category
    order = np.argsort(g_cell, kind="stable") if use_cats else np.lexsort((g_cpos, g_cell))
    g_idx, g_cell, g_kpos = g_idx[order], g_cell[order], g_kpos[order]
    # detections in scope
    d_img = _positions(dets.img, img_ids)
    d_cpos = _positions(dets.cat, cat_ids)
    d_sel = (d_img >= 0) & (d_cpos >= 0)
    if num_shards > 1:
        d_sel &= d_img % num_shards == shard
    if cat_keep is not None:
        d_sel &= cat_keep[d_cpos]
    d_idx = np.flatnonzero(d_sel)
    d_img, d_cpos = d_img[d_idx], d_cpos[d_idx]
    d_kpos = d_cpos if use_cats else np.zeros_like(d_cpos)
    d_cell = _cells(d_img, d_kpos, K)
    score = dets.score[d_idx]
    # as above: file order (d_idx increasing) breaks the ties of the stable sort
    order = np.lexsort((-score, d_cell)) if use_cats else np.lexsort((d_cpos, -score, d_cell))
    d_idx, d_cell, d_kpos, d_img, score = d_idx[order], d_cell[order], d_kpos[order], d_img[order], score[order]
    starts = np.r_[0, np.flatnonzero(d_cell[1:] != d_cell[:-1]) + 1] if len(d_cell) else np.zeros(0, np.int64)
    counts = np.diff(np.r_[starts, len(d_cell)])
    d_rank = np.arange(len(d_cell)) - np.repeat(starts, counts)
    keep = d_rank < maxdet
    d_idx, d_cell, d_kpos, d_img, score, d_rank = (
        d_idx[keep], d_cell[keep], d_kpos[keep], d_img[keep], score[keep], d_rank[keep]
    )

    # detection geometry (every mask passed the gate when the results were read)
    iou_type = p.iou_type
    d_rles = None
    kernels = native.kernels() if dets.strings is not None else None
    if iou_type == "segm" and kernels is not None:
        ref.ensure_masks()
        d_rles = dets.strings.take(d_idx)  # boxes and areas from the same C pass as the check
        d_box = d_rles.box
        d_area = dets.area[d_idx] if dets.branch == "bbox" else d_rles.area.astype(np.float64)
        g_box = ref.rle_box[g_idx]
    elif iou_type == "segm":
        ref.ensure_masks()
        all_rles = _checked_rles(dets)
        d_rles = [all_rles[i] for i in d_idx.tolist()]
        # boxes only where a reference shares the cell (they only prefilter pairs)
        d_box = np.zeros((len(d_idx), 4))
        with_ref = np.flatnonzero(np.isin(d_cell, g_cell))
        if len(with_ref) == len(d_idx):
            d_box = masks.rle_boxes(d_rles)
        elif len(with_ref):
            d_box[with_ref] = masks.rle_boxes([d_rles[i] for i in with_ref.tolist()])
        d_area = dets.area[d_idx] if dets.branch == "bbox" else masks.rle_areas(d_rles).astype(np.float64)
        g_box = ref.rle_box[g_idx]
    else:
        d_box = dets.bbox[d_idx]
        if dets.branch == "segm":  # the mask's area, and its box where none is given
            if kernels is not None:
                dm = dets.strings.take(d_idx)
                m_box, m_area = dm.box, dm.area
            else:
                all_rles = _checked_rles(dets)
                sel = [all_rles[i] for i in d_idx.tolist()]
                m_box, m_area = masks.rle_boxes(sel), masks.rle_areas(sel)
            d_box = np.where(np.isnan(d_box).any(axis=1, keepdims=True), m_box, d_box)
            d_area = np.asarray(m_area, dtype=np.float64)
        else:  # box-branch results carry boxes and areas
            d_area = dets.area[d_idx]
        g_box = ref.ann_bbox[g_idx]
        if np.isnan(g_box).any():
            j = int(g_idx[np.flatnonzero(np.isnan(g_box).any(axis=1))[0]])
            raise EngineInputError("missing_field", "missing 'bbox' (needed for bbox evaluation)", location=f"annotations[{j}]")

    g_crowd = ref.ann_iscrowd[g_idx]
    # candidate pairs: all (d, g) of a cell, then exact box-overlap prefilter
    pd, pg = _cell_pairs(d_cell, g_cell)
    if iou_type == "bbox":
        from quality.engine.iou import box_iou_pairs

        piou = box_iou_pairs(d_box[pd], g_box[pg], g_crowd[pg])
    else:
        from quality.engine.iou import box_overlap

        ov = box_overlap(d_box[pd], g_box[pg])
        pd, pg = pd[ov], pg[ov]
        piou = _mask_ious(ref, g_idx, d_rles, d_area, g_crowd, d_cell, g_cell, pd, pg, device, K)
    thr_min = min(float(np.min(p.iou_thrs)), 1 - 1e-10) if len(p.iou_thrs) else np.inf
    ok = piou >= thr_min
    return _Flat(
        K=K,
        d_cell=d_cell,
        d_kpos=d_kpos,
        d_img_pos=d_img,
        d_rank=d_rank,
        d_score=score,
        d_area=np.asarray(d_area, dtype=np.float64),
        d_id=d_idx + 1,
        g_cell=g_cell,
        g_kpos=g_kpos,
        g_area=ref.ann_area[g_idx],
        g_crowd=g_crowd,
        g_ignore=g_crowd.copy(),  # COCOeval._prepare: ignore = iscrowd
        g_id=ref.ann_ids[g_idx],
        pd=pd[ok],
        pg=pg[ok],
        piou=piou[ok],
    )


def _checked_rles(dets: _Detections) -> list[CheckedRLE]:
    """Every result's mask as a CheckedRLE (the Python path of the IoUs)."""
    if dets.rles is None:
        dets.rles = dets.strings.rles()
    return dets.rles


class _ResLoc:
    def __init__(self, idx: np.ndarray) -> None:
        self.idx = idx

    def __getitem__(self, j: int) -> str:
        return f"results[{int(self.idx[j])}].segmentation"


def _cell_pairs(d_cell: np.ndarray, g_cell: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """All (detection, reference) index pairs sharing a cell (both arrays sorted by cell)."""
    if len(d_cell) == 0 or len(g_cell) == 0:
        z = np.zeros(0, np.int64)
        return z, z
    g_start = np.searchsorted(g_cell, d_cell, side="left")
    g_stop = np.searchsorted(g_cell, d_cell, side="right")
    n = g_stop - g_start
    pd = np.repeat(np.arange(len(d_cell)), n)
    first = np.repeat(g_start, n)
    local = np.arange(len(pd)) - np.repeat(np.cumsum(n) - n, n)
    return pd, first + local


def _mask_ious(ref, g_idx, d_rles, d_area, g_crowd, d_cell, g_cell, pd, pg, device, ref_k) -> np.ndarray:
    if len(pd) == 0:
        return np.zeros(0)
    if isinstance(d_rles, masks.MaskStrings):
        return _mask_ious_strings(ref, g_idx, d_rles, g_crowd, pd, pg, device)
    # only references that take part in a pair need their RLE
    g_need = np.unique(pg)
    if device == "cpu":
        from quality.engine.iou import mask_iou_cells_cpu

        # One C call per image, not per cell: pycocotools' iou() has ~100 us of Python
        # pre-processing per call. Only the masks that take part in a candidate pair go in
        # (the C code decodes and boxes every mask it is given). Cells are img_pos * K + k,
        # so an image's pairs are contiguous.
        Kc = max(int(ref_k), 1)
        pc = d_cell[pd] // Kc
        bounds = np.r_[0, np.flatnonzero(pc[1:] != pc[:-1]) + 1, len(pd)]
        ud = np.unique(pd)
        ug = np.unique(pg)
        cells = pc[bounds[:-1]]
        ud_img = d_cell[ud] // Kc
        ug_img = g_cell[ug] // Kc
        d0 = np.searchsorted(ud_img, cells, "left")
        d1 = np.searchsorted(ud_img, cells, "right")
        g0 = np.searchsorted(ug_img, cells, "left")
        g1 = np.searchsorted(ug_img, cells, "right")
        d_sel = [d_rles[i] for i in ud.tolist()]
        g_sel = ref.rles(g_idx[ug])
        return mask_iou_cells_cpu(
            d_sel,
            g_sel,
            g_crowd[ug],
            list(zip(d0.tolist(), d1.tolist())),
            list(zip(g0.tolist(), g1.tolist())),
            np.searchsorted(ud, pd),
            np.searchsorted(ug, pg),
            bounds,
        )
    from quality.engine.iou import mask_iou_pairs_torch

    tdev = "cpu" if device == "torch-cpu" else device
    d_need = np.unique(pd)
    dmap = np.full(len(d_cell), -1, np.int64)
    dmap[d_need] = np.arange(len(d_need))
    gmap = np.full(len(g_cell), -1, np.int64)
    gmap[g_need] = np.arange(len(g_need))
    dc = masks.rle_counts([d_rles[i] for i in d_need.tolist()])
    gc = masks.rle_counts(ref.rles(g_idx[g_need]))
    g_area_px = ref.rle_area[g_idx[g_need]]
    d_area_px = masks.rle_areas([d_rles[i] for i in d_need.tolist()])
    return mask_iou_pairs_torch(dc, gc, d_area_px, g_area_px, g_crowd[g_need], dmap[pd], gmap[pg], device=tdev)


def _mask_ious_strings(ref, g_idx, d: masks.MaskStrings, g_crowd, pd, pg, device) -> np.ndarray:
    """Pair IoUs from compressed strings: the compiled kernel (decoding on the fly) on the CPU,
    the torch kernel on decoded runs otherwise."""
    kernels = native.kernels()
    g = ref.strings(kernels).take(g_idx)
    pd = np.ascontiguousarray(pd, dtype=np.int64)
    pg = np.ascontiguousarray(pg, dtype=np.int64)
    if device == "cpu":
        out = np.empty(len(pd), dtype=np.float64)
        kernels.pair_ious(
            d.blob, d.start, d.stop, d.escaped, g.blob, g.start, g.stop, g.escaped,
            pd, pg, d.area, g.area, np.ascontiguousarray(g_crowd, dtype=np.uint8), out,
        )
        return out
    from quality.engine.iou import mask_iou_pairs_torch

    tdev = "cpu" if device == "torch-cpu" else device
    d_need, g_need = np.unique(pd), np.unique(pg)
    dmap = np.full(len(d.start), -1, np.int64)
    dmap[d_need] = np.arange(len(d_need))
    gmap = np.full(len(g_idx), -1, np.int64)
    gmap[g_need] = np.arange(len(g_need))
    dn, gn = d.take(d_need), g.take(g_need)
    return mask_iou_pairs_torch(
        masks.torch_counts(kernels, dn), masks.torch_counts(kernels, gn), dn.area, gn.area, g_crowd[g_need], dmap[pd], gmap[pg], device=tdev
    )


# --------------------------------------------------------------------------------------
# evaluate_cells: the core for caller-supplied IoUs


def evaluate_cells(
    cells: Iterable[Cell],
    *,
    params: EvalParams,
    cat_ids: Sequence[int],
    img_ids: Sequence[int],
) -> EvalResult:
    """Match and accumulate caller-supplied cells (see :class:`Cell` for the order contract).

    ``cat_ids``/``img_ids`` play COCOeval's ``params.catIds``/``params.imgIds`` (they are
    uniqued and sorted as COCOeval does; with ``use_cats=False`` the category list only
    sizes nothing: K is 1). Cells of other images/categories are skipped.
    """
    return evaluate_cells_state(cells, params=params, cat_ids=cat_ids, img_ids=img_ids).result()


def evaluate_cells_state(cells: Iterable[Cell], *, params: EvalParams, cat_ids, img_ids) -> EvalState:
    params.validate()
    img_arr = np.unique(np.asarray(list(img_ids), dtype=np.int64))
    cat_arr = np.unique(np.asarray(list(cat_ids), dtype=np.int64)) if params.use_cats else np.asarray(list(cat_ids), dtype=np.int64)
    rp = EvalParams(**{f.name: getattr(params, f.name) for f in fields(params)})
    rp.img_ids, rp.cat_ids, rp.max_dets = img_arr.tolist(), cat_arr.tolist(), tuple(sorted(params.max_dets))
    use_cats = bool(params.use_cats)
    K = len(cat_arr) if use_cats else 1
    maxdet = max(rp.max_dets)
    thr_min = min(float(np.min(rp.iou_thrs)), 1 - 1e-10) if len(rp.iou_thrs) else np.inf
    acc: dict[str, list] = {k: [] for k in ("dc", "dk", "di", "dr", "ds", "da", "did", "gc", "gk", "ga", "gcr", "gig", "gid", "pd", "pg", "pi")}
    nd = ng = 0
    items = []
    for c in cells:
        ip = _positions(np.array([c.img_id], np.int64), img_arr)[0]
        kp = _positions(np.array([c.cat_id], np.int64), cat_arr)[0] if use_cats else 0
        if ip < 0 or kp < 0:
            continue
        items.append((int(ip) * max(K, 1) + int(kp), int(ip), int(kp), c))
    items.sort(key=lambda t: t[0])
    for cell_key, ip, kp, c in items:
        scores = np.asarray(c.dt_scores, dtype=np.float64)
        D, G = len(scores), len(c.gt_ids)
        order = np.argsort(-scores, kind="mergesort")[:maxdet]
        acc["dc"].append(np.full(len(order), cell_key))
        acc["dk"].append(np.full(len(order), kp))
        acc["di"].append(np.full(len(order), ip))
        acc["dr"].append(np.arange(len(order)))
        acc["ds"].append(scores[order])
        acc["da"].append(np.asarray(c.dt_area, dtype=np.float64)[order])
        acc["did"].append(np.asarray(c.dt_ids)[order])
        acc["gc"].append(np.full(G, cell_key))
        acc["gk"].append(np.full(G, kp))
        acc["ga"].append(np.asarray(c.gt_area, dtype=np.float64))
        acc["gcr"].append(np.asarray(c.gt_crowd, dtype=bool))
        acc["gig"].append(np.asarray(c.gt_ignore_flag, dtype=bool))
        acc["gid"].append(np.asarray(c.gt_ids))
        if D and G:
            m = np.asarray(c.ious, dtype=np.float64).reshape(D, G)[order]
            r, q = np.nonzero(m >= thr_min)
            acc["pd"].append(nd + r)
            acc["pg"].append(ng + q)
            acc["pi"].append(m[r, q])
        nd += len(order)
        ng += G

    def cat(k, dtype):
        return np.concatenate(acc[k]).astype(dtype) if acc[k] else np.zeros(0, dtype)

    flat = _Flat(
        K=K,
        d_cell=cat("dc", np.int64),
        d_kpos=cat("dk", np.int64),
        d_img_pos=cat("di", np.int64),
        d_rank=cat("dr", np.int64),
        d_score=cat("ds", np.float64),
        d_area=cat("da", np.float64),
        d_id=cat("did", np.float64),
        g_cell=cat("gc", np.int64),
        g_kpos=cat("gk", np.int64),
        g_area=cat("ga", np.float64),
        g_crowd=cat("gcr", bool),
        g_ignore=cat("gig", bool),
        g_id=cat("gid", np.float64),
        pd=cat("pd", np.int64),
        pg=cat("pg", np.int64),
        piou=cat("pi", np.float64),
    )
    return _state_from_flat(rp, flat)


# --------------------------------------------------------------------------------------
# matching


def _state_from_flat(p: EvalParams, f: _Flat) -> EvalState:
    thrs = np.asarray(p.iou_thrs, dtype=np.float64)
    T = len(thrs)
    A = len(p.area_rng)
    N = len(f.d_cell)
    thr_eff = np.minimum(thrs, 1 - 1e-10)
    matched = np.zeros((A, T, N), dtype=bool)
    ignored = np.zeros((A, T, N), dtype=bool)
    npig = np.zeros((f.K, A), dtype=np.int64)
    d_pos_id = f.d_id > 0
    nk = native.kernels()
    for a, (lo, hi) in enumerate(p.area_rng):
        g_ig = f.g_ignore | (f.g_area < lo) | (f.g_area > hi)
        npig[:, a] = np.bincount(f.g_kpos[~g_ig], minlength=f.K)[: f.K]
        if nk is not None:
            continue  # the compiled kernel matches all area ranges below
        match_g = _match(f, g_ig, thr_eff, d_pos_id)
        has = match_g >= 0
        mg = np.where(has, match_g, 0)
        real = has & (f.g_id[mg] != 0) if len(f.g_id) else has
        ig = has & g_ig[mg] if len(g_ig) else has
        out = (f.d_area < lo) | (f.d_area > hi)
        ig |= ~real & out[None, :]
        matched[a] = real
        ignored[a] = ig
    if nk is not None:
        # the same greedy rule, one detection at a time; a detection's pairs are
        # pg/piou[pair_start[d]:pair_start[d + 1]] (pairs are sorted by (pd, pg))
        def arr(x, dtype=np.float64):
            return np.ascontiguousarray(x, dtype=dtype)

        nk.match(
            arr(np.asarray(p.area_rng, dtype=np.float64).reshape(A, 2)),
            arr(thr_eff),
            arr(f.d_area),
            arr(d_pos_id, bool),
            arr(np.searchsorted(f.pd, np.arange(N + 1)), np.int64),
            arr(f.pg, np.int64),
            arr(f.piou),
            arr(f.g_area),
            arr(f.g_ignore, bool),
            arr(f.g_crowd, bool),
            arr(f.g_id != 0, bool),
            matched,
            ignored,
        )
    return EvalState(
        params=p,
        det_kpos=f.d_kpos,
        det_img_pos=f.d_img_pos,
        det_rank=f.d_rank,
        det_score=f.d_score,
        matched=matched,
        ignored=ignored,
        npig=npig,
    )


def _match(f: _Flat, g_ig: np.ndarray, thr_eff: np.ndarray, d_pos_id: np.ndarray) -> np.ndarray:
    """Greedy COCO matching for all cells at once. Returns [T, N] reference index or -1."""
    T = len(thr_eff)
    N = len(f.d_cell)
    match_g = np.full((T, N), -1, dtype=np.int64)
    if len(f.pd) == 0 or T == 0:
        return match_g
    pd, pg, iou = f.pd, f.pg, f.piou
    rank = f.d_rank[pd]
    # in each detection's group, the pick is the LAST valid pair in this order:
    # ignored refs first (so a real one wins), then by IoU, then by position (last wins)
    order = np.lexsort((pg, iou, ~g_ig[pg], pd, rank))
    pd, pg, iou, rank = pd[order], pg[order], iou[order], rank[order]
    avail = np.ones((T, len(f.g_cell)), dtype=bool)
    crowd = f.g_crowd
    rb = np.r_[0, np.flatnonzero(rank[1:] != rank[:-1]) + 1, len(rank)]
    ar_cache = np.arange(len(pd))
    for s, e in zip(rb[:-1].tolist(), rb[1:].tolist()):
        gp = pg[s:e]
        dd = pd[s:e]
        valid = (iou[s:e][None, :] >= thr_eff[:, None]) & avail[:, gp]
        if not valid.any():
            continue
        starts = np.r_[0, np.flatnonzero(dd[1:] != dd[:-1]) + 1]
        idx = np.where(valid, ar_cache[: e - s][None, :], -1)
        last = np.maximum.reduceat(idx, starts, axis=1)  # [T, n_dets]
        t_i, j_i = np.nonzero(last >= 0)
        pick = last[t_i, j_i]
        g = gp[pick]
        d = dd[starts[j_i]]
        match_g[t_i, d] = g
        take = ~crowd[g] & d_pos_id[d]
        avail[t_i[take], g[take]] = False
    return match_g


# --------------------------------------------------------------------------------------
# accumulate + summarize


def _accumulate(st: EvalState, device: str = "cpu") -> EvalResult:
    from quality.engine.version import ENGINE_VERSION

    p = st.params
    T, R = len(p.iou_thrs), len(p.rec_thrs)
    K = len(p.cat_ids) if p.use_cats else 1
    A, M = len(p.area_rng), len(p.max_dets)
    precision = -np.ones((T, R, K, A, M))
    recall = -np.ones((T, K, A, M))
    scores = -np.ones((T, R, K, A, M))
    rec_thrs = np.asarray(p.rec_thrs)
    eps = np.spacing(1)
    order = _accumulation_order(st, K)
    kpos = st.det_kpos[order]
    kb = np.searchsorted(kpos, np.arange(K + 1))
    nk = native.kernels()
    if nk is not None:
        # the same loops compiled; the order array replaces permuting [A, T, N]
        nk.accumulate(
            T,
            A,
            np.ascontiguousarray(order, dtype=np.int64),
            np.ascontiguousarray(kb, dtype=np.int64),
            np.ascontiguousarray(st.det_rank, dtype=np.int64),
            np.ascontiguousarray(st.det_score, dtype=np.float64),
            np.ascontiguousarray(st.matched, dtype=bool),
            np.ascontiguousarray(st.ignored, dtype=bool),
            np.ascontiguousarray(st.npig, dtype=np.int64),
            np.asarray(p.max_dets, dtype=np.int64),
            np.ascontiguousarray(rec_thrs, dtype=np.float64),
            precision,
            recall,
            scores,
        )
    else:
        for k in range(K):
            if not (st.npig[k] > 0).any():
                continue
            sl = order[kb[k] : kb[k + 1]]
            rank_k = st.det_rank[sl]
            score_k = st.det_score[sl]
            mk = st.matched[:, :, sl]
            ik = st.ignored[:, :, sl]
            for m, max_det in enumerate(p.max_dets):
                sel = rank_k < max_det
                if sel.all():
                    mm, ii, ss_all = mk, ik, score_k
                else:
                    mm, ii, ss_all = mk[:, :, sel], ik[:, :, sel], score_k[sel]
                nd = ss_all.shape[0]
                a_use = [a for a in range(A) if int(st.npig[k, a]) != 0]
                if not a_use:
                    continue
                if len(a_use) < A:
                    mm, ii = mm[a_use], ii[a_use]
                # integer counts as float64, exactly pycocotools' cumsum(...).astype(float)
                tp_sum = np.cumsum(mm & ~ii, axis=2, dtype=np.float64)
                fp_sum = np.cumsum(~(mm | ii), axis=2, dtype=np.float64)
                for j, a in enumerate(a_use):
                    npig = int(st.npig[k, a])
                    tp = tp_sum[j]
                    fp = fp_sum[j]
                    rc = tp / npig
                    pr = tp / (fp + tp + eps)
                    if nd:
                        recall[:, k, a, m] = rc[:, -1]
                        pr = np.maximum.accumulate(pr[:, ::-1], axis=1)[:, ::-1]
                    else:
                        recall[:, k, a, m] = 0
                        precision[:, :, k, a, m] = 0
                        scores[:, :, k, a, m] = 0
                        continue
                    inds = np.empty((T, R), dtype=np.int64)
                    for t in range(T):
                        inds[t] = np.searchsorted(rc[t], rec_thrs, side="left")
                    ok = inds < nd
                    ic = np.where(ok, inds, 0)
                    precision[:, :, k, a, m] = np.where(ok, np.take_along_axis(pr, ic, axis=1), 0.0)
                    scores[:, :, k, a, m] = np.where(ok, ss_all[ic], 0.0)
    res = EvalResult(
        precision=precision,
        recall=recall,
        scores=scores,
        stats=[],
        params=p,
        engine_version=ENGINE_VERSION,
        device=device,
    )
    res.stats = [s for _, s in _summarize(res)]
    return res


def _accumulation_order(st: EvalState, K: int) -> np.ndarray:
    """Detections by category, then score (highest first), then image and rank: the order in
    which COCOeval concatenates and stably sorts them. A state in cell order (image, then
    category, then rank: one run, or whole categories) needs only the stable sort by category
    and score; a merge of image shards is sorted on all four keys."""
    n = len(st.det_kpos)
    if n > 1:
        cell = st.det_img_pos * max(K, 1) + st.det_kpos
        step, rank_step = np.diff(cell), np.diff(st.det_rank)
        if ((step > 0) | ((step == 0) & (rank_step > 0))).all():
            return np.lexsort((-st.det_score, st.det_kpos))
    return np.lexsort((st.det_rank, st.det_img_pos, -st.det_score, st.det_kpos))


def _summarize(res: EvalResult) -> list[tuple[str, float]]:
    p = res.params
    md = list(p.max_dets)

    def one(ap: int = 1, iou_thr: float | None = None, area: str = "all", max_dets: int | None = 100) -> tuple[str, float]:
        i_str = " {:<18} {} @[ IoU={:<9} | area={:>6s} | maxDets={:>3d} ] = {:0.3f}"
        title = "Average Precision" if ap == 1 else "Average Recall"
        type_str = "(AP)" if ap == 1 else "(AR)"
        thrs = np.asarray(p.iou_thrs)
        iou_str = f"{thrs[0]:0.2f}:{thrs[-1]:0.2f}" if iou_thr is None else f"{iou_thr:0.2f}"
        aind = [i for i, lbl in enumerate(p.area_rng_lbl) if lbl == area]
        mind = [i for i, m in enumerate(md) if m == max_dets]
        if ap == 1:
            s = res.precision
            if iou_thr is not None:
                s = s[np.where(iou_thr == thrs)[0]]
            s = s[:, :, :, aind, mind]
        else:
            s = res.recall
            if iou_thr is not None:
                s = s[np.where(iou_thr == thrs)[0]]
            s = s[:, :, aind, mind]
        mean_s = -1 if len(s[s > -1]) == 0 else np.mean(s[s > -1])
        return i_str.format(title, type_str, iou_str, area, -1 if max_dets is None else max_dets, mean_s), float(mean_s)

    def m(i: int) -> int | None:
        return md[i] if i < len(md) else None

    return [
        one(1),
        one(1, iou_thr=0.5, max_dets=m(2)),
        one(1, iou_thr=0.75, max_dets=m(2)),
        one(1, area="small", max_dets=m(2)),
        one(1, area="medium", max_dets=m(2)),
        one(1, area="large", max_dets=m(2)),
        one(0, max_dets=m(0)),
        one(0, max_dets=m(1)),
        one(0, max_dets=m(2)),
        one(0, area="small", max_dets=m(2)),
        one(0, area="medium", max_dets=m(2)),
        one(0, area="large", max_dets=m(2)),
    ]


def timed_evaluate(gt: Any, dt: Any, **kw: Any) -> tuple[EvalResult, float]:
    t0 = time.perf_counter()
    r = evaluate(gt, dt, **kw)
    return r, time.perf_counter() - t0
