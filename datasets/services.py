"""Writes for datasets and versions. Each is atomic and records its audit event."""

from __future__ import annotations

from django.db import IntegrityError, transaction
from django.db.models import Max
from django.utils import timezone

from datasets.models import Dataset, DatasetVersion
from datasets.states import VersionState, can_transition
from licensing.audit import audit_event_record
from marketplace.core.errors import Conflict, field_error


def dataset_create(*, owner, actor, slug: str, title: str, annotation_license: str, **fields) -> Dataset:
    m2m = {name: fields.pop(name) for name in ("embodiments", "tasks", "scene_types") if name in fields}
    try:
        with transaction.atomic():
            dataset = Dataset.objects.create(owner=owner, created_by=actor, slug=slug, title=title, annotation_license=annotation_license, **fields)
            for name, terms in m2m.items():
                getattr(dataset, name).set(terms)
            audit_event_record(actor=actor, action="dataset.create", obj=dataset, organization=owner, after={"slug": slug, "title": title})
    except IntegrityError:
        raise Conflict("A dataset with that slug exists.", code="slug_taken", details=[field_error("slug", "taken")]) from None
    return dataset


@transaction.atomic
def version_create(*, dataset: Dataset, actor, notes: str = "") -> DatasetVersion:
    """A new draft version. At most one draft is open per dataset at a time."""
    Dataset.objects.select_for_update().get(pk=dataset.pk)  # serialise numbering per dataset
    if dataset.versions.filter(state=VersionState.DRAFT).exists():
        raise Conflict("This dataset already has an open draft version.", code="draft_exists")
    number = (dataset.versions.aggregate(n=Max("number"))["n"] or 0) + 1
    version = DatasetVersion.objects.create(dataset=dataset, number=number, notes=notes, created_by=actor)
    audit_event_record(actor=actor, action="version.create", obj=version, organization=dataset.owner, after={"number": number, "state": version.state})
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
            code="invalid_transition",
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
    version.state, version.state_changed_at = locked.state, locked.state_changed_at
    return locked
