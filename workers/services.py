"""Writes on jobs: a staff re-run of a pipeline step."""

from __future__ import annotations

from django.db import transaction

from datasets.models import DatasetVersion
from marketplace.audit.services import audit_event_record
from marketplace.core.errors import InvalidInput, NotFound, field_error
from workers.errors import PipelineErrorCode
from workers.jobs import job_enqueue, job_for_step
from workers.models import Job, JobState, JobStep


@transaction.atomic
def job_rerun(*, version_id: int, step: str, actor) -> tuple[Job, bool]:
    """Re-run a step for a version (for example after an engine upgrade).

    The job key holds the engine version and the input checksum: with a new engine the key
    is new, so a new job (and, through the idempotent service, a new report) is made; with
    the same engine the existing succeeded job is returned and nothing runs. A failed job
    is reset and sent again. Returns (job, enqueued).
    """
    if step not in JobStep.values:
        raise InvalidInput("Unknown step.", code=PipelineErrorCode.UNKNOWN_STEP, details=[field_error("step", f"one of {', '.join(JobStep.values)}", "invalid_choice")])
    version = DatasetVersion.objects.select_for_update().select_related("dataset").filter(pk=version_id).first()
    if version is None:
        raise NotFound("Version not found.", code=PipelineErrorCode.VERSION_NOT_FOUND)
    job, created = job_for_step(version=version, step=step)
    if not created and job.state == JobState.SUCCEEDED:
        return job, False
    if not created and job.state in (JobState.FAILED, JobState.FAILED_VALIDATION, JobState.WAITING):
        Job.objects.filter(pk=job.pk).update(state=JobState.QUEUED, attempts=0, error="", progress=0, message="re-run by staff")
        job.refresh_from_db()
        created = True
    if created:
        job_enqueue(job=job)
        audit_event_record(
            actor=actor, action="job.rerun", obj=version, organization=version.dataset.owner,
            after={"step": step, "job": job.pk, "engine_version": job.engine_version}, reason="staff re-run",
        )
    return job, created
