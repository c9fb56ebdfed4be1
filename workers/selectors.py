"""Reads of job records, with the object-level rule: the version's seller organization
members and platform staff see its jobs; anyone else gets 404."""

from __future__ import annotations

from django.db.models import QuerySet

from marketplace.core.errors import NotFound
from marketplace.core.permissions import is_staff_member
from workers.models import Job


def version_for_jobs(*, user, version_id: int):
    from datasets.models import DatasetVersion
    from marketplace.accounts.selectors import organizations_for

    version = DatasetVersion.objects.select_related("dataset").filter(pk=version_id).first()
    if version is None:
        raise NotFound("Version not found.", code="version_not_found")
    if is_staff_member(user):
        return version
    if not organizations_for(user=user).filter(pk=version.dataset.owner_id).exists():
        raise NotFound("Version not found.", code="version_not_found")
    return version


def version_jobs(*, user, version_id: int) -> tuple[object, QuerySet[Job]]:
    version = version_for_jobs(user=user, version_id=version_id)
    return version, Job.objects.filter(version=version).order_by("created_at", "id")
