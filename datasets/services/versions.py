"""Writes for datasets and their versions: create, edit, move along the life cycle,
submit. Each is atomic and records its audit event; reactions elsewhere (the listing,
the pipeline) follow from the events published here, after commit."""

from __future__ import annotations

from typing import Any

from django.db import IntegrityError, transaction
from django.db.models import Max
from django.utils import timezone

from datasets.errors import DatasetErrorCode
from datasets.events import DatasetChanged, VersionStateChanged, VersionSubmitted
from datasets.models import Dataset, DatasetVersion, FileRole, UploadState
from datasets.services.uploads import upload_abort_storage
from datasets.states import VersionState, can_transition
from marketplace.audit.services import audit_event_record
from marketplace.core.errors import Conflict, InvalidInput, field_error
from marketplace.core.events import publish

DATASET_EDITABLE = (
    "title",
    "summary",
    "description",
    "annotation_kind",
    "sensors",
    "annotation_license",
    "price",
    "currency",
    "embodiments",
    "tasks",
    "scene_types",
)
# Fields that describe what a buyer gets: frozen once any version has left draft, as a
# published version's terms must not change under its buyers.
DATASET_LOCKED_AFTER_SUBMIT = ("annotation_kind", "annotation_license")
ANNOTATION_ROLES = (FileRole.ANNOTATIONS, FileRole.VIDEO, FileRole.PANOPTIC)




def dataset_create(*, owner, actor, slug: str, title: str, annotation_license: str, **fields) -> Dataset:
    m2m = {name: fields.pop(name) for name in ("embodiments", "tasks", "scene_types") if name in fields}
    try:
        with transaction.atomic():
            dataset = Dataset.objects.create(
                owner=owner, created_by=actor, slug=slug, title=title, annotation_license=annotation_license, **fields
            )
            for name, terms in m2m.items():
                getattr(dataset, name).set(terms)
            audit_event_record(actor=actor, action="dataset.create", obj=dataset, organization=owner, after={"slug": slug, "title": title})
    except IntegrityError:
        raise Conflict("A dataset with that slug exists.", code=DatasetErrorCode.SLUG_TAKEN, details=[field_error("slug", "taken")]) from None
    return dataset


@transaction.atomic
def version_create(*, dataset: Dataset, actor, notes: str = "") -> DatasetVersion:
    """A new draft version. At most one draft is open per dataset at a time."""
    Dataset.objects.select_for_update().get(pk=dataset.pk)  # serialise numbering per dataset
    if dataset.versions.filter(state=VersionState.DRAFT).exists():
        raise Conflict("This dataset already has an open draft version.", code=DatasetErrorCode.DRAFT_EXISTS)
    number = (dataset.versions.aggregate(n=Max("number"))["n"] or 0) + 1
    version = DatasetVersion.objects.create(dataset=dataset, number=number, notes=notes, created_by=actor)
    audit_event_record(
        actor=actor, action="version.create", obj=version, organization=dataset.owner, after={"number": number, "state": version.state}
    )
    return version


@transaction.atomic
def version_transition(*, version: DatasetVersion, to_state: str, actor, reason: str = "", action: str | None = None) -> DatasetVersion:
    """Move a version along its life cycle, under a row lock, with an audit event.

    Raises :class:`Conflict` (code ``invalid_transition``) for a transition that does
    not exist. Re-applying the state a version is already in is a no-op, so a task
    delivered twice does not fail or write twice.
    """
    locked = DatasetVersion.objects.select_for_update().select_related("dataset").get(pk=version.pk)
    if locked.state == to_state:
        return locked
    if not can_transition(locked.state, to_state):
        raise Conflict(
            f"A version in state {locked.state!r} cannot move to {to_state!r}.",
            code=DatasetErrorCode.INVALID_TRANSITION,
            details=[field_error("state", f"{locked.state} -> {to_state} is not allowed")],
        )
    before = locked.state
    now = timezone.now()
    locked.state = to_state
    locked.state_changed_at = now
    update = ["state", "state_changed_at"]
    if to_state == VersionState.SUBMITTED:
        locked.submitted_at = now
        update.append("submitted_at")
    if to_state == VersionState.PUBLISHED and locked.published_at is None:
        locked.published_at = now
        update.append("published_at")
    locked.save(update_fields=update)
    audit_event_record(
        actor=actor,
        action=action or f"version.{to_state}",
        obj=locked,
        organization=locked.dataset.owner,
        before={"state": before},
        after={"state": to_state},
        reason=reason,
    )
    publish(VersionStateChanged(version_id=locked.pk, dataset_id=locked.dataset_id, before=before, after=to_state))
    version.state, version.state_changed_at = locked.state, locked.state_changed_at
    return locked


@transaction.atomic
def dataset_update(*, dataset: Dataset, actor, **fields: Any) -> Dataset:
    locked = Dataset.objects.select_for_update().get(pk=dataset.pk)
    unknown = sorted(set(fields) - set(DATASET_EDITABLE))
    if unknown:
        raise InvalidInput(
            "These fields cannot be changed.", code=DatasetErrorCode.READ_ONLY_FIELD, details=[field_error(f, "read-only", "read_only") for f in unknown]
        )
    if locked.versions.exclude(state=VersionState.DRAFT).exists():
        frozen = [f for f in DATASET_LOCKED_AFTER_SUBMIT if f in fields and fields[f] != getattr(locked, f)]
        if frozen:
            raise Conflict(
                "These fields are fixed once a version was submitted.",
                code=DatasetErrorCode.DATASET_FROZEN,
                details=[field_error(f, "fixed after submit", "frozen") for f in frozen],
            )
    before = {f: str(getattr(locked, f)) for f in fields if f not in ("embodiments", "tasks", "scene_types")}
    for name, value in fields.items():
        if name in ("embodiments", "tasks", "scene_types"):
            getattr(locked, name).set(value)
        else:
            setattr(locked, name, value)
    locked.save()
    after = {f: str(getattr(locked, f)) for f in before}
    audit_event_record(actor=actor, action="dataset.update", obj=locked, organization=locked.owner, before=before, after=after)
    publish(DatasetChanged(dataset_id=locked.pk))
    return locked


@transaction.atomic
def version_submit(*, version: DatasetVersion, actor) -> DatasetVersion:
    """Freeze a complete draft. The pipeline starts from the ``VersionSubmitted`` event, after commit."""
    locked = DatasetVersion.objects.select_for_update().get(pk=version.pk)
    if locked.state != VersionState.DRAFT:
        raise Conflict(f"Only a draft can be submitted; this version is {locked.state}.", code=DatasetErrorCode.INVALID_TRANSITION)
    if locked.uploads.filter(state=UploadState.VERIFYING).exists():
        raise Conflict("Some uploads are still being verified; submit when they are complete.", code=DatasetErrorCode.UPLOADS_PENDING)
    if not locked.files.filter(role__in=ANNOTATION_ROLES).exists():
        raise Conflict(
            "A version needs an annotation file (role annotations, video or panoptic) before it can be submitted.",
            code=DatasetErrorCode.INCOMPLETE_VERSION,
            details=[field_error("files", "no annotation file", "missing")],
        )
    # Open uploads can no longer land in a frozen version: abort them now.
    for upload in locked.uploads.filter(state=UploadState.OPEN):
        upload_abort_storage(upload)
        upload.state = UploadState.ABORTED
        upload.error = {"code": "version_submitted", "message": "The version was submitted before this upload completed."}
        upload.save(update_fields=["state", "error", "updated_at"])
    locked = version_transition(version=locked, to_state=VersionState.SUBMITTED, actor=actor, action="version.submit")
    publish(VersionSubmitted(version_id=locked.pk))
    version.state = locked.state
    return locked
