"""Video instance segmentation AP equal to the YouTube-VIS evaluation (``YTVOSeval``, segm).

The YouTube-VIS fork of the COCO API differs from COCOeval in what it feeds the matching:

- one "image" is a video; an instance is a track with one mask (or null) per frame;
- IoU is spatio-temporal: over the frames, the sum of intersections over the sum of
  unions (a frame where only one side has a mask adds that mask to the union); crowd
  references get no special IoU, only the usual crowd rules in matching;
- an instance's area is the mean of its non-null, non-zero per-frame areas (reference
  areas from the JSON ``areas``, result areas counted from the masks);
- ``maxDets`` are [1, 10, 100] and the area ranges [0, 1e5^2], [0, 128^2],
  [128^2, 256^2], [256^2, 1e5^2].

The per-(video, category) IoUs are built here and handed, as ``Cell``s with video ids as
image ids, to the engine's COCO evaluator (``evaluate_cells``), whose matching and
accumulation are COCOeval's, as YTVOSeval's are. The 12 stats are then summarised in
YTVOSeval's order.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from quality.engine import gate, masks
from quality.engine.errors import EngineInputError
from quality.engine.gate import CheckedRLE
from quality.engine.reports import VideoAP

YTVIS_MAX_DETS = [1, 10, 100]
YTVIS_AREA_RNG = [[0**2, 1e5**2], [0**2, 128**2], [128**2, 256**2], [256**2, 1e5**2]]
YTVIS_AREA_LBL = ["all", "small", "medium", "large"]


@dataclass(kw_only=True)
class VideoTrack:
    """One instance through a video: ``masks[f]`` is a checked mask or None."""

    id: int
    key: str
    video_id: int
    category_id: int
    masks: list[CheckedRLE | None]
    avg_area: float
    iscrowd: int = 0
    score: float = 1.0


def frame_masks(segmentations: Any, h: int, w: int, where: str) -> list[CheckedRLE | None]:
    """One checked mask per frame (None where the frame has none: null or missing), the
    frames at ``where[f]``."""
    if not isinstance(segmentations, list):
        raise EngineInputError("wrong_type", "segmentations must be a list (one entry per frame)", location=where)
    present = [f for f, seg in enumerate(segmentations) if seg]
    rles = masks.to_rles([segmentations[f] for f in present], [h] * len(present), [w] * len(present), locations=[f"{where}[{f}]" for f in present])
    out: list[CheckedRLE | None] = [None] * len(segmentations)
    for f, r in zip(present, rles):
        out[f] = r
    return out


def _avg_area(areas: list) -> float:
    # YTVOSeval: mean of the truthy per-frame areas (null and 0 left out), 0 when none.
    kept = [a for a in areas if a]
    return float(np.array(kept).mean()) if kept else 0


def ytvis_videos(gt: dict) -> dict[int, dict]:
    """``video id -> video``; every video's frame size within the gate's bounds."""
    if not isinstance(gt, dict) or not isinstance(gt.get("videos"), list):
        raise EngineInputError("missing_field", "YouTube-VIS JSON has no 'videos' list", location="videos")
    for i, v in enumerate(gt["videos"]):
        if not isinstance(v, dict) or "id" not in v:
            raise EngineInputError("missing_field", "a video needs an id", location=f"videos[{i}]")
        issue = gate.dims_issue(v.get("height"), v.get("width"), f"videos[{i}]")
        if issue is not None:
            raise issue.error()
    return {v["id"]: v for v in gt["videos"]}


def reference_tracks(gt: dict) -> list[VideoTrack]:
    """Reference tracks of a YouTube-VIS JSON (areas from its ``areas``)."""
    videos = ytvis_videos(gt)
    tracks = []
    for index, ann in enumerate(gt.get("annotations", [])):
        video = videos.get(ann["video_id"])
        if video is None:
            raise EngineInputError("unknown_video", f"video {ann['video_id']} is not in 'videos'", location=f"annotations[{index}]")
        h, w = int(video["height"]), int(video["width"])
        frames = frame_masks(ann.get("segmentations"), h, w, f"annotations[{index}].segmentations")
        areas = ann.get("areas") or [float(masks.area(m)) if m else None for m in frames]
        tracks.append(
            VideoTrack(
                id=ann.get("id", index + 1),
                key=str(ann.get("id", index + 1)),
                video_id=ann["video_id"],
                category_id=ann["category_id"],
                masks=frames,
                avg_area=_avg_area(areas),
                iscrowd=int(ann.get("iscrowd", 0)),
            )
        )
    return tracks


def result_tracks(results: list[dict], videos: dict[int, dict]) -> list[VideoTrack]:
    """Result tracks (ids 1..n in file order, areas counted from the masks, as YTVOS ``loadRes``)."""
    if not isinstance(results, list):
        raise EngineInputError("invalid_results", "YouTube-VIS results must be a JSON list", location="results")
    tracks = []
    for index, res in enumerate(results):
        video = videos.get(res.get("video_id"))
        if video is None:
            raise EngineInputError(
                "unknown_video", f"result for video {res.get('video_id')} not in the reference", location=f"results[{index}]"
            )
        h, w = int(video["height"]), int(video["width"])
        frames = frame_masks(res.get("segmentations", []), h, w, f"results[{index}].segmentations")
        tracks.append(
            VideoTrack(
                id=index + 1,
                key=f"r{index + 1}",
                video_id=res["video_id"],
                category_id=res["category_id"],
                masks=frames,
                avg_area=_avg_area([float(masks.area(m)) if m else None for m in frames]),
                score=float(res.get("score", 1.0)),
            )
        )
    return tracks


def spatio_temporal_iou(d: list[CheckedRLE | None], g: list[CheckedRLE | None]) -> float:
    """Sum of per-frame intersections over sum of unions (frames zipped as YTVOSeval zips them)."""
    inter = union = 0  # zip truncates to the shorter sequence, as YTVOSeval does
    for dm, gm in zip(d, g, strict=False):
        if dm and gm:
            i = masks.area(masks.merge([dm, gm], intersect=True))
            inter += i
            union += masks.area(dm) + masks.area(gm) - i
        elif gm:
            union += masks.area(gm)
        elif dm:
            union += masks.area(dm)
    # Integer sums are exact, so this equals YTVOSeval's float accumulation.
    return inter / union if union > 0 else 0.0


def ytvis_params(cat_ids: list[int], video_ids: list[int]):
    from quality.engine.cocoeval import EvalParams

    return EvalParams(
        iou_type="segm",
        max_dets=list(YTVIS_MAX_DETS),
        area_rng=[list(r) for r in YTVIS_AREA_RNG],
        area_rng_lbl=list(YTVIS_AREA_LBL),
        cat_ids=list(cat_ids),
        img_ids=list(video_ids),
    )


def video_cells(gts: list[VideoTrack], dts: list[VideoTrack], *, cat_ids: list[int], video_ids: list[int], max_det: int = 100):
    """One ``Cell`` per (video, category) holding tracks, as YTVOSeval's ``computeIoU`` prepares them."""
    from quality.engine.cocoeval import Cell

    cats, vids = set(cat_ids), set(video_ids)
    g_by: dict[tuple[int, int], list[VideoTrack]] = {}
    d_by: dict[tuple[int, int], list[VideoTrack]] = {}
    for t in gts:
        if t.video_id in vids and t.category_id in cats:
            g_by.setdefault((t.video_id, t.category_id), []).append(t)
    for t in dts:
        if t.video_id in vids and t.category_id in cats:
            d_by.setdefault((t.video_id, t.category_id), []).append(t)
    cells = []
    for key in sorted(set(g_by) | set(d_by)):
        g = g_by.get(key, [])
        d = d_by.get(key, [])
        order = np.argsort([-t.score for t in d], kind="mergesort")[:max_det]
        d = [d[i] for i in order]
        ious = np.zeros((len(d), len(g)), dtype=np.float64)
        for i, dt in enumerate(d):
            for j, gt in enumerate(g):
                ious[i, j] = spatio_temporal_iou(dt.masks, gt.masks)
        crowd = np.array([bool(t.iscrowd) for t in g], dtype=bool)
        cells.append(
            Cell(
                img_id=key[0],
                cat_id=key[1],
                ious=ious,
                gt_ids=np.array([t.id for t in g], dtype=np.int64),
                gt_area=np.array([t.avg_area for t in g], dtype=np.float64),
                gt_crowd=crowd,
                gt_ignore_flag=crowd.copy(),
                dt_ids=np.array([t.id for t in d], dtype=np.int64),
                dt_scores=np.array([t.score for t in d], dtype=np.float64),
                dt_area=np.array([t.avg_area for t in d], dtype=np.float64),
            )
        )
    return cells


def summarize_ytvis(precision: np.ndarray, recall: np.ndarray, iou_thrs) -> list[float]:
    """YTVOSeval ``summarize`` (segm): 12 stats, -1 where nothing was defined."""
    iou_thrs = np.asarray(iou_thrs)
    lbl = {name: i for i, name in enumerate(YTVIS_AREA_LBL)}
    mdet = {m: i for i, m in enumerate(YTVIS_MAX_DETS)}

    def one(ap: bool, iou: float | None = None, area: str = "all", max_dets: int = 100) -> float:
        s = precision if ap else recall
        if iou is not None:
            s = s[np.where(iou == iou_thrs)[0]]
        s = s[:, :, :, lbl[area], mdet[max_dets]] if ap else s[:, :, lbl[area], mdet[max_dets]]
        valid = s[s > -1]
        return float(np.mean(valid)) if valid.size else -1.0

    return [
        one(True),
        one(True, iou=0.5),
        one(True, iou=0.75),
        one(True, area="small"),
        one(True, area="medium"),
        one(True, area="large"),
        one(False, max_dets=1),
        one(False, max_dets=10),
        one(False, max_dets=100),
        one(False, area="small"),
        one(False, area="medium"),
        one(False, area="large"),
    ]


def video_ap(gt: dict, gts: list[VideoTrack], dts: list[VideoTrack]) -> tuple[VideoAP, Any]:
    """Video AP of ``dts`` against ``gts``; returns the report part and the raw ``EvalResult``."""
    from quality.engine.cocoeval import evaluate_cells

    video_ids = sorted(ytvis_videos(gt)) if "videos" in gt else sorted({t.video_id for t in gts})
    cat_ids = sorted(c["id"] for c in gt.get("categories", [])) or sorted({t.category_id for t in gts})
    params = ytvis_params(cat_ids, video_ids)
    cells = video_cells(gts, dts, cat_ids=cat_ids, video_ids=video_ids, max_det=YTVIS_MAX_DETS[-1])
    result = evaluate_cells(cells, params=params, cat_ids=cat_ids, img_ids=video_ids)
    precision = np.asarray(result.precision)
    stats = summarize_ytvis(precision, np.asarray(result.recall), params.iou_thrs)
    per_cat = {}
    for k, c in enumerate(cat_ids):
        p = precision[:, :, k, 0, -1]
        per_cat[str(c)] = float(np.mean(p[p > -1])) if (p > -1).any() else None
    return VideoAP(stats=stats, per_category_ap=per_cat, n_videos=len(video_ids)), result


def ytvis_as_coco(data: dict) -> dict:
    """A YouTube-VIS file as COCO with tracks: one image per frame (ids counted in video
    order, each with ``video_id``, ``frame_index`` and ``file_name``) and one annotation
    per non-null mask (ids counted in track order, ``track_id`` the track's id), so the
    checks of COCO files (intrinsic) read video tracks too. Masks are passed as they are:
    the caller's checks gate them."""
    videos = ytvis_videos(data)
    images, frame_ids = [], {}
    for vid, video in videos.items():
        names = video.get("file_names") if isinstance(video.get("file_names"), list) else [None] * int(video.get("length") or 0)
        for f, name in enumerate(names):
            frame_ids[(vid, f)] = len(images) + 1
            images.append({"id": len(images) + 1, "video_id": vid, "frame_index": f, "file_name": name or "", "height": video["height"], "width": video["width"]})
    annotations = []
    for index, ann in enumerate(data.get("annotations", [])):
        segs = ann.get("segmentations")
        if not isinstance(segs, list):
            raise EngineInputError("wrong_type", "segmentations must be a list (one entry per frame)", location=f"annotations[{index}].segmentations")
        areas = ann.get("areas") if isinstance(ann.get("areas"), list) else []
        for f, seg in enumerate(segs):
            if seg is None:
                continue
            image_id = frame_ids.get((ann.get("video_id"), f))
            if image_id is None:
                raise EngineInputError("unknown_video", f"frame {f} of video {ann.get('video_id')} is not in 'videos'", location=f"annotations[{index}].segmentations[{f}]")
            out = {"id": len(annotations) + 1, "image_id": image_id, "category_id": ann.get("category_id"), "segmentation": seg, "iscrowd": int(ann.get("iscrowd", 0)), "track_id": ann.get("id", index + 1)}
            if f < len(areas) and areas[f] is not None:
                out["area"] = areas[f]
            annotations.append(out)
    return {"images": images, "annotations": annotations, "categories": data.get("categories", [])}
