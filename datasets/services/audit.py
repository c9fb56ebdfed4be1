"""Writes for the audit: the platform's seeded draw of a submitted version's audit
sample, and the auditor's reference annotations for it."""

from __future__ import annotations

import hashlib
import random

from django.db import IntegrityError, transaction

from datasets.errors import DatasetErrorCode
from datasets.events import AuditReferenceSubmitted
from datasets.ingest.validate import validate_annotation_file
from datasets.limits import limits
from datasets.models import AuditSample, DatasetFile, DatasetVersion, FileOrigin, FileRole
from datasets.selectors import version_image_categories, version_video_file
from datasets.services.clips import clip_sample_draw, video_reference_mismatches
from datasets.states import VersionState
from marketplace.audit.services import audit_event_record
from marketplace.core.errors import Conflict, InvalidInput, field_error
from marketplace.core.events import publish
from marketplace.core.storage import CHUNK, get_storage


def audit_sample_draw(*, version: DatasetVersion, size: int | None = None, seed: int | None = None) -> list[int]:
    """Draw (once) the audit sample: ``size`` image ids, stratified by category.

    Seeded by the version id (and ``seed`` when given), so the same version and seed
    always give the same sample; the draw is stored and returned as is afterwards.
    A video version's sample is clips instead (:mod:`datasets.services.clips`); the ids of
    their frames are returned when the frames are COCO images.
    Each image is put in the stratum of its rarest category (images without annotations
    form their own stratum); strata get shares proportional to their size, at least one.
    """
    if version_video_file(version=version) is not None:
        clips = clip_sample_draw(version=version, seed=seed)
        return [i for clip in clips for i in clip.get("image_ids", [])]
    size = size or limits().audit_sample_size
    seed_value = version.pk if seed is None else seed
    existing = AuditSample.objects.filter(version=version, seed=seed_value, size=size).first()
    if existing:
        return list(existing.image_ids)
    image_ids, image_cats, cat_counts = version_image_categories(version=version)
    strata: dict[int, list[int]] = {}
    for image_id in sorted(image_ids):
        cats = image_cats.get(image_id)
        key = min(cats, key=lambda c: (cat_counts[c], c)) if cats else -1
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


def audit_reference_submit(*, version: DatasetVersion, actor, path) -> DatasetFile:
    """Validate an auditor's reference COCO file (a local path) and store it as role
    ``reference``, replacing an earlier one. Its images must be in the audit sample; a
    video version's reference is YouTube-VIS JSON fitting the sampled clips."""
    if version.state not in AUDIT_REFERENCE_STATES:
        raise Conflict(f"References are taken while a version is processing or in review; it is {version.state}.", code=DatasetErrorCode.INVALID_STATE)
    sample = AuditSample.objects.filter(version=version).order_by("created_at").first()
    if sample is None:
        raise Conflict("This version has no audit sample yet.", code=DatasetErrorCode.NO_AUDIT_SAMPLE)
    result = validate_annotation_file(path, check_image_files=None)
    if not result.valid:
        raise InvalidInput("The reference annotations are not valid.", code=DatasetErrorCode.INVALID_REFERENCE, details=result.report["errors"][:100])
    if sample.clips:
        _video_reference_check(version=version, sample=sample, path=path, fmt=result.format)
    elif outside := sorted(set(result.image_ids) - set(sample.image_ids)):
        raise InvalidInput(
            f"{len(outside)} reference image(s) are not in the audit sample.",
            code=DatasetErrorCode.NOT_IN_SAMPLE,
            details=[field_error("images", f"image id {i} is not in the sample", "not_in_sample") for i in outside[:50]],
        )
    digest = hashlib.sha256()
    size = 0
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(CHUNK), b""):
            digest.update(chunk)
            size += len(chunk)
    sha = digest.hexdigest()
    key = f"versions/{version.pk}/reference/{sha}.json"
    storage = get_storage()
    storage.put_file(key, path, content_type="application/json")
    with transaction.atomic():
        locked = DatasetVersion.objects.select_for_update().select_related("dataset__owner").get(pk=version.pk)
        old = list(locked.files.filter(role=FileRole.REFERENCE))
        old_keys = [f.storage_key for f in old if f.storage_key != key]
        for f in old:
            f.delete()
        dfile = DatasetFile.objects.create(
            version=locked,
            role=FileRole.REFERENCE,
            path=f"reference/{sha[:16]}.json",
            size=size,
            sha256=sha,
            content_type="application/json",
            storage_key=key,
            origin=FileOrigin.AUDIT,
        )
        audit_event_record(
            actor=actor,
            action="version.audit_reference",
            obj=locked,
            organization=locked.dataset.owner,
            after={"sha256": sha, "images": len(result.image_ids), "sample_size": len(sample.image_ids)},
        )
        transaction.on_commit(lambda: [storage.delete(k) for k in old_keys])
        # The pipeline waits in `processing` for this reference: it goes on from this
        # event rather than at the sweeper's next pass.
        publish(AuditReferenceSubmitted(version_id=locked.pk))
    return dfile
