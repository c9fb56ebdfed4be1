"""Video audit: a seller's tracks against an auditor's reference tracks on sampled clips.

The platform samples clips (a run of consecutive frames in several videos); the auditor
annotates those frames as YouTube-VIS JSON, each track's ``segmentations`` holding one
entry per frame of the video (masks at the sampled frames, null elsewhere). Both sides are
clipped to the sampled frames, then:

- per sampled frame, reference and seller masks are matched one-to-one per category
  (Hungarian, :mod:`quality.engine.matching`); a pair counts at IoU >= 0.5. Mask IoU
  (mean over matched pairs), instance recall and precision, boundary IoU of the matched
  pairs, with percentile-bootstrap intervals that resample clips (frames of one clip are
  not independent);
- ID switches and fragmentations of the seller's tracks along the reference tracks
  (:func:`quality.engine.temporal.identity_errors`);
- video AP: the YouTube-VIS evaluation (:mod:`quality.engine.ytvis`) of the seller's
  tracks as detections, each scoring its ``score`` or 1.0 (seller annotations carry no
  confidence; ``scores_assumed`` says so), over the sampled clips.

Crowd tracks take no part in the matching; reference crowds are ignore regions for AP.
The seller's file is YouTube-VIS JSON or COCO JSON with ``video_id``, a frame index and
``track_id`` (frames ordered by their index, as :mod:`quality.engine.temporal` reads them).
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np

from quality.engine import masks
from quality.engine.bootstrap import bootstrap_indices, interval_from_draws, ratio_draws
from quality.engine.boundary import boundary_iou
from quality.engine.errors import EngineInputError
from quality.engine.matching import MATCH_IOU, match_image
from quality.engine.reports import ClipRow, VideoAuditReport
from quality.engine.temporal import _read, coco_video_tracks, identity_errors, is_ytvis
from quality.engine.tiers import tier_for
from quality.engine.ytvis import VideoTrack, _avg_area, reference_tracks, video_ap, ytvis_videos


def restrict_to_videos(data: dict, video_ids: set[int]) -> dict:
    """``data`` (YouTube-VIS or COCO with tracks) with only the videos ``video_ids``."""
    if is_ytvis(data):
        return {
            **data,
            "videos": [v for v in data["videos"] if isinstance(v, dict) and v.get("id") in video_ids],
            "annotations": [a for a in data.get("annotations", []) if isinstance(a, dict) and a.get("video_id") in video_ids],
        }
    images = [img for img in data.get("images", []) if isinstance(img, dict) and img.get("video_id") in video_ids]
    kept = {img.get("id") for img in images}
    return {**data, "images": images, "annotations": [a for a in data.get("annotations", []) if isinstance(a, dict) and a.get("image_id") in kept]}


def _video_length(video: dict) -> int:
    names = video.get("file_names")
    return len(names) if isinstance(names, list) else int(video.get("length", 0))


def seller_tracks(seller: dict) -> tuple[dict[int, dict], list[VideoTrack], bool]:
    """``(videos, tracks, scores_assumed)`` of the seller's file; a track scores its
    annotation's ``score``, else 1.0."""
    if is_ytvis(seller):
        videos = {vid: {**v, "length": _video_length(v)} for vid, v in ytvis_videos(seller).items()}
        tracks = reference_tracks(seller)
        anns = seller.get("annotations", [])
        for track, ann in zip(tracks, anns, strict=True):
            track.score = float(ann.get("score", 1.0))
        return videos, tracks, any("score" not in a for a in anns)
    if isinstance(seller, dict) and isinstance(seller.get("annotations"), list):
        videos, tracks = coco_video_tracks(seller)
        return videos, tracks, any("score" not in a for a in seller["annotations"])
    raise EngineInputError("unknown_format", "seller annotations: neither YouTube-VIS nor COCO JSON with tracks", location="annotations")


def _clipped(track: VideoTrack, frames: set[int]) -> VideoTrack | None:
    """The track with masks at ``frames`` only (None when it has none there); its area is
    then the clip's, as the YouTube-VIS evaluation counts a result's area."""
    kept = [m if f in frames else None for f, m in enumerate(track.masks)]
    if not any(kept):
        return None
    if all(k is m for k, m in zip(kept, track.masks, strict=True)):
        return track  # nothing left out: the area stays as given (a reference's ``areas``)
    return replace(track, masks=kept, avg_area=_avg_area([float(masks.area(m)) if m else None for m in kept]))


def _check_videos(ref_videos: dict[int, dict], sel_videos: dict[int, dict]) -> None:
    for vid, video in sorted(ref_videos.items()):
        mine = sel_videos.get(vid)
        if mine is None:
            raise EngineInputError("unknown_video", f"video {vid} of the reference is not in the seller's annotations", location=f"videos id {vid}")
        if (int(video["height"]), int(video["width"])) != (int(mine["height"]), int(mine["width"])):
            raise EngineInputError("size_mismatch", f"video {vid}: the reference's frame size differs from the seller's", location=f"videos id {vid}")
        if _video_length(video) != int(mine["length"]):
            raise EngineInputError(
                "frame_count_mismatch",
                f"video {vid}: {_video_length(video)} frames in the reference, {mine['length']} in the seller's annotations",
                location=f"videos id {vid}",
            )


def video_audit_compare(
    reference: str | Path | dict,
    seller: str | Path | dict,
    *,
    clips: dict[int, list[int]] | None = None,
    seed: int = 0,
    n_boot: int = 1000,
    match_iou: float = MATCH_IOU,
    dilation_ratio: float = 0.02,
) -> VideoAuditReport:
    """Compare the seller's tracks with the reference tracks on ``clips`` (video id ->
    sampled frame indices; default: every frame of every reference video)."""
    ref = _read(reference, "reference")
    if not is_ytvis(ref):
        raise EngineInputError("unknown_format", "the reference must be YouTube-VIS JSON (a 'videos' list)", location="videos")
    ref_videos = ytvis_videos(ref)
    if not ref_videos:
        raise EngineInputError("empty_sample", "the reference has no videos to audit", location="videos")
    if clips is None:
        clips = {vid: list(range(_video_length(v))) for vid, v in ref_videos.items()}
    unknown = sorted(set(clips) - set(ref_videos))
    if unknown:
        raise EngineInputError("unknown_video", f"sampled video {unknown[0]} is not in the reference", location="videos")
    sel_videos, sel_all, scores_assumed = seller_tracks(restrict_to_videos(_read(seller, "seller annotations"), set(ref_videos)))
    _check_videos(ref_videos, sel_videos)
    sampled = {vid: set(frames) for vid, frames in clips.items()}
    refs = [c for t in reference_tracks(ref) if (c := _clipped(t, sampled.get(t.video_id, set())))]
    subs = [c for t in sel_all if (c := _clipped(t, sampled.get(t.video_id, set())))]

    rows: list[ClipRow] = []
    per_clip: list[tuple[list[float], list[float], int, int]] = []
    for vid in sorted(clips):
        ious: list[float] = []
        boundary: list[float] = []
        n_ref = n_sel = 0
        for f in sorted(sampled[vid]):
            a = [t for t in refs if t.video_id == vid and not t.iscrowd and f < len(t.masks) and t.masks[f]]
            b = [t for t in subs if t.video_id == vid and not t.iscrowd and f < len(t.masks) and t.masks[f]]
            n_ref, n_sel = n_ref + len(a), n_sel + len(b)
            matching = match_image(
                [{"id": t.key, "category_id": t.category_id} for t in a],
                [{"id": t.key, "category_id": t.category_id} for t in b],
                [t.masks[f] for t in a],
                [t.masks[f] for t in b],
                image_id=f,
            )
            for pair in matching.matched(match_iou):
                ious.append(pair.iou)
                am = masks.decode(a[pair.a_index].masks[f]).astype(bool)
                bm = masks.decode(b[pair.b_index].masks[f]).astype(bool)
                boundary.append(boundary_iou(am, bm, dilation_ratio=dilation_ratio))
        per_clip.append((ious, boundary, n_ref, n_sel))
        rows.append(
            ClipRow(
                video_id=vid,
                n_frames=len(sampled[vid]),
                n_reference=n_ref,
                n_seller=n_sel,
                n_matched=len(ious),
                mean_iou=float(np.mean(ious)) if ious else None,
                boundary_iou=float(np.mean(boundary)) if boundary else None,
            )
        )
    all_ious = [v for c in per_clip for v in c[0]]
    all_boundary = [v for c in per_clip for v in c[1]]
    n_ref_all, n_sel_all = sum(c[2] for c in per_clip), sum(c[3] for c in per_clip)
    point: dict[str, Any] = {
        "mask_iou": float(np.mean(all_ious)) if all_ious else None,
        "median_iou": float(np.median(all_ious)) if all_ious else None,
        "instance_recall": len(all_ious) / n_ref_all if n_ref_all else None,
        "instance_precision": len(all_ious) / n_sel_all if n_sel_all else None,
        "boundary_iou": float(np.mean(all_boundary)) if all_boundary else None,
    }
    switches, fragmentations = identity_errors(refs, subs, match_iou=match_iou)
    gt = {"videos": [ref_videos[vid] for vid in sorted(clips)], "categories": ref.get("categories", [])}
    ytvis, _ = video_ap(gt, refs, [t for t in subs if not t.iscrowd])
    tier = tier_for(point["mask_iou"])
    return VideoAuditReport(
        seed=seed,
        n_boot=n_boot,
        n_videos=len(clips),
        n_frames=sum(len(s) for s in sampled.values()),
        n_reference=n_ref_all,
        n_seller=n_sel_all,
        n_matched=len(all_ious),
        n_reference_tracks=len(refs),
        n_seller_tracks=len(subs),
        **point,
        id_switches=switches,
        fragmentations=fragmentations,
        video_ap=_stat(ytvis.stats[0]),
        video_ap50=_stat(ytvis.stats[1]),
        video_ap75=_stat(ytvis.stats[2]),
        ytvis=ytvis,
        scores_assumed=scores_assumed,
        intervals=_clip_intervals(per_clip, point, n_boot=n_boot, seed=seed),
        tier=tier.value if tier else None,
        per_clip=rows,
        matched_ious=all_ious,
    )


def _stat(value: float) -> float | None:
    # YTVOSeval writes -1 where nothing defined the figure
    return None if value < 0 else float(value)


def _clip_intervals(per_clip: list[tuple[list[float], list[float], int, int]], point: dict[str, Any], *, n_boot: int, seed: int) -> dict[str, Any]:
    """Bootstrap over clips: each draw re-weights the per-clip sums (no re-matching)."""
    idx = bootstrap_indices(len(per_clip), n_boot=n_boot, seed=seed)
    n_match = np.array([len(c[0]) for c in per_clip])
    draws = {
        "mask_iou": ratio_draws(np.array([sum(c[0]) for c in per_clip]), n_match, idx),
        "instance_recall": ratio_draws(n_match, np.array([c[2] for c in per_clip]), idx),
        "instance_precision": ratio_draws(n_match, np.array([c[3] for c in per_clip]), idx),
        "boundary_iou": ratio_draws(np.array([sum(c[1]) for c in per_clip]), np.array([len(c[1]) for c in per_clip]), idx),
        "median_iou": np.array([np.median(v) if (v := [x for i in row for x in per_clip[i][0]]) else np.nan for row in idx]),
    }
    return {key: interval_from_draws(d, point=point[key], n_boot=n_boot, seed=seed) for key, d in draws.items()}
