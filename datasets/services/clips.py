"""The audit sample of a video version: seeded clips (several videos, a run of consecutive
frames in each) instead of single images."""

from __future__ import annotations

import random

from django.db import IntegrityError, transaction

from datasets.limits import limits
from datasets.models import AuditSample, DatasetVersion
from datasets.selectors import version_video_files, version_videos
from marketplace.core.errors import field_error


def clip_sample_draw(*, version: DatasetVersion, seed: int | None = None) -> list[dict]:
    """Draw (once) the clips of a video version's audit sample and return them.

    ``audit_clip_videos`` videos (all when there are fewer), taken from every annotation
    file of the version (splits, tracks files) in proportion to the videos each holds
    (largest remainder, ties to the earlier file), videos holding masks first within a
    file; each with a run of ``audit_clip_frames`` consecutive frames (the whole video when
    shorter). A run starts at a random frame among those that keep at least one annotated
    frame inside it, when the video has any. Seeded by the version id (and ``seed``): the
    same version and seed always give the same clips.
    """
    lim = limits()
    seed_value = version.pk if seed is None else seed
    existing = _stored_clips(version=version, seed=seed_value)
    if existing:
        return existing
    rng = random.Random(f"audit-clips:{version.pk}:{seed_value}")
    by_file: dict[str, list[dict]] = {dfile.path: [] for dfile, _fmt in version_video_files(version=version)}
    for video in version_videos(version=version):
        by_file.setdefault(video["file"], []).append(video)
    chosen = []
    for videos, quota in zip(by_file.values(), _shares(lim.audit_clip_videos, [len(v) for v in by_file.values()]), strict=True):
        annotated = [v for v in videos if v["annotated"]]
        bare = [v for v in videos if not v["annotated"]]
        rng.shuffle(annotated)
        rng.shuffle(bare)
        chosen += (annotated + bare)[:quota]
    chosen.sort(key=lambda v: v["video_id"])
    clips = []
    for video in chosen:
        length = len(video["file_names"])
        run = min(lim.audit_clip_frames, length)
        starts = [s for s in range(length - run + 1) if any(s <= f < s + run for f in video["annotated"])] or list(range(length - run + 1))
        start = rng.choice(starts)
        indices = list(range(start, start + run))
        clip = {
            "video_id": video["video_id"],
            "file": video["file"],
            "length": length,
            "height": video["height"],
            "width": video["width"],
            "frame_indices": indices,
            "file_names": video["file_names"],
        }
        if video["image_ids"] is not None:
            clip["image_ids"] = [video["image_ids"][f] for f in indices]
        clips.append(clip)
    image_ids = sorted(i for c in clips for i in c.get("image_ids", []))
    size = sum(len(c["frame_indices"]) for c in clips)
    try:
        with transaction.atomic():
            AuditSample.objects.create(version=version, seed=seed_value, size=size, image_ids=image_ids, clips=clips)
    except IntegrityError:  # drawn concurrently: the stored draw wins (it is the same)
        return _stored_clips(version=version, seed=seed_value)
    return clips


def _shares(n: int, counts: list[int]) -> list[int]:
    """``min(n, sum(counts))`` split in proportion to ``counts`` (largest remainder; ties
    go to the earlier entry), never more than an entry's count."""
    total = sum(counts)
    n = min(n, total)
    if total == 0:
        return [0] * len(counts)
    shares = [n * c // total for c in counts]
    by_remainder = sorted(range(len(counts)), key=lambda i: (-(n * counts[i] % total), i))
    for i in by_remainder[: n - sum(shares)]:
        shares[i] += 1
    return shares


def _stored_clips(*, version: DatasetVersion, seed: int) -> list[dict]:
    # compared in Python: JSON equality lookups differ between PostgreSQL and SQLite
    return next((list(s.clips) for s in AuditSample.objects.filter(version=version, seed=seed) if s.clips), [])


def video_reference_mismatches(*, reference: dict, fmt: str | None, clips: list[dict], categories: set[int]) -> list[dict]:
    """Where a valid YouTube-VIS reference does not fit the drawn clips, as located errors
    (empty when it fits): it must be YouTube-VIS, hold every sampled video and no other,
    each with the video's frame count and size, masks only at sampled frames, and the
    version's categories."""
    if fmt != "youtube_vis":
        return [field_error("videos", "a video version's reference is YouTube-VIS JSON (a 'videos' list)", "wrong_format")]
    errors: list[dict] = []
    by_id = {int(c["video_id"]): c for c in clips}
    seen = set()
    for i, video in enumerate(reference.get("videos", [])):
        clip = by_id.get(int(video["id"]))
        if clip is None:
            errors.append(field_error(f"videos[{i}].id", f"video {video['id']} is not in the audit sample", "not_in_sample"))
            continue
        seen.add(clip["video_id"])
        if len(video.get("file_names", [])) != clip["length"]:
            errors.append(
                field_error(f"videos[{i}].file_names", f"{len(video.get('file_names', []))} frames; the video has {clip['length']}", "frame_count_mismatch")
            )
        if (int(video["height"]), int(video["width"])) != (clip["height"], clip["width"]):
            errors.append(
                field_error(
                    f"videos[{i}].height",
                    f"{video['height']}x{video['width']} (height x width); the video is {clip['height']}x{clip['width']}",
                    "size_mismatch",
                )
            )
    for video_id in sorted(set(by_id) - seen):
        errors.append(field_error("videos", f"sampled video {video_id} has no reference", "missing_video"))
    for k, ann in enumerate(reference.get("annotations", [])):
        clip = by_id.get(int(ann["video_id"]))
        if ann.get("category_id") not in categories:
            errors.append(field_error(f"annotations[{k}].category_id", f"category {ann.get('category_id')} is not one of the version's", "unknown_category"))
        if clip is None:
            continue
        sampled = set(clip["frame_indices"])
        for f, seg in enumerate(ann.get("segmentations") or []):
            if seg is not None and f not in sampled:
                errors.append(field_error(f"annotations[{k}].segmentations[{f}]", f"frame {f} is not a sampled frame (null expected)", "mask_outside_sample"))
                break
    return errors
