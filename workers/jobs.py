"""Job bookkeeping: creating a step's job under its idempotency key, progress updates,
and the state changes a task makes as it starts, retries, succeeds or fails."""

from __future__ import annotations

import hashlib
import logging
import re
import socket
from collections.abc import Callable
from datetime import timedelta

from celery.exceptions import SoftTimeLimitExceeded
from django.conf import settings
from django.db import transaction
from django.utils import timezone

from datasets.selectors import version_files
from marketplace.core.errors import DomainError
from quality.engine import ENGINE_VERSION
from quality.engine.errors import EngineInputError
from quality.engine.iou import resolve_device
from workers.errors import PipelineErrorCode
from workers.models import Job, JobState, JobStep

logger = logging.getLogger(__name__)

QUALITY_STEPS = {
    "intrinsic": JobStep.QUALITY_INTRINSIC,
    "audit": JobStep.QUALITY_AUDIT,
    "agreement": JobStep.QUALITY_AGREEMENT,
    "temporal": JobStep.QUALITY_TEMPORAL,
    "panoptic": JobStep.QUALITY_PANOPTIC,
}
STEP_KIND = {step.value: kind for kind, step in QUALITY_STEPS.items()}

# The queue each step runs on (ingest on CPU workers, quality on GPU workers).
STEP_QUEUE = {JobStep.INGEST: "ingest", JobStep.AUDIT_SAMPLE: "default", JobStep.CHECKS: "default"} | {
    step: "quality" for step in QUALITY_STEPS.values()
}

# The file roles each step reads: its input checksum covers these (and nothing else, so an
# auditor's later reference upload does not make a new intrinsic job).
STEP_ROLES: dict[str, tuple[str, ...] | None] = {
    JobStep.INGEST: None,  # every file
    JobStep.AUDIT_SAMPLE: ("annotations", "video", "panoptic"),
    JobStep.QUALITY_INTRINSIC: ("annotations", "video"),
    JobStep.QUALITY_AUDIT: ("annotations", "video", "reference"),
    JobStep.QUALITY_AGREEMENT: ("annotations", "second_pass"),
    JobStep.QUALITY_TEMPORAL: ("annotations", "video"),
    JobStep.QUALITY_PANOPTIC: ("panoptic", "annotations", "reference"),
    JobStep.CHECKS: None,
}


def engine_version_for(step: str) -> str:
    return ENGINE_VERSION if step in STEP_KIND else ""


def input_checksum(*, version, step: str) -> str:
    """sha256 over the (role, path, sha256) of the files the step reads.

    Images are excluded: their checksums are part of the manifest the annotations refer
    to, and hashing thousands of rows per step buys nothing.
    """
    roles = STEP_ROLES.get(step)
    # Files the platform writes (ingest output) are results, not inputs: leaving them out
    # keeps a step's key the same before and after ingest ran.
    files = version_files(version=version).exclude(origin="ingest").exclude(role="images")
    files = files.filter(role__in=roles) if roles is not None else files.exclude(role="reference")
    digest = hashlib.sha256()
    for role, path, sha in files.order_by("role", "path").values_list("role", "path", "sha256"):
        digest.update(f"{role}\0{path}\0{sha}\n".encode())
    return digest.hexdigest()


def step_deadline(*, extra_seconds: float = 0):
    return timezone.now() + timedelta(seconds=settings.PIPELINE_STEP_TIMEOUT + extra_seconds)


def job_for_step(*, version, step: str) -> tuple[Job, bool]:
    """The job for the step under its current key (version, step, engine version, input
    checksum), created as ``queued`` if missing. Returns (job, created)."""
    job, created = Job.objects.get_or_create(
        version=version,
        step=step,
        engine_version=engine_version_for(step),
        input_checksum=input_checksum(version=version, step=step),
        defaults={"state": JobState.QUEUED, "deadline": step_deadline(), "enqueued_at": timezone.now()},
    )
    return job, created


def step_time_limits(*, step: str) -> tuple[float, float]:
    """(soft, hard) seconds for the step: its own entry in ``PIPELINE_TIME_LIMITS``, else its
    kind's (every report step is of kind ``quality``)."""
    limits = settings.PIPELINE_TIME_LIMITS
    if step in limits:
        return limits[step]
    return limits["quality" if step in STEP_KIND else step]


def max_attempts() -> int:
    """Deliveries of one job before it ends ``failed``: the first and its retries."""
    return settings.PIPELINE_MAX_RETRIES + 1


def job_enqueue(*, job: Job) -> None:
    """Send the job's task once the current transaction commits (a worker must see the row),
    with the step kind's time limits."""
    from workers.tasks import job_run

    queue = STEP_QUEUE[job.step]
    soft, hard = step_time_limits(step=job.step)
    job_id = job.pk
    transaction.on_commit(lambda: job_run.apply_async(args=[job_id], queue=queue, soft_time_limit=soft, time_limit=hard))


def job_progress(*, job_id: int, done: int, total: int, message: str = "") -> None:
    """Record progress (percent of ``done``/``total``); writes only when the percent moves.

    Progress also pushes the deadline forward: a long step that is visibly working is
    not swept as lost.
    """
    percent = 100 if total <= 0 else max(0, min(100, int(100 * done / total)))
    fields = {"progress": percent, "deadline": step_deadline(), "updated_at": timezone.now()}
    if message:
        fields["message"] = message[:500]
    Job.objects.filter(pk=job_id, progress__lt=percent, state=JobState.RUNNING).update(**fields)


def progress_callback(job_id: int) -> Callable[[int, int], None]:
    last = {"percent": -1}

    def progress(done: int, total: int) -> None:
        percent = 100 if total <= 0 else int(100 * done / total)
        if percent != last["percent"]:
            last["percent"] = percent
            try:
                job_progress(job_id=job_id, done=done, total=total, message=f"{done}/{total}")
            except SoftTimeLimitExceeded:
                raise  # the step is over its time limit: it must stop, not go on
            except Exception:  # noqa: BLE001 - progress is advisory; the step itself must go on
                logger.warning("progress update failed for job %s", job_id, exc_info=True)

    return progress


def job_mark_running(*, job_id: int, worker: str, device: str = "") -> tuple[Job, bool]:
    """Claim the job for this attempt: (job, claimed). Not claimed when the job is final: a
    redelivery of finished work, or a job given up here.

    A job found ``running`` was never finished by its last attempt: that worker process
    died (killed, out of memory) and the broker delivered the message again. Such an
    attempt counts like any other, and once ``max_attempts()`` have been made the job ends
    ``failed`` (``worker_lost``) instead of taking down one worker after another.
    """
    with transaction.atomic():
        job = Job.objects.select_for_update().get(pk=job_id)
        if job.is_final:
            return job, False
        if job.state == JobState.RUNNING and job.attempts >= max_attempts():
            job_fail(
                job_id=job.pk, code=PipelineErrorCode.WORKER_LOST,
                message=f"the worker running this step was lost on each of its {job.attempts} attempts",
            )
            job.refresh_from_db()
            return job, False
        job.state = JobState.RUNNING
        job.attempts += 1
        job.worker = (worker or socket.gethostname())[:255]
        job.device = device
        job.started_at = timezone.now()
        job.finished_at = None
        job.progress = 0
        job.message = f"attempt {job.attempts}"
        job.deadline = step_deadline()
        job.save()
        return job, True


def job_finish(*, job_id: int, state: str, result: dict | None = None, message: str = "", error: str = "") -> None:
    Job.objects.filter(pk=job_id).update(
        state=state,
        result=result or {},
        message=message[:500],
        error=error,
        progress=100 if state == JobState.SUCCEEDED else models_progress(job_id),
        finished_at=timezone.now(),
        deadline=None,
        updated_at=timezone.now(),
    )


def job_fail(*, job_id: int, code: str, message: str, state: str = JobState.FAILED) -> None:
    """End the job with an error a seller may read: a stable code, a message and where
    (the step), never a traceback."""
    step = Job.objects.filter(pk=job_id).values_list("step", flat=True).first() or ""
    job_finish(
        job_id=job_id, state=state, result={"code": code, "message": message, "location": f"jobs.{step}"},
        message=f"{code}: {message}", error=f"{code}: {message}",
    )


def models_progress(job_id: int) -> int:
    return Job.objects.filter(pk=job_id).values_list("progress", flat=True).first() or 0


def job_mark_retrying(*, job_id: int, error: str, countdown: float) -> None:
    Job.objects.filter(pk=job_id).exclude(state__in=[JobState.SUCCEEDED, JobState.FAILED, JobState.FAILED_VALIDATION]).update(
        state=JobState.QUEUED,
        error=error,
        message=f"transient error; retrying in {countdown:.0f}s",
        deadline=step_deadline(extra_seconds=countdown),
        updated_at=timezone.now(),
    )


def step_device(*, step: str) -> str:
    """The device a step computes on: quality steps follow ``QUALITY_DEVICE`` (auto → cuda
    when this worker sees a GPU); other steps are CPU work."""
    if step not in STEP_KIND:
        return "cpu"
    return resolve_device(settings.QUALITY_DEVICE)


# A path on the worker's disk (a scratch folder, a cache): the seller knows the file by its name.
_WORKER_PATH = re.compile(r"(?<![\w.:])/(?:[\w.@+-]+/)+([\w.@+-]+)")


def _seller_text(text: str) -> str:
    return _WORKER_PATH.sub(r"\1", text)


def failure_of(exc: BaseException) -> dict[str, str]:
    """What the seller may read about a bad-input error: its code, message and location
    (a JSON path or a file name), never the exception's type, frames or the worker's paths."""
    if isinstance(exc, EngineInputError):
        return {"code": str(exc.code), "message": _seller_text(exc.message)[:500], "location": _seller_text(exc.location or "")}
    if isinstance(exc, DomainError):
        location = next((d.get("location", "") for d in exc.details if isinstance(d, dict)), "")
        return {"code": str(exc.code), "message": _seller_text(exc.message)[:500], "location": _seller_text(location)}
    return {"code": PipelineErrorCode.STEP_FAILED, "message": "The step failed.", "location": ""}

