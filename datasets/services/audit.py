"""Writes for the audit: the platform's seeded draw of a submitted version's audit
sample, and the auditor's reference annotations for it."""

from __future__ import annotations

import hashlib
import json
import random
import tempfile
from pathlib import Path

from django.db import IntegrityError, transaction

from datasets.errors import DatasetErrorCode
from datasets.events import AuditReferenceSubmitted
from datasets.ingest.archive import ArchiveError, Extracted, safe_extract
from datasets.ingest.images import check_image
from datasets.ingest.panoptic import annotation_errors, png_segments
from datasets.limits import limits
from datasets.models import AuditSample, DatasetFile, DatasetVersion, FileOrigin, FileRole
from datasets.selectors import version_coco, version_image_strata, version_video_file
from datasets.services.clips import clip_sample_draw, video_reference_mismatches
from datasets.states import VersionState
from datasets.validation import validate_annotation_file
from marketplace.audit.services import audit_event_record
from marketplace.core.errors import Conflict, InvalidInput, field_error
from marketplace.core.events import publish
from marketplace.core.storage import CHUNK, get_storage


def audit_sample_draw(*, version: DatasetVersion, size: int | None = None, seed: int | None = None) -> list[int]:
    """Draw (once) the audit sample: ``size`` image ids over every split, stratified by
    split and category.

    Seeded by the version id (and ``seed`` when given), so the same version and seed
    always give the same sample; the draw is stored and returned as is afterwards.
    A video version's sample is clips instead (:mod:`datasets.services.clips`); the ids of
    their frames are returned when the frames are COCO images.
    Each image is put in the stratum of its split and its rarest category (images without
    annotations form their split's own stratum); strata get shares proportional to their
    size, at least one. A panoptic-only version is drawn from its panoptic JSON (segments'
    categories).
    """
    if version_video_file(version=version) is not None:
        clips = clip_sample_draw(version=version, seed=seed)
        return [i for clip in clips for i in clip.get("image_ids", [])]
    size = size or limits().audit_sample_size
    seed_value = version.pk if seed is None else seed
    existing = AuditSample.objects.filter(version=version, seed=seed_value, size=size).first()
    if existing:
        return list(existing.image_ids)
    found = version_image_strata(version=version)
    image_ids, image_cats, cat_counts = found.image_ids, found.categories, found.category_images
    strata: dict[tuple[str, int], list[int]] = {}
    for image_id in sorted(image_ids):
        cats = image_cats.get(image_id)
        key = (found.split.get(image_id, ""), min(cats, key=lambda c: (cat_counts[c], c)) if cats else -1)
        strata.setdefault(key, []).append(image_id)
    rng = random.Random(f"audit:{version.pk}:{seed_value}")
    total = len(image_ids)
    chosen: list[int] = []
    if total <= size:
        chosen = sorted(image_ids)
    else:
        quotas = {k: max(1, round(size * len(v) / total)) for k, v in strata.items()}
        # trim (largest strata first) or top up so the quotas add up to size exactly
        while sum(quotas.values()) > size:
            k = max(quotas, key=lambda k: (quotas[k], k))
            quotas[k] -= 1
        for k in sorted(strata):
            members = list(strata[k])
            rng.shuffle(members)
            chosen.extend(members[: quotas[k]])
            strata[k] = members[quotas[k] :]
        rest = [i for k in sorted(strata) for i in strata[k]]
        rng.shuffle(rest)
        chosen.extend(rest[: size - len(chosen)])
        chosen.sort()
    try:
        with transaction.atomic():
            AuditSample.objects.create(version=version, seed=seed_value, size=size, image_ids=chosen)
    except IntegrityError:  # drawn concurrently: the stored draw wins (it is the same)
        return list(AuditSample.objects.get(version=version, seed=seed_value, size=size).image_ids)
    return chosen


def _video_reference_check(*, version: DatasetVersion, sample: AuditSample, path, fmt: str | None) -> None:
    """A video version's reference must fit the drawn clips (400 with each misfit located)."""
    import orjson

    with open(path, "rb") as fh:
        reference = orjson.loads(fh.read())
    categories = {int(c["id"]) for c in (version.statistics or {}).get("categories", [])}
    errors = video_reference_mismatches(reference=reference, fmt=fmt, clips=sample.clips, categories=categories)
    if errors:
        raise InvalidInput(
            f"The reference does not fit the audit sample's clips ({len(errors)} error(s)).",
            code=DatasetErrorCode.NOT_IN_SAMPLE,
            details=errors[:100],
        )


AUDIT_REFERENCE_STATES = (VersionState.PROCESSING, VersionState.IN_REVIEW)


def audit_reference_submit(*, version: DatasetVersion, actor, path, archive: bool = False) -> DatasetFile:
    """Validate an auditor's reference for the audit sample (a local path) and store it as
    role ``reference``, replacing an earlier one. Its images must be in the audit sample.

    A COCO instances JSON, or (``archive``) a zip or tar holding a panoptic reference: one
    COCO panoptic JSON and its PNGs. A bad reference is refused with located errors and
    changes nothing; the seller's version is never touched by it. A video version's
    reference is YouTube-VIS JSON fitting the sampled clips."""
    if version.state not in AUDIT_REFERENCE_STATES:
        raise Conflict(f"References are taken while a version is processing or in review; it is {version.state}.", code=DatasetErrorCode.INVALID_STATE)
    sample = AuditSample.objects.filter(version=version).order_by("created_at").first()
    if sample is None:
        raise Conflict("This version has no audit sample yet.", code=DatasetErrorCode.NO_AUDIT_SAMPLE)
    if archive:
        with tempfile.TemporaryDirectory(prefix=f"reference-{version.pk}-") as tmp:
            json_member, pngs, result = _panoptic_reference_read(version=version, sample=sample, path=Path(path), scratch=Path(tmp))
            return _reference_store(
                version=version, actor=actor, sample=sample, json_path=json_member.local, json_name=json_member.path, pngs=pngs, n_images=len(result.image_ids)
            )
    result = validate_annotation_file(path, check_image_files=None)
    if not result.valid:
        raise InvalidInput("The reference annotations are not valid.", code=DatasetErrorCode.INVALID_REFERENCE, details=result.report["errors"][:100])
    if sample.clips:
        _video_reference_check(version=version, sample=sample, path=path, fmt=result.format)
    else:
        _check_in_sample(result.image_ids, sample)
    return _reference_store(version=version, actor=actor, sample=sample, json_path=Path(path), json_name="", pngs=[], n_images=len(result.image_ids))


def _check_in_sample(image_ids: list[int], sample: AuditSample) -> None:
    outside = sorted(set(image_ids) - set(sample.image_ids))
    if outside:
        raise InvalidInput(
            f"{len(outside)} reference image(s) are not in the audit sample.",
            code=DatasetErrorCode.NOT_IN_SAMPLE,
            details=[field_error("images", f"image id {i} is not in the sample", "not_in_sample") for i in outside[:50]],
        )


def _refuse(errors: list[dict]) -> None:
    if errors:
        raise InvalidInput("The panoptic reference is not valid.", code=DatasetErrorCode.INVALID_REFERENCE, details=errors[:100])


def _panoptic_reference_read(*, version: DatasetVersion, sample: AuditSample, path: Path, scratch: Path):
    """Extract and check a panoptic reference archive: one COCO panoptic JSON whose images
    are in the sample, with the seller's categories and image sizes, and for each of its
    annotations exactly one PNG (found by name among the archive's files) whose segment ids
    are the annotation's. Returns (the JSON member, the PNG members, the validation)."""
    lim = limits()
    try:
        members = safe_extract(path, scratch / "x", lim=lim)
    except ArchiveError as exc:
        raise InvalidInput("The reference archive cannot be read.", code=DatasetErrorCode.INVALID_REFERENCE, details=[field_error(exc.location, exc.message, exc.code)]) from exc
    jsons = [m for m in members if m.path.lower().endswith(".json")]
    if len(jsons) != 1:
        _refuse([field_error("archive", f"a panoptic reference holds exactly one JSON file; this one holds {len(jsons)}", "reference_json_count")])
    by_name: dict[str, Extracted] = {}
    errors: list[dict] = []
    for m in members:
        if m is jsons[0]:
            continue
        base = m.path.rsplit("/", 1)[-1]
        if not base.lower().endswith(".png"):
            errors.append(field_error(m.path, "a panoptic reference holds its JSON and PNGs only", "unexpected_file"))
        elif base in by_name:
            errors.append(field_error(m.path, f"a second PNG named {base!r} (also {by_name[base].path!r})", "duplicate_file_name"))
        else:
            by_name[base] = m
    _refuse(errors)
    result = validate_annotation_file(jsons[0].local, check_image_files=None, lim=lim)
    if not result.valid:
        raise InvalidInput("The reference annotations are not valid.", code=DatasetErrorCode.INVALID_REFERENCE, details=result.report["errors"][:100])
    if result.format != "coco_panoptic":
        _refuse([field_error(jsons[0].path, f"an archive holds a COCO panoptic reference; this JSON is {result.format}", "wrong_format")])
    _check_in_sample(result.image_ids, sample)
    doc = json.loads(jsons[0].local.read_bytes())
    seller = version_coco(version=version, role=FileRole.PANOPTIC) or {}
    seller_cats = sorted(int(c["id"]) for c in seller.get("categories", []))
    if sorted(int(c["id"]) for c in doc["categories"]) != seller_cats:
        errors.append(field_error("categories", f"the reference's category ids must be the seller's: {seller_cats}", "categories_differ"))
    seller_sizes = {int(img["id"]): (img.get("height"), img.get("width")) for img in seller.get("images", [])}
    sizes = {}
    for i, img in enumerate(doc["images"]):
        sizes[img["id"]] = (img["height"], img["width"])
        if seller_sizes.get(img["id"]) != sizes[img["id"]]:
            errors.append(field_error(f"images[{i}]", f"image {img['id']} is {img['height']}x{img['width']}; the seller's is {seller_sizes.get(img['id'])}", "image_size_mismatch"))
    used: set[str] = set()
    for i, ann in enumerate(doc["annotations"]):
        loc = f"annotations[{i}]"
        name = ann["file_name"]
        member = by_name.get(name) or by_name.get(name.rsplit("/", 1)[-1])
        if member is None:
            errors.append(field_error(f"{loc}.file_name", f"{name!r} is not in the archive", "image_file_missing"))
            continue
        used.add(member.path)
        bad = check_image(member.local, lim=lim)
        if bad:
            errors.append(field_error(f"{loc}.file_name", bad[1], bad[0]))
            continue
        png = png_segments(member.local)
        if isinstance(png, tuple):
            errors.append(field_error(f"{loc}.file_name", png[1], png[0]))
            continue
        for j, seg in enumerate(ann["segments_info"]):
            if seg.get("iscrowd") not in (0, 1) or isinstance(seg.get("iscrowd"), bool):
                errors.append(field_error(f"{loc}.segments_info[{j}].iscrowd", "a reference segment says whether it is a crowd: 0 or 1", "missing_field"))
            if not isinstance(seg.get("area"), (int, float)) or isinstance(seg.get("area"), bool):
                errors.append(field_error(f"{loc}.segments_info[{j}].area", "a reference segment has its area in pixels", "missing_field"))
        errors += [field_error(where, message, code) for code, where, message in annotation_errors(ann, loc, png, sizes.get(ann["image_id"]))]
    for m in by_name.values():
        if m.path not in used:
            errors.append(field_error(m.path, "no annotation names this PNG", "unreferenced_file"))
    _refuse(errors)
    return jsons[0], [m for m in by_name.values() if m.path in used], result


def _sha256(path: Path) -> tuple[str, int]:
    digest = hashlib.sha256()
    size = 0
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(CHUNK), b""):
            digest.update(chunk)
            size += len(chunk)
    return digest.hexdigest(), size


def _reference_store(*, version: DatasetVersion, actor, sample: AuditSample, json_path: Path, json_name: str, pngs: list, n_images: int) -> DatasetFile:
    """Store a checked reference (its JSON, and a panoptic reference's PNGs under the JSON's
    digest) as role ``reference`` rows, replacing the earlier ones, and let the pipeline go on."""
    sha, size = _sha256(json_path)
    storage = get_storage()
    if pngs:
        base = f"versions/{version.pk}/reference/{sha}"
        key, row_path = f"{base}/{json_name}", f"reference/{sha[:16]}/{json_name}"
    else:
        key, row_path = f"versions/{version.pk}/reference/{sha}.json", f"reference/{sha[:16]}.json"
    storage.put_file(key, json_path, content_type="application/json")
    png_rows = []
    for m in pngs:
        png_sha, png_size = _sha256(m.local)
        png_key = f"{base}/{m.path}"
        storage.put_file(png_key, m.local, content_type="image/png")
        png_rows.append((f"reference/{sha[:16]}/{m.path}", png_key, png_sha, png_size))
    new_keys = {key} | {r[1] for r in png_rows}
    with transaction.atomic():
        locked = DatasetVersion.objects.select_for_update().select_related("dataset__owner").get(pk=version.pk)
        old = list(locked.files.filter(role=FileRole.REFERENCE))
        old_keys = [f.storage_key for f in old if f.storage_key not in new_keys]
        for f in old:
            f.delete()
        dfile = DatasetFile.objects.create(
            version=locked,
            role=FileRole.REFERENCE,
            path=row_path,
            size=size,
            sha256=sha,
            content_type="application/json",
            storage_key=key,
            origin=FileOrigin.AUDIT,
        )
        DatasetFile.objects.bulk_create(
            DatasetFile(version=locked, role=FileRole.REFERENCE, path=p, size=n, sha256=h, content_type="image/png", storage_key=k, origin=FileOrigin.AUDIT, source=dfile)
            for p, k, h, n in png_rows
        )
        audit_event_record(
            actor=actor,
            action="version.audit_reference",
            obj=locked,
            organization=locked.dataset.owner,
            after={"sha256": sha, "images": n_images, "sample_size": len(sample.image_ids), "pngs": len(png_rows)},
        )
        transaction.on_commit(lambda: [storage.delete(k) for k in old_keys])
        # The pipeline waits in `processing` for this reference: it goes on from this
        # event rather than at the sweeper's next pass.
        publish(AuditReferenceSubmitted(version_id=locked.pk))
    return dfile
