"""Resource limits for uploads and ingest (OWASP API4). Defaults here; a deployment may
override any of them with ``settings.DATASETS_LIMITS = {...}`` (tests do, to stay small).

The image size limits bound every image and video frame a file declares as well as the
image files themselves; they can be lowered, not raised past the engine's own bounds
(``quality.engine.gate.MAX_SIDE`` / ``MAX_PIXELS``), which every quality step enforces."""

from __future__ import annotations

from dataclasses import dataclass, replace

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured

from quality.engine import gate

GB = 1024**3
MB = 1024**2


@dataclass(frozen=True, kw_only=True)
class Limits:
    max_file_size: int = 200 * GB  # one uploaded file
    max_parts: int = 10_000  # S3's own cap
    min_part_size: int = 5 * MB  # S3's minimum for every part but the last
    default_part_size: int = 16 * MB
    max_part_size: int = 512 * MB
    org_quota: int = 2048 * GB  # all files and open uploads of one organization
    upload_ttl_hours: int = 72  # an upload not completed by then expires and is aborted
    part_url_ttl: int = 6 * 3600
    # archives
    archive_max_total: int = 100 * GB  # sum of the declared sizes of extracted files
    archive_max_files: int = 2_000_000
    archive_max_ratio: float = 200.0  # uncompressed / compressed, per member and overall
    # every byte one version's ingest writes to the worker's disk (downloads and extracted
    # members of all its archives and files together), whatever the per-archive caps allow
    ingest_disk_max: int = 250 * GB
    archive_max_member: int = 4 * GB
    # annotation JSON
    json_max_bytes: int = 8 * GB
    json_max_depth: int = 32
    max_errors: int = 200  # the report lists at most this many errors (and says how many more)
    # an image or video frame: each side, and height x width (declared in the JSON, and in an
    # image file's header: Pillow's decompression-bomb limit)
    image_max_side: int = gate.MAX_SIDE
    image_max_pixels: int = gate.MAX_PIXELS
    audit_sample_size: int = 200
    # video versions: the audit sample is clips, this many videos and a run of this many
    # consecutive frames in each (the whole video when shorter)
    audit_clip_videos: int = 8
    audit_clip_frames: int = 10
    preview_count: int = 4


def limits() -> Limits:
    overrides = getattr(settings, "DATASETS_LIMITS", None) or {}
    lim = replace(Limits(), **overrides)
    if lim.image_max_side > gate.MAX_SIDE or lim.image_max_pixels > gate.MAX_PIXELS:
        raise ImproperlyConfigured(
            f"DATASETS_LIMITS: image_max_side and image_max_pixels cannot exceed the engine's {gate.MAX_SIDE} and {gate.MAX_PIXELS}"
        )
    return lim
