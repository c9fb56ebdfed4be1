"""Ingest of a submitted version (worker, queue ``ingest``).

A version may hold several annotation files, one per split (``datasets.splits``): each is
validated, has its statistics (the version's are their sum, with ``splits``) and its own
mask cache; their image ids must not repeat across splits (an audit sample and a
reference name images by id) and their categories must be the same.

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
from dataclasses import dataclass, field
from pathlib import Path

import ijson
from django.conf import settings
from django.db import transaction
from django.utils import timezone

from datasets.ingest.archive import ArchiveError, DiskBudget, is_archive, safe_extract
from datasets.ingest.images import check_image
from datasets.ingest.panoptic import PngSegments, annotation_errors, png_segments
from datasets.ingest.previews import render_previews
from datasets.ingest.scene import cache_scene, version_scene_statistics
from datasets.limits import Limits, limits
from datasets.models import DatasetFile, DatasetVersion, FileOrigin, FileRole, VersionIngest, WithdrawnContent, WithdrawnKind
from datasets.splits import evaluation_file, merge_statistics, split_name
from datasets.states import VersionState
from datasets.validation import ValidationResult, validate_annotation_file
from marketplace.core.storage import CHUNK, get_storage
from quality.engine.cache import build_reference_cache, compiled_reference

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


def _download(key: str, dest: Path, *, disk: DiskBudget, where: str) -> Path:
    """Stream the object to ``dest``, its bytes counted against the version's disk budget."""
    dest.parent.mkdir(parents=True, exist_ok=True)
    with get_storage().open(key) as src, open(dest, "wb") as out:
        while chunk := src.read(CHUNK):
            disk.take(where, len(chunk))
            out.write(chunk)
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


@dataclass
class _Run:
    """One ingest run's working state: what the stages found, in the scratch directory."""

    version: DatasetVersion
    scratch: Path
    progress: Callable[[int, int], None]
    lim: Limits
    files: list[DatasetFile]
    errors: list[dict] = field(default_factory=list)
    file_reports: list[dict] = field(default_factory=list)
    extracted: list[tuple[str, Path, int, DatasetFile]] = field(default_factory=list)  # (path, local, size, source)
    image_names: set[str] = field(default_factory=set)
    image_sizes: dict[str, tuple[int, int]] = field(default_factory=dict)  # (height, width) from each image file's header
    panoptic_pngs: dict[str, PngSegments] = field(default_factory=dict)  # each panoptic PNG's size and segment ids
    results: list[tuple[DatasetFile, ValidationResult, Path]] = field(default_factory=list)
    disk: DiskBudget | None = None  # the bytes this run may write to the scratch disk, all files together
    out_of_disk: bool = False
    rows: list[DatasetFile] = field(default_factory=list)  # what the run adds to the version
    statistics: dict = field(default_factory=dict)  # figures measured beside validation's (scene, diversity)
    scenes: dict = field(default_factory=dict)  # scene complexity of each cached file, by path, from its cache
    step: int = 0

    @property
    def total_steps(self) -> int:
        return len(self.files) + 3

    def advance(self) -> None:
        self.step += 1
        self.progress(self.step, self.total_steps)


def _run(version: DatasetVersion, scratch: Path, progress: Callable[[int, int], None]) -> str:
    run = _Run(
        version=version,
        scratch=scratch,
        progress=progress,
        lim=limits(),
        files=list(DatasetFile.objects.filter(version=version, origin=FileOrigin.UPLOAD).order_by("role", "path")),
    )
    run.disk = DiskBudget(run.lim.ingest_disk_max)
    declared = sum(f.size for f in run.files)
    if declared > run.lim.ingest_disk_max:
        # Refused before a byte is downloaded.
        _out_of_disk(run, ArchiveError("version_disk_budget", "files", f"the version's files take {declared} bytes; at most {run.lim.ingest_disk_max} per version"), "")
    else:
        _check_images(run)
    if not run.out_of_disk:
        _validate_annotations(run)
        _check_withdrawn(run)
    report = _validation_report(run)
    if run.errors:
        return _fail(version, report)
    _store_extracted(run)
    cache = _store_cache(run)
    _store_previews(run, cache)
    run.statistics.update(_scene(run))
    _commit(run, report)
    progress(run.total_steps, run.total_steps)
    return "ok"


def _out_of_disk(run: _Run, exc: ArchiveError, path: str) -> None:
    run.errors.append({**exc.to_dict(), "file": path})
    run.out_of_disk = True


def _check_images(run: _Run) -> None:
    """Extract image archives safely and check every image file (nothing is stored yet).
    Past the version's disk budget nothing more is read."""
    for f in run.files:
        if f.role not in (FileRole.IMAGES, FileRole.PANOPTIC) or f.path.lower().endswith(".json"):
            continue
        try:
            local = _download(f.storage_key, run.scratch / "dl" / str(f.pk) / Path(f.path).name, disk=run.disk, where=f.path)
        except ArchiveError as exc:
            return _out_of_disk(run, exc, f.path)
        if is_archive(f.path):
            try:
                members = safe_extract(local, run.scratch / "x" / str(f.pk), lim=run.lim, disk=run.disk)
            except ArchiveError as exc:
                if exc.code == "version_disk_budget":
                    return _out_of_disk(run, exc, f.path)
                run.errors.append({**exc.to_dict(), "file": f.path})
                continue
            finally:
                local.unlink(missing_ok=True)
            for m in members:
                err = _check_member(run, f, m.local, m.path)
                if err:
                    run.errors.append({"code": err[0], "location": m.path, "message": err[1], "file": f.path})
                else:
                    run.extracted.append((m.path, m.local, m.size, f))
                    run.image_names.add(m.path)
        else:
            err = _check_member(run, f, local, f.path)
            local.unlink(missing_ok=True)
            if err:
                run.errors.append({"code": err[0], "location": f.path, "message": err[1], "file": f.path})
            run.image_names.add(f.path)
        run.advance()


def _check_member(run: _Run, f: DatasetFile, local: Path, name: str) -> tuple[str, str] | None:
    """An image is checked and its size kept; a panoptic PNG is checked as an image (the
    quality steps decode it)."""
    if f.role == FileRole.IMAGES:
        return check_image(local, lim=run.lim, sizes=run.image_sizes, name=name)
    if name.lower().endswith(".png"):
        bad = check_image(local, lim=run.lim)
        if bad:
            return bad
        found = png_segments(local)
        if isinstance(found, tuple):
            return found
        run.panoptic_pngs[name] = found
    return None


def _validate_annotations(run: _Run) -> None:
    """Validate every annotation file, streaming; image references are checked against the
    images found (a second pass names images of the first, not files)."""
    basenames = {n.rsplit("/", 1)[-1] for n in run.image_names}

    def image_present(name: str) -> bool:
        return name in run.image_names or name.rsplit("/", 1)[-1] in basenames

    for f in run.files:
        if f.role not in VALIDATED_ROLES or not f.path.lower().endswith(".json"):
            continue
        try:
            local = _download(f.storage_key, run.scratch / "json" / str(f.pk) / "file.json", disk=run.disk, where=f.path)
        except ArchiveError as exc:
            return _out_of_disk(run, exc, f.path)
        check = image_present if f.role != FileRole.SECOND_PASS else None
        result = validate_annotation_file(local, check_image_files=check, image_sizes=run.image_sizes if check else None, lim=run.lim)
        run.file_reports.append({"file": f.path, "role": f.role, **result.report})
        run.errors.extend({**e, "file": f.path} for e in result.report["errors"])
        run.results.append((f, result, local))
        run.advance()
    if not run.results:
        run.errors.append({"code": "missing_annotations", "location": "files", "message": "no annotation JSON file was uploaded", "file": ""})
    _check_splits(run)
    _check_video_files(run)
    _check_panoptic(run)


def _check_panoptic(run: _Run) -> None:
    """Each valid panoptic JSON against its PNGs: of its image's size, with exactly the
    segments each annotation lists (a missing PNG is the validator's image_file_missing)."""
    import ijson

    by_base = {name.rsplit("/", 1)[-1]: png for name, png in run.panoptic_pngs.items()}
    for dfile, result, local in run.results:
        if result.format != "coco_panoptic" or not result.valid:
            continue
        sizes = {int(img["id"]): (int(img["height"]), int(img["width"])) for img in result.images}
        with open(local, "rb") as fh:
            for i, ann in enumerate(ijson.items(fh, "annotations.item", use_float=True)):
                name = ann.get("file_name")
                png = (run.panoptic_pngs.get(name) or by_base.get(name.rsplit("/", 1)[-1])) if isinstance(name, str) else None
                if png is None:
                    continue
                for code, location, message in annotation_errors(ann, f"annotations[{i}]", png, sizes.get(ann.get("image_id"))):
                    run.errors.append({"code": code, "location": location, "message": message, "file": dfile.path})


def _splits(run: _Run) -> list[tuple[DatasetFile, ValidationResult, Path]]:
    """The version's annotation files, one per split, in path order."""
    return [r for r in run.results if r[0].role == FileRole.ANNOTATIONS]


def _check_splits(run: _Run) -> None:
    """Splits of one version share their categories and never an image id."""
    splits = [r for r in _splits(run) if r[1].valid]
    if len(splits) < 2:
        return
    names: dict[str, str] = {}
    first_file, first, _ = splits[0]
    first_cats = sorted((c["id"], c["name"]) for c in first.categories)
    owner: dict[int, str] = {}
    for dfile, result, _local in splits:
        name = split_name(dfile.path)
        if name in names:
            run.errors.append({"code": "duplicate_split", "location": "files", "message": f"{dfile.path!r} and {names[name]!r} are both the split {name!r}", "file": dfile.path})
        names[name] = dfile.path
        if dfile is not first_file and sorted((c["id"], c["name"]) for c in result.categories) != first_cats:
            run.errors.append(
                {"code": "split_categories_differ", "location": "categories", "message": f"the categories differ from those of {first_file.path!r}", "file": dfile.path}
            )
        repeated = []
        for image_id in result.image_ids:
            if image_id in owner:
                repeated.append(image_id)
            else:
                owner[image_id] = dfile.path
        for image_id in repeated[:20]:
            run.errors.append(
                {"code": "duplicate_image_id", "location": "images", "message": f"image id {image_id} is also in {owner[image_id]!r}", "file": dfile.path}
            )


VIDEO_FORMATS = ("youtube_vis", "coco_video")


def _check_video_files(run: _Run) -> None:
    """A video version's annotation files (splits, tracks files) are one format and never
    share a video id: the audit draws its clips from all of them and an auditor's reference
    names each sampled video by its id alone."""
    files = [r for r in run.results if r[0].role in (FileRole.ANNOTATIONS, FileRole.VIDEO) and r[1].valid]
    if len(files) < 2 or files[0][1].format not in VIDEO_FORMATS:
        return
    fmt, first_path = files[0][1].format, files[0][0].path
    owner: dict[int, str] = {}
    for dfile, result, local in files:
        if result.format != fmt:
            run.errors.append(
                {"code": "video_format_differs", "location": "$", "message": f"the file is {result.format}; {first_path!r} is {fmt}", "file": dfile.path}
            )
            continue
        if fmt == "youtube_vis":
            ids, location = list(result.image_ids), "videos"
        else:
            with open(local, "rb") as fh:
                ids, location = sorted({int(v) for v in ijson.items(fh, "images.item.video_id")}), "images"
        repeated = []
        for video_id in ids:
            if owner.setdefault(video_id, dfile.path) != dfile.path:
                repeated.append(video_id)
        # Two splits of YouTube-VIS share ids as "images" already (duplicate_image_id).
        if fmt == "youtube_vis" and dfile.role == FileRole.ANNOTATIONS:
            repeated = [v for v in repeated if next(f for f, _r, _l in files if f.path == owner[v]).role != FileRole.ANNOTATIONS]
        for video_id in repeated[:20]:
            run.errors.append(
                {"code": "duplicate_video_id", "location": location, "message": f"video id {video_id} is also in {owner[video_id]!r}", "file": dfile.path}
            )


# Attributes of an image or video in the annotations that name a recorded subject.
SUBJECT_KINDS = (WithdrawnKind.SESSION_ID, WithdrawnKind.EPISODE_ID, WithdrawnKind.CONSENT_ID)


def _check_withdrawn(run: _Run) -> None:
    """Refuse content whose consent was revoked in an earlier version of the dataset: a
    file with the same bytes, or an image or video whose session, episode or consent
    attribute names a revoked one (``consent_revoked``, located)."""
    withdrawn: dict[str, dict[str, str]] = {}
    for kind, value, path in WithdrawnContent.objects.filter(dataset_id=run.version.dataset_id).values_list("kind", "value", "path"):
        withdrawn.setdefault(kind, {})[value] = path
    if not withdrawn:
        return
    hashes = withdrawn.get(WithdrawnKind.SHA256, {})

    def refuse(location: str, file: str, what: str) -> None:
        run.errors.append({"code": "consent_revoked", "location": location, "message": f"{what}: its consent was revoked in an earlier version", "file": file})

    if hashes:
        for f in run.files:
            if f.sha256 in hashes:
                refuse(f.path, f.path, f"the same bytes as {hashes[f.sha256]}")
        for path, local, _size, source in run.extracted:
            digest = _sha256_file(local)
            if digest in hashes:
                refuse(path, source.path, f"the same bytes as {hashes[digest]}")
    subjects = {kind: withdrawn[kind] for kind in SUBJECT_KINDS if kind in withdrawn}
    if not subjects:
        return
    import ijson

    for f, _result, local in run.results:
        for section in ("videos", "images"):
            with open(local, "rb") as fh:
                for i, item in enumerate(ijson.items(fh, f"{section}.item", use_float=True)):
                    if not isinstance(item, dict):
                        continue
                    for kind, values in subjects.items():
                        value = item.get(kind)
                        if value not in (None, "") and str(value) in values:
                            refuse(f"{section}[{i}].{kind}", f.path, f"{kind} {value!r}")


def _validation_report(run: _Run) -> dict:
    return {
        "valid": not run.errors,
        "error_count": len(run.errors) + sum(max(0, r["error_count"] - len(r["errors"])) for r in run.file_reports),
        "errors": run.errors[: run.lim.max_errors],
        "files": [{k: v for k, v in r.items() if k != "errors"} for r in run.file_reports],
        "checked_at": timezone.now().isoformat(),
    }


def _ingest_row(run: _Run, *, role: str, path: str, local: Path, key: str, content_type: str, source: DatasetFile | None = None) -> DatasetFile:
    return DatasetFile(
        version=run.version,
        role=role,
        path=path,
        size=local.stat().st_size,
        sha256=_sha256_file(local),
        content_type=content_type,
        storage_key=key,
        origin=FileOrigin.INGEST,
        source=source,
    )


def _store_extracted(run: _Run) -> None:
    """Every file extracted from an archive becomes an object and a manifest row."""
    storage = get_storage()
    prefix = _prefix(run.version.pk)
    for path, local, _size, source in run.extracted:
        key = f"{prefix}files/{source.pk}/{path}"
        content_type = mimetypes.guess_type(path)[0] or "application/octet-stream"
        storage.put_file(key, local, content_type=content_type)
        run.rows.append(_ingest_row(run, role=source.role, path=path, local=local, key=key, content_type=content_type, source=source))
    run.advance()


def _primary(run: _Run) -> tuple[DatasetFile, ValidationResult, Path]:
    return next((r for r in run.results if r[0].role in (FileRole.ANNOTATIONS, FileRole.VIDEO, FileRole.PANOPTIC)), run.results[0])


def _store_cache(run: _Run):
    """The engine's reference cache of each split (instances formats), under
    ``_ingest/cache/<split>/``; returns the primary file's, for the previews."""
    splits = _splits(run) or [_primary(run)]
    primary = _primary(run)[0]
    primary_cache = None
    for dfile, result, local in splits:
        if result.format not in CACHE_FORMATS:
            continue
        name = split_name(dfile.path) if len(splits) > 1 else ""
        folder = f"cache/{dfile.pk}/" if name else "cache/"
        cache, cache_path = build_cache(local, result, run.scratch / folder / "reference.npz")
        run.scenes[dfile.path] = cache_scene(cache)
        key = f"{_prefix(run.version.pk)}{folder}reference.npz"
        get_storage().put_file(key, cache_path, content_type="application/octet-stream")
        path = f"_ingest/cache/{name}/reference.npz" if name else "_ingest/cache/reference.npz"
        run.rows.append(_ingest_row(run, role=FileRole.CACHE, path=path, local=cache_path, key=key, content_type="application/octet-stream", source=dfile))
        if dfile is primary:
            primary_cache = cache
    run.advance()
    return primary_cache


def _store_previews(run: _Run, cache) -> None:
    if cache is None:
        return
    storage = get_storage()
    _dfile, result, _local = _primary(run)
    local_images = {p: loc for p, loc, _s, _src in run.extracted}
    out_dir = run.scratch / "previews"
    for name, png in render_previews(cache=cache, images=result.images, local_images=local_images, count=run.lim.preview_count, out_dir=out_dir):
        key = f"{_prefix(run.version.pk)}previews/{name}"
        storage.put_file(key, png, content_type="image/png")
        run.rows.append(_ingest_row(run, role=FileRole.PREVIEW, path=f"_ingest/previews/{name}", local=png, key=key, content_type="image/png"))


def _scene(run: _Run) -> dict:
    """Scene complexity and coverage over the annotation files (a second pass is no split)."""
    files = [(f.path, local, result.format or "") for f, result, local in run.results if f.role in (FileRole.ANNOTATIONS, FileRole.VIDEO)]
    return version_scene_statistics(files=files, dataset=run.version.dataset, measured=run.scenes)


def _commit(run: _Run, report: dict) -> None:
    """The rows, the report and the statistics, in one transaction."""
    _dfile, result, _local = _primary(run)
    caches = [r for r in run.rows if r.role == FileRole.CACHE]
    evaluation = evaluation_file([r.source for r in caches if r.source is not None])
    cache_key = next((r.storage_key for r in caches if r.source == evaluation), "") or next((r.storage_key for r in caches), "")
    previews = [r.storage_key for r in run.rows if r.role == FileRole.PREVIEW]
    splits = _splits(run)
    statistics = merge_statistics({split_name(f.path): dict(r.statistics) for f, r, _ in splits}) if splits else dict(result.statistics)
    with transaction.atomic():
        locked = DatasetVersion.objects.select_for_update().get(pk=run.version.pk)
        if locked.state != VersionState.PROCESSING:
            raise RuntimeError(f"version {run.version.pk} left processing during ingest")
        DatasetFile.objects.bulk_create(run.rows, batch_size=2000)
        VersionIngest.objects.create(version=locked, format=result.format or "", reference_cache_key=cache_key, previews=previews, finished_at=timezone.now())
        locked.validation_report = report
        locked.statistics = {**statistics, **run.statistics}
        locked.save(update_fields=["validation_report", "statistics"])


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
    """The engine's reference cache of a validated file, saved to ``out``.

    The compiled reader parses the file (mapped, flat arrays, no Python object per
    annotation) and rasterizes the masks on every core; where it declines the file, the
    annotations are streamed in chunks into ``build_reference_cache`` (memory holds the
    compact RLE strings, not the parsed polygons). Either way the categories are the
    validator's (id, name, isthing), so the cache is the same bytes."""
    import ijson
    import orjson

    out.parent.mkdir(parents=True, exist_ok=True)
    cache = compiled_reference(json_path, with_masks=True)
    if cache is not None:
        cache.categories_json = orjson.dumps(result.categories)
    else:
        images = [{"id": i["id"], "height": i["height"], "width": i["width"]} for i in result.images]
        with open(json_path, "rb") as fh:
            cache = build_reference_cache(
                images=images, categories=result.categories, annotations=ijson.items(fh, "annotations.item", use_float=True), with_masks=True
            )
    cache.save(out)
    return cache, out
