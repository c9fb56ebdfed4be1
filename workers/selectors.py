"""Reads of job records, with the object-level rule: the version's seller organization
members and platform staff see its jobs; anyone else gets 404."""

from __future__ import annotations

from django.db.models import QuerySet

from datasets.selectors import VersionAccess, version_visible
from workers.models import Job


def version_jobs(*, user, version_id: int) -> tuple[object, QuerySet[Job]]:
    version = version_visible(user=user, version_id=version_id, access=VersionAccess.INTERNALS)
    return version, Job.objects.filter(version=version).order_by("created_at", "id")
