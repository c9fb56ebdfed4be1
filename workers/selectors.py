"""Reads of job records, with the object-level rule: the version's seller organization
members and platform staff see its jobs; anyone else gets 404."""

from __future__ import annotations

from django.db.models import QuerySet

from datasets.selectors import VersionAccess, version_visible
from workers.errors import PipelineErrorCode
from workers.models import Job, JobState, JobStep


def version_jobs(*, user, version_id: int) -> tuple[object, QuerySet[Job]]:
    version = version_visible(user=user, version_id=version_id, access=VersionAccess.INTERNALS)
    return version, Job.objects.filter(version=version).order_by("created_at", "id")


def job_failure(job: Job) -> dict[str, str] | None:
    """A failed job's error as its seller sees it (``GET versions/{id}/jobs/``): a code, a
    message and a location. ``Job.error`` (the exception and traceback) stays with staff,
    in the admin."""
    if job.state not in (JobState.FAILED, JobState.FAILED_VALIDATION):
        return None
    result = job.result or {}
    # Bad input keeps its error under "error"; job_fail (time limits, lost workers) writes
    # the code, message and location as the result itself.
    stored = result.get("error") if isinstance(result.get("error"), dict) else result
    if isinstance(stored, dict) and stored.get("code"):
        return {"code": str(stored["code"]), "message": str(stored.get("message", ""))[:500], "location": str(stored.get("location", ""))}
    if job.state == JobState.FAILED_VALIDATION:
        return {"code": "invalid_input", "message": job.message, "location": ""}
    label = JobStep(job.step).label if job.step in JobStep.values else job.step
    return {
        "code": PipelineErrorCode.STEP_FAILED,
        "message": f"The step '{label}' failed ({job.message or 'no more tries'}); the platform's staff have the details.",
        "location": f"jobs.{job.step}",
    }
