"""Temporal consistency of video tracks.

Inputs: YouTube-VIS JSON (videos with per-frame ``segmentations``; results lists too), or
COCO JSON whose images carry ``video_id`` and a frame index (``frame_id``, ``frame_index``
or ``frame``) and whose annotations carry ``track_id``. Both become :class:`VideoTrack`s:
one mask (or None) per frame of the video, frames ordered by their index.

Without reference tracks, for each track: ``temporal_iou`` (mean mask IoU between
consecutive annotated frames), ``gaps`` (runs of frames without a mask inside the
track's span) and ``jumps`` (consecutive IoU below ``jump_iou``: the mask leapt).

With reference tracks: per frame, reference and subject masks are matched one-to-one
(Hungarian, IoU >= 0.5, class-agnostic: identity is the point here). Along each reference
track, an ID switch is a matched subject track differing from the one last matched, and a
fragmentation is a tracked stretch interrupted and resumed later (CLEAR-MOT). ``st_iou``
is the mean spatio-temporal IoU of reference and subject tracks paired one-to-one per video
and category (Hungarian on that IoU). ``video_ap`` is the YouTube-VIS evaluation
(:mod:`quality.engine.ytvis`); a subject track without a score scores 1.0.
"""

from __future__ import annotations

import json
from collections import Counter, defaultdict
from pathlib import Path
from typing import Any

import numpy as np

from quality.engine import masks
from quality.engine.errors import EngineInputError
from quality.engine.gate import CheckedRLE
from quality.engine.matching import MATCH_IOU, hungarian_pairs, image_sizes, iou_matrix, segmentation_rle
from quality.engine.reports import TemporalReport, TrackRow
from quality.engine.ytvis import (
    VideoTrack,
    _avg_area,
    reference_tracks,
    result_tracks,
    spatio_temporal_iou,
    video_ap,
    ytvis_videos,
)

JUMP_IOU = 0.1
FRAME_KEYS = ("frame_id", "frame_index", "frame")


def _read(source: str | Path | dict | list, what: str) -> Any:
    if isinstance(source, (dict, list)):
        return source
    path = Path(source)
    if not path.is_file():
        raise EngineInputError("file_not_found", f"{what} file not found", location=str(path))
    try:
        return json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise EngineInputError("invalid_json", f"{what} is not valid JSON", location=str(path)) from exc


def is_ytvis(data: Any) -> bool:
    return isinstance(data, dict) and isinstance(data.get("videos"), list)


def coco_video_tracks(coco: dict) -> tuple[dict[int, dict], list[VideoTrack]]:
    """Videos (YouTube-VIS shaped) and tracks of a COCO JSON with ``video_id``, frame index and ``track_id``."""
    image_sizes(coco)  # every frame's size within the gate's bounds
    frames: dict[int, list[tuple[int, dict]]] = defaultdict(list)
    for img in coco.get("images", []):
        if "video_id" not in img:
            raise EngineInputError("missing_field", "image has no video_id", location=f"images id {img.get('id')}")
        index = next((img[k] for k in FRAME_KEYS if k in img), None)
        if index is None:
            raise EngineInputError("missing_field", "image has no frame index (frame_id)", location=f"images id {img.get('id')}")
        frames[img["video_id"]].append((int(index), img))
    videos: dict[int, dict] = {}
    position: dict[int, tuple[int, int]] = {}  # image id -> (video id, frame position)
    for vid, items in frames.items():
        items.sort(key=lambda x: x[0])
        first = items[0][1]
        videos[vid] = {"id": vid, "height": int(first["height"]), "width": int(first["width"]), "length": len(items)}
        for pos, (_, img) in enumerate(items):
            position[img["id"]] = (vid, pos)
    grouped: dict[tuple[int, Any], list[tuple[int, dict]]] = defaultdict(list)
    for index, ann in enumerate(coco.get("annotations", [])):
        track = ann.get("track_id", ann.get("attributes", {}).get("track_id") if isinstance(ann.get("attributes"), dict) else None)
        if track is None:
            raise EngineInputError("missing_field", "annotation has no track_id", location=f"annotations[{index}]")
        if ann["image_id"] not in position:
            raise EngineInputError("unknown_image", f"image {ann['image_id']} is not in 'images'", location=f"annotations[{index}]")
        grouped[(position[ann["image_id"]][0], track)].append((index, ann))
    tracks = []
    for n, ((vid, track), items) in enumerate(sorted(grouped.items(), key=lambda kv: (kv[0][0], str(kv[0][1])))):
        video = videos[vid]
        frames_of: list[CheckedRLE | None] = [None] * video["length"]
        for index, ann in items:
            pos = position[ann["image_id"]][1]
            where = f"annotations[{index}].segmentation"
            frames_of[pos] = segmentation_rle(ann.get("segmentation"), video["height"], video["width"], location=where)
        anns = [ann for _, ann in items]
        category = Counter(a["category_id"] for a in anns).most_common(1)[0][0]
        tracks.append(
            VideoTrack(
                id=n + 1,
                key=f"{vid}:{track}",
                video_id=vid,
                category_id=category,
                masks=frames_of,
                avg_area=_avg_area([float(masks.area(m)) if m else None for m in frames_of]),
                iscrowd=int(any(a.get("iscrowd", 0) for a in anns)),
                score=float(np.mean([a.get("score", 1.0) for a in anns])),
            )
        )
    return videos, tracks


def load_tracks(
    source: Any, *, videos: dict[int, dict] | None = None, what: str = "tracks"
) -> tuple[dict, dict[int, dict], list[VideoTrack]]:
    """``(raw, videos, tracks)`` from YouTube-VIS JSON, a YouTube-VIS results list, or COCO JSON with tracks."""
    data = _read(source, what)
    if isinstance(data, list):
        if videos is None:
            raise EngineInputError("missing_reference", "a YouTube-VIS results list needs the reference videos", location=what)
        return {"videos": list(videos.values())}, videos, result_tracks(data, videos)
    if is_ytvis(data):
        return data, ytvis_videos(data), reference_tracks(data)
    if isinstance(data, dict) and isinstance(data.get("annotations"), list):
        vids, tracks = coco_video_tracks(data)
        return {**data, "videos": list(vids.values())}, vids, tracks
    raise EngineInputError("unknown_format", f"{what}: neither YouTube-VIS nor COCO JSON with tracks", location=what)


def _pair_iou(a: CheckedRLE, b: CheckedRLE) -> float:
    return float(iou_matrix([a], [b])[0, 0])


def track_rows(tracks: list[VideoTrack], *, jump_iou: float = JUMP_IOU) -> tuple[list[TrackRow], list[float]]:
    """Per-track temporal figures and every consecutive-frame IoU."""
    rows, all_ious = [], []
    for t in tracks:
        present = [f for f, m in enumerate(t.masks) if m]
        if not present:
            continue
        ious = [_pair_iou(t.masks[f0], t.masks[f1]) for f0, f1 in zip(present, present[1:], strict=False)]
        all_ious.extend(ious)
        gaps = sum(1 for f0, f1 in zip(present, present[1:], strict=False) if f1 - f0 > 1)
        rows.append(
            TrackRow(
                track_id=t.key,
                video_id=t.video_id,
                category_id=t.category_id,
                n_frames=len(present),
                first_frame=present[0],
                last_frame=present[-1],
                gaps=gaps,
                temporal_iou=float(np.mean(ious)) if ious else None,
                min_iou=float(min(ious)) if ious else None,
                jumps=sum(1 for v in ious if v < jump_iou),
            )
        )
    return rows, all_ious


def identity_errors(reference: list[VideoTrack], subject: list[VideoTrack], *, match_iou: float = MATCH_IOU) -> tuple[int, int]:
    """(ID switches, fragmentations) of ``subject`` along the ``reference`` tracks."""
    switches = fragmentations = 0
    by_video_ref: dict[int, list[VideoTrack]] = defaultdict(list)
    by_video_sub: dict[int, list[VideoTrack]] = defaultdict(list)
    for t in reference:
        if not t.iscrowd:
            by_video_ref[t.video_id].append(t)
    for t in subject:
        by_video_sub[t.video_id].append(t)
    for vid, refs in by_video_ref.items():
        subs = by_video_sub.get(vid, [])
        length = max(len(t.masks) for t in refs + subs)
        assigned: dict[int, list[Any]] = {i: [None] * length for i in range(len(refs))}  # ref index -> subject key per frame
        present: dict[int, list[bool]] = {i: [False] * length for i in range(len(refs))}
        for f in range(length):
            ri = [i for i, t in enumerate(refs) if f < len(t.masks) and t.masks[f]]
            si = [j for j, t in enumerate(subs) if f < len(t.masks) and t.masks[f]]
            for i in ri:
                present[i][f] = True
            ious = iou_matrix([refs[i].masks[f] for i in ri], [subs[j].masks[f] for j in si])
            for r, c, iou in hungarian_pairs(ious):
                if iou >= match_iou:
                    assigned[ri[r]][f] = subs[si[c]].key
        for i in range(len(refs)):
            last, tracked_before, interrupted = None, False, False
            for f in range(length):
                if not present[i][f]:
                    continue
                key = assigned[i][f]
                if key is None:
                    interrupted = tracked_before or interrupted
                    continue
                if last is not None and key != last:
                    switches += 1
                if interrupted:
                    fragmentations += 1
                    interrupted = False
                last, tracked_before = key, True
    return switches, fragmentations


def st_iou_pairs(reference: list[VideoTrack], subject: list[VideoTrack]) -> list[float]:
    """Spatio-temporal IoUs of reference and subject tracks paired one-to-one per video and category."""
    groups: dict[tuple[int, int], tuple[list[VideoTrack], list[VideoTrack]]] = defaultdict(lambda: ([], []))
    for t in reference:
        if not t.iscrowd:
            groups[(t.video_id, t.category_id)][0].append(t)
    for t in subject:
        groups[(t.video_id, t.category_id)][1].append(t)
    values = []
    for key in sorted(groups):
        refs, subs = groups[key]
        if not refs or not subs:
            continue
        ious = np.array([[spatio_temporal_iou(s.masks, r.masks) for s in subs] for r in refs])
        values.extend(iou for _, _, iou in hungarian_pairs(ious))
    return values


def temporal_consistency(
    subject: str | Path | dict | list,
    *,
    reference: str | Path | dict | None = None,
    jump_iou: float = JUMP_IOU,
    with_video_ap: bool = True,
) -> TemporalReport:
    """Temporal figures of ``subject`` tracks, and, with ``reference`` tracks, identity errors, st-IoU and video AP."""
    ref_raw = ref_videos = ref_tracks = None
    if reference is not None:
        ref_raw, ref_videos, ref_tracks = load_tracks(reference, what="reference")
    _, videos, tracks = load_tracks(subject, videos=ref_videos, what="tracks")
    rows, ious = track_rows(tracks, jump_iou=jump_iou)
    report = TemporalReport(
        n_videos=len(videos),
        n_tracks=len(rows),
        n_frame_pairs=len(ious),
        temporal_iou=float(np.mean(ious)) if ious else None,
        n_gaps=sum(r.gaps for r in rows),
        tracks_with_gaps=sum(1 for r in rows if r.gaps),
        jump_iou=jump_iou,
        tracks_that_jump=[r.track_id for r in rows if r.jumps],
        tracks=rows,
    )
    if ref_tracks is not None:
        switches, frags = identity_errors(ref_tracks, tracks)
        pairs = st_iou_pairs(ref_tracks, tracks)
        report.has_reference = True
        report.n_reference_tracks = len(ref_tracks)
        report.id_switches = switches
        report.fragmentations = frags
        report.st_iou = float(np.mean(pairs)) if pairs else None
        report.n_st_matched = len(pairs)
        if with_video_ap:
            report.video_ap, _ = video_ap(ref_raw, ref_tracks, tracks)
    return report
