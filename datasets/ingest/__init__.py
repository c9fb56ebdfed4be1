"""Ingest of a submitted version (worker, queue ``ingest``).

``version_ingest`` works in a scratch directory: it extracts image archives safely,
checks every image, validates every annotation file (streaming), and only when all of
it is valid writes anything: the extracted files (one object and one DatasetFile row
each, with sha256), the engine's reference cache, preview overlays, the statistics and
the report. Invalid input → ``failed_validation`` with the full report, and whatever the
run wrote is removed. Re-running it starts by removing what an earlier run wrote.
"""

from __future__ import annotations

import hashlib
import logging
import mimetypes
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from datasets.ingest.archive import ArchiveError, is_archive, safe_extract
from datasets.ingest.images import check_image
from datasets.ingest.validate import ValidationResult, validate_annotation_file
from datasets.limits import limits
from datasets.models import DatasetFile, DatasetVersion, FileOrigin, FileRole, VersionIngest
from datasets.states import VersionState
from marketplace.core.storage import CHUNK, get_storage
from quality.engine.cache import build_reference_cache

log = logging.getLogger(__name__)
VALIDATED_ROLES = (FileRole.ANNOTATIONS, FileRole.SECOND_PASS, FileRole.VIDEO, FileRole.PANOPTIC)
CACHE_FORMATS = ("coco_instances", "coco_video")


def _prefix(version_id: int) -> str:
    return f"versions/{version_id}/ingest/"


def ingest_cleanup(*, version: DatasetVersion) -> None:
    """Remove every row and object an ingest run of this version wrote."""
    storage = get_storage()
    with transaction.atomic():
        DatasetFile.objects.filter(version=version, origin=FileOrigin.INGEST).delete()
        VersionIngest.objects.filter(version=version).delete()
    for key in list(storage.list_keys(_prefix(version.pk))):
        storage.delete(key)


def _sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(CHUNK), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _download(key: str, dest: Path) -> Path:
    dest.parent.mkdir(parents=True, exist_ok=True)
    with get_storage().open(key) as src, open(dest, "wb") as out:
        shutil.copyfileobj(src, out, CHUNK)
    return dest


def scratch_root() -> Path:
    root = settings.CONFIG.var_dir / "scratch"
    root.mkdir(parents=True, exist_ok=True)
    return root


def version_ingest(*, version_id: int, progress: Callable[[int, int], None] | None = None) -> str:
    version = DatasetVersion.objects.select_related("dataset").get(pk=version_id)
    if version.state == VersionState.FAILED_VALIDATION:
        return "invalid"
    done = VersionIngest.objects.filter(version=version, finished_at__isnull=False).exists()
    if version.state != VersionState.PROCESSING:
        if done:
            return "ok"
        raise RuntimeError(f"version {version_id} is {version.state}, not processing")
    if done:
        return "ok"
    ingest_cleanup(version=version)
    scratch = Path(tempfile.mkdtemp(prefix=f"ingest-{version_id}-", dir=scratch_root()))
    try:
        return _run(version, scratch, progress or (lambda done, total: None))
    except BaseException:
        ingest_cleanup(version=version)  # a crashed run leaves nothing half-written
        raise
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


def _run(version: DatasetVersion, scratch: Path, progress: Callable[[int, int], None]) -> str:
    lim = limits()
    storage = get_storage()
    files = list(DatasetFile.objects.filter(version=version, origin=FileOrigin.UPLOAD).order_by("role", "path"))
    errors: list[dict] = []
    file_reports: list[dict] = []
    total_steps = len(files) + 3
    step = 0
    # 1. images: extract archives, check every image file
    extracted: list[tuple[str, Path, int, DatasetFile]] = []  # (path, local, size, source)
    image_names: set[str] = set()
    for f in files:
        if f.role not in (FileRole.IMAGES, FileRole.PANOPTIC) or f.path.lower().endswith(".json"):
            continue
        local = _download(f.storage_key, scratch / "dl" / str(f.pk) / Path(f.path).name)
        if is_archive(f.path):
            try:
                members = safe_extract(local, scratch / "x" / str(f.pk), lim=lim)
            except ArchiveError as exc:
                errors.append({**exc.to_dict(), "file": f.path})
                continue
            finally:
                local.unlink(missing_ok=True)
            for m in members:
                err = check_image(m.local, lim=lim) if f.role == FileRole.IMAGES else None
                if err:
                    errors.append({"code": err[0], "location": m.path, "message": err[1], "file": f.path})
                else:
                    extracted.append((m.path, m.local, m.size, f))
                    image_names.add(m.path)
        else:
            err = check_image(local, lim=lim) if f.role == FileRole.IMAGES else None
            local.unlink(missing_ok=True)
            if err:
                errors.append({"code": err[0], "location": f.path, "message": err[1], "file": f.path})
            image_names.add(f.path)
        step += 1
        progress(step, total_steps)
    basenames = {n.rsplit("/", 1)[-1] for n in image_names}

    def image_present(name: str) -> bool:
        return name in image_names or name.rsplit("/", 1)[-1] in basenames

    # 2. annotation files: streaming validation
    results: list[tuple[DatasetFile, ValidationResult, Path]] = []
    for f in files:
        if f.role not in VALIDATED_ROLES or not f.path.lower().endswith(".json"):
            continue
        local = _download(f.storage_key, scratch / "json" / str(f.pk) / "file.json")
        check = image_present if f.role != FileRole.SECOND_PASS else None
        result = validate_annotation_file(local, check_image_files=check, lim=lim)
        file_reports.append({"file": f.path, "role": f.role, **result.report})
        errors.extend({**e, "file": f.path} for e in result.report["errors"])
        results.append((f, result, local))
        step += 1
        progress(step, total_steps)
    if not results:
        errors.append({"code": "missing_annotations", "location": "files", "message": "no annotation JSON file was uploaded", "file": ""})
    report = {
        "valid": not errors,
        "error_count": len(errors) + sum(max(0, r["error_count"] - len(r["errors"])) for r in file_reports),
        "errors": errors[: lim.max_errors],
        "files": [{k: v for k, v in r.items() if k != "errors"} for r in file_reports],
        "checked_at": timezone.now().isoformat(),
    }
    if errors:
        return _fail(version, report)
    # 3. valid: write extracted files, cache, previews, then the rows in one transaction
    primary = next((r for r in results if r[0].role in (FileRole.ANNOTATIONS, FileRole.VIDEO, FileRole.PANOPTIC)), results[0])
    prefix = _prefix(version.pk)
    rows: list[DatasetFile] = []
    for path, local, size, source in extracted:
        key = f"{prefix}files/{source.pk}/{path}"
        content_type = mimetypes.guess_type(path)[0] or "application/octet-stream"
        storage.put_file(key, local, content_type=content_type)
        rows.append(
            DatasetFile(
                version=version,
                role=source.role,
                path=path,
                size=size,
                sha256=_sha256_file(local),
                content_type=content_type,
                storage_key=key,
                origin=FileOrigin.INGEST,
                source=source,
            )
        )
    step += 1
    progress(step, total_steps)
    cache_key = ""
    cache_obj = None
    dfile, result, local = primary
    if result.format in CACHE_FORMATS:
        cache_obj, cache_path = build_cache(local, result, scratch / "reference.npz")
        cache_key = f"{prefix}cache/reference.npz"
        storage.put_file(cache_key, cache_path, content_type="application/octet-stream")
        rows.append(
            DatasetFile(
                version=version,
                role=FileRole.CACHE,
                path="_ingest/cache/reference.npz",
                size=cache_path.stat().st_size,
                sha256=_sha256_file(cache_path),
                content_type="application/octet-stream",
                storage_key=cache_key,
                origin=FileOrigin.INGEST,
            )
        )
    step += 1
    progress(step, total_steps)
    previews: list[str] = []
    if cache_obj is not None:
        from datasets.ingest.previews import render_previews

        local_images = {p: loc for p, loc, _s, _src in extracted}
        for name, png in render_previews(
            cache=cache_obj, images=result.images, local_images=local_images, count=lim.preview_count, out_dir=scratch / "previews"
        ):
            key = f"{prefix}previews/{name}"
            storage.put_file(key, png, content_type="image/png")
            previews.append(key)
            rows.append(
                DatasetFile(
                    version=version,
                    role=FileRole.PREVIEW,
                    path=f"_ingest/previews/{name}",
                    size=png.stat().st_size,
                    sha256=_sha256_file(png),
                    content_type="image/png",
                    storage_key=key,
                    origin=FileOrigin.INGEST,
                )
            )
    stats = dict(result.statistics)
    with transaction.atomic():
        locked = DatasetVersion.objects.select_for_update().get(pk=version.pk)
        if locked.state != VersionState.PROCESSING:
            raise RuntimeError(f"version {version.pk} left processing during ingest")
        DatasetFile.objects.bulk_create(rows, batch_size=2000)
        VersionIngest.objects.create(
            version=locked, format=result.format or "", reference_cache_key=cache_key, previews=previews, finished_at=timezone.now()
        )
        locked.validation_report = report
        locked.statistics = stats
        locked.save(update_fields=["validation_report", "statistics"])
    progress(total_steps, total_steps)
    return "ok"


def _fail(version: DatasetVersion, report: dict) -> str:
    from datasets.services import version_transition

    ingest_cleanup(version=version)
    with transaction.atomic():
        locked = DatasetVersion.objects.select_for_update().get(pk=version.pk)
        locked.validation_report = report
        locked.statistics = {}
        locked.save(update_fields=["validation_report", "statistics"])
        version_transition(
            version=locked,
            to_state=VersionState.FAILED_VALIDATION,
            actor=None,
            reason=f"{report['error_count']} validation error(s)",
            action="version.failed_validation",
        )
    return "invalid"


def build_cache(json_path: Path, result: ValidationResult, out: Path):
    """The engine's reference cache, built from the annotations streamed in chunks (the
    engine's ``build_reference_cache`` takes an iterable): memory holds the compact RLE
    strings, not the parsed polygons."""
    import ijson

    images = [{"id": i["id"], "height": i["height"], "width": i["width"]} for i in result.images]
    with open(json_path, "rb") as fh:
        cache = build_reference_cache(
            images=images, categories=result.categories, annotations=ijson.items(fh, "annotations.item", use_float=True), with_masks=True
        )
    cache.save(out)
    return cache, out
