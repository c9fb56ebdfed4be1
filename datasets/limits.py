"""Resource limits for uploads and ingest (OWASP API4). Defaults here; a deployment may
override any of them with ``settings.DATASETS_LIMITS = {...}`` (tests do, to stay small)."""

from __future__ import annotations

from dataclasses import dataclass, replace

from django.conf import settings

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
    archive_max_member: int = 4 * GB
    # annotation JSON
    json_max_bytes: int = 8 * GB
    json_max_depth: int = 32
    max_errors: int = 200  # the report lists at most this many errors (and says how many more)
    image_max_pixels: int = 178_956_970  # Pillow's default MAX_IMAGE_PIXELS
    audit_sample_size: int = 200
    preview_count: int = 4


def limits() -> Limits:
    overrides = getattr(settings, "DATASETS_LIMITS", None) or {}
    return replace(Limits(), **overrides)
