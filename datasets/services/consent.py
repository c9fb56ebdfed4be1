"""Writes that follow a consent revocation (recorded by the licensing app): the published
version is marked with the seller's deadline, and the withdrawn content is remembered so
that every later version of the dataset refuses it at ingest."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime

from django.db import transaction

from datasets.models import DatasetVersion, WithdrawnContent, WithdrawnKind
from marketplace.audit.services import audit_event_record


@transaction.atomic
def version_revocation_mark(*, version: DatasetVersion, deadline: datetime, actor, reason: str = "") -> DatasetVersion:
    """Mark the version ``revocation_pending`` until ``deadline`` (the earliest pending
    deadline wins when several revocations reach it)."""
    locked = DatasetVersion.objects.select_for_update().select_related("dataset").get(pk=version.pk)
    before = locked.revocation_deadline
    if before is not None and before <= deadline:
        return locked
    locked.revocation_deadline = deadline
    locked.save(update_fields=["revocation_deadline"])
    audit_event_record(
        actor=actor,
        action="version.revocation_pending",
        obj=locked,
        organization=locked.dataset.owner,
        before={"revocation_deadline": before.isoformat() if before else None},
        after={"revocation_deadline": deadline.isoformat()},
        reason=reason,
    )
    return locked


@transaction.atomic
def version_revocation_clear(*, version: DatasetVersion, actor, reason: str = "") -> DatasetVersion:
    """No revocation is pending on the version any more (it was replaced or suspended)."""
    locked = DatasetVersion.objects.select_for_update().select_related("dataset").get(pk=version.pk)
    if locked.revocation_deadline is None:
        return locked
    before = locked.revocation_deadline
    locked.revocation_deadline = None
    locked.save(update_fields=["revocation_deadline"])
    audit_event_record(
        actor=actor,
        action="version.revocation_closed",
        obj=locked,
        organization=locked.dataset.owner,
        before={"revocation_deadline": before.isoformat()},
        after={"revocation_deadline": None},
        reason=reason,
    )
    return locked


def withdrawn_content_add(*, dataset_id: int, revocation_id: int, items: Iterable[tuple[str, str, str]]) -> int:
    """Remember ``(kind, value, path)`` items as withdrawn from the dataset (idempotent).
    Returns how many were new."""
    rows = [
        WithdrawnContent(dataset_id=dataset_id, kind=kind, value=value[:200], path=path[:1024], revocation_id=revocation_id)
        for kind, value, path in items
        if kind in WithdrawnKind.values and value
    ]
    before = WithdrawnContent.objects.filter(dataset_id=dataset_id).count()
    WithdrawnContent.objects.bulk_create(rows, ignore_conflicts=True)
    return WithdrawnContent.objects.filter(dataset_id=dataset_id).count() - before
