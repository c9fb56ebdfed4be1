"""Worker tasks: they take ids and call services; every one is idempotent, so
at-least-once delivery (acks_late + reject_on_worker_lost, a sweeper that re-sends lost
work) does no second write."""

from __future__ import annotations

import logging
import random
import traceback

from billiard.exceptions import TimeLimitExceeded
from celery import Task, shared_task
from celery.exceptions import SoftTimeLimitExceeded
from django.conf import settings
from django.db import InterfaceError, OperationalError, transaction
from kombu.exceptions import OperationalError as KombuOperationalError
from redis.exceptions import ConnectionError as RedisConnectionError

from marketplace.core.errors import DomainError
from quality.engine.errors import EngineInputError
from workers.errors import PipelineErrorCode
from workers.jobs import (
    failure_of,
    job_fail,
    job_finish,
    job_mark_retrying,
    job_mark_running,
    progress_callback,
    step_device,
    step_time_limits,
)
from workers.models import Job, JobState
from workers.pipeline import pipeline_advance
from workers.sharding import evaluation_merge, evaluation_shard
from workers.steps import step_execute
from workers.sweeper import pipeline_sweep

logger = logging.getLogger(__name__)

# A database or broker that blinks is not the input's fault: such errors get a larger
# retry budget than ordinary transient errors, so a short outage never fails a version.
INFRASTRUCTURE_ERRORS: tuple[type[BaseException], ...] = (OperationalError, InterfaceError, KombuOperationalError, RedisConnectionError)
INFRASTRUCTURE_EXTRA_RETRIES = 20


# Bad input fails the same way every time: not worth a retry.
PERMANENT_ERRORS: tuple[type[BaseException], ...] = (DomainError, EngineInputError)


@shared_task(name="workers.tasks.ping")
def ping(value: str = "pong") -> dict:
    """A round trip through the broker: proves a worker is consuming ``default``."""
    import os

    return {"value": value, "pid": os.getpid()}


@shared_task(name="workers.tasks.pipeline_advance", bind=True, max_retries=None)
def pipeline_advance_task(self, version_id: int) -> str:
    try:
        return pipeline_advance(version_id=version_id)
    except INFRASTRUCTURE_ERRORS as exc:
        # Bounded: the sweeper nudges every processing version anyway.
        raise self.retry(exc=exc, countdown=min(2 ** self.request.retries, 30) + random.random(), max_retries=INFRASTRUCTURE_EXTRA_RETRIES) from exc


class PipelineStepTask(Task):
    """Retries transient errors with exponential backoff and jitter, at most
    ``PIPELINE_MAX_RETRIES`` times; then the job and its version end as ``failed``."""

    autoretry_for = (Exception,)
    retry_backoff = True  # 1 s, 2 s, 4 s, ... (before jitter)
    retry_backoff_max = settings.PIPELINE_RETRY_BACKOFF_MAX
    retry_jitter = True
    max_retries = settings.PIPELINE_MAX_RETRIES

    def on_retry(self, exc, task_id, args, kwargs, einfo):

        try:
            job_mark_retrying(job_id=args[0], error=_error_text(exc), countdown=min(2 ** (self.request.retries + 1), settings.PIPELINE_RETRY_BACKOFF_MAX))
        except Exception:  # noqa: BLE001 - the sweeper repairs what cannot be written now
            logger.warning("could not record the retry of job %s", args[0], exc_info=True)

    def on_failure(self, exc, task_id, args, kwargs, einfo):
        # Past the hard time limit this runs in the worker's main process: the process that
        # ran the step was killed, and the pool replaces it.
        try:
            if isinstance(exc, TimeLimitExceeded):
                _fail_past_limit(job_id=args[0], code=PipelineErrorCode.STEP_HARD_TIME_LIMIT)
            else:
                job_finish(job_id=args[0], state=JobState.FAILED, error=_error_text(exc), message=f"failed after {self.request.retries + 1} tries")
            version_id = Job.objects.filter(pk=args[0]).values_list("version_id", flat=True).first()
            if version_id:
                pipeline_advance_task.delay(version_id)
        except Exception:  # noqa: BLE001 - the sweeper gives up on it later instead
            logger.warning("could not record the failure of job %s", args[0], exc_info=True)


def _fail_past_limit(*, job_id: int, code: str) -> None:
    step = Job.objects.filter(pk=job_id).values_list("step", flat=True).first() or ""
    soft, hard = step_time_limits(step=step) if step else (0.0, 0.0)
    if code == PipelineErrorCode.STEP_HARD_TIME_LIMIT:
        message = f"the step ran past its hard time limit of {hard:g} s and its worker process was stopped"
    else:
        message = f"the step ran past its time limit of {soft:g} s and was stopped"
    job_fail(job_id=job_id, code=code, message=message)


def _error_text(exc: BaseException) -> str:
    text = f"{type(exc).__name__}: {exc}"
    return text[:4000]


@shared_task(name="workers.tasks.job_run", bind=True, base=PipelineStepTask)
def job_run(self, job_id: int) -> dict:
    """Run one pipeline step. A job already final (a redelivered message) does nothing."""
    try:
        job, claimed = job_mark_running(job_id=job_id, worker=self.request.hostname or "", device=step_device_safe(job_id))
    except INFRASTRUCTURE_ERRORS as exc:
        raise self.retry(exc=exc, countdown=min(2 ** self.request.retries, 30) + random.random(), max_retries=self.max_retries + INFRASTRUCTURE_EXTRA_RETRIES) from exc
    if not claimed:
        # Final already (a redelivery), or given up just now: the pipeline goes on from it.
        _advance_on_commit(job.version_id)
        return {"job": job_id, "skipped": "already final", "state": job.state}
    try:
        state, result, message = step_execute(job=job, progress=progress_callback(job_id), device=step_device(step=job.step))
    except SoftTimeLimitExceeded:
        # Not retried: the same input would take as long again.
        _fail_past_limit(job_id=job_id, code=PipelineErrorCode.STEP_TIME_LIMIT)
        _advance_on_commit(job.version_id)
        return {"job": job_id, "state": JobState.FAILED}
    except INFRASTRUCTURE_ERRORS as exc:
        raise self.retry(exc=exc, countdown=min(2 ** self.request.retries, 30) + random.random(), max_retries=self.max_retries + INFRASTRUCTURE_EXTRA_RETRIES) from exc
    except PERMANENT_ERRORS as exc:
        # Bad input is not retried: the same input fails the same way.
        # The seller reads the code, message and location; the traceback is for staff (admin).
        failure = failure_of(exc)
        state, result, message = JobState.FAILED_VALIDATION, {"error": failure}, failure["message"]
        job_finish(job_id=job_id, state=state, result=result, message=message, error=traceback.format_exc()[-4000:])
        _advance_on_commit(job.version_id)
        return {"job": job_id, "state": state}
    job_finish(job_id=job_id, state=state, result=result, message=message)
    _advance_on_commit(job.version_id)
    return {"job": job_id, "state": state}


def step_device_safe(job_id: int) -> str:
    step = Job.objects.filter(pk=job_id).values_list("step", flat=True).first()
    return step_device(step=step) if step else ""


def _advance_on_commit(version_id: int) -> None:
    transaction.on_commit(lambda: pipeline_advance_task.delay(version_id))


@shared_task(name="workers.tasks.sweep")
def sweep_task() -> dict:
    return pipeline_sweep()


@shared_task(
    name="workers.tasks.evaluation_shard", acks_late=True,
    soft_time_limit=settings.QUALITY_EVALUATION_TIME_LIMITS[0], time_limit=settings.QUALITY_EVALUATION_TIME_LIMITS[1],
)
def evaluation_shard_task(gt_key: str, dt_key: str, shard: int, num_shards: int, state_key: str, params: dict | None = None) -> str:
    """One image shard of a sharded evaluation (queue ``quality``); idempotent: it rewrites
    the same state object."""

    return evaluation_shard(gt_key=gt_key, dt_key=dt_key, shard=shard, num_shards=num_shards, state_key=state_key, params=params, device=step_device(step="quality_audit"))


@shared_task(
    name="workers.tasks.evaluation_merge", acks_late=True,
    soft_time_limit=settings.QUALITY_EVALUATION_TIME_LIMITS[0], time_limit=settings.QUALITY_EVALUATION_TIME_LIMITS[1],
)
def evaluation_merge_task(state_keys: list[str], out_key: str) -> str:
    return evaluation_merge(state_keys=state_keys, out_key=out_key, device="cpu")
