"""Celery tasks of the quality app (queue ``quality`` by routing). They take ids and call services;
both services are idempotent, so at-least-once delivery is safe."""

from __future__ import annotations

from billiard.exceptions import TimeLimitExceeded
from celery import Task, shared_task
from celery.exceptions import SoftTimeLimitExceeded
from django.conf import settings

from marketplace.core.errors import DomainError
from quality.errors import QualityErrorCode


@shared_task(
    name="quality.tasks.report_compute_task",
    bind=True,
    autoretry_for=(ConnectionError, TimeoutError, OSError),
    retry_backoff=True,
    max_retries=3,
)
def report_compute_task(self, version_id: int, kind: str) -> int | None:
    from quality.services import report_compute

    try:
        return report_compute(version_id=version_id, kind=kind).pk
    except DomainError:
        # Bad input or a vanished version: retrying cannot help.
        return None


class EvaluationTask(Task):
    """Past its hard time limit the worker process running the evaluation is killed (this
    runs in the worker's main process): the evaluation ends ``failed`` with its code instead
    of staying ``running``."""

    def on_failure(self, exc, task_id, args, kwargs, einfo):
        if isinstance(exc, TimeLimitExceeded) and args:
            from quality.services import evaluation_fail

            evaluation_fail(evaluation_id=args[0], message=_time_limit_message(hard=True), code=QualityErrorCode.EVALUATION_TIME_LIMIT)


def _time_limit_message(*, hard: bool) -> str:
    soft, limit = settings.QUALITY_EVALUATION_TIME_LIMITS
    return f"The evaluation ran past its time limit of {limit if hard else soft:g} s and was stopped."


@shared_task(
    name="quality.tasks.evaluation_run_task",
    bind=True,
    base=EvaluationTask,
    autoretry_for=(ConnectionError, TimeoutError, OSError),
    retry_backoff=True,
    max_retries=3,
    soft_time_limit=settings.QUALITY_EVALUATION_TIME_LIMITS[0],
    time_limit=settings.QUALITY_EVALUATION_TIME_LIMITS[1],
)
def evaluation_run_task(self, evaluation_id: int) -> str:
    from quality.services import evaluation_fail, evaluation_run

    try:
        return evaluation_run(evaluation_id=evaluation_id).state
    except DomainError as exc:
        evaluation_fail(evaluation_id=evaluation_id, message=exc.message)
        return "failed"
    except SoftTimeLimitExceeded:
        evaluation_fail(evaluation_id=evaluation_id, message=_time_limit_message(hard=False), code=QualityErrorCode.EVALUATION_TIME_LIMIT)
        return "failed"
    except Exception as exc:
        if self.request.retries >= self.max_retries or not isinstance(exc, (ConnectionError, TimeoutError, OSError)):
            # A poison input ends as failed instead of looping or staying "running".
            evaluation_fail(evaluation_id=evaluation_id, message="The evaluation could not be completed.")
            if not isinstance(exc, (ConnectionError, TimeoutError, OSError)):
                return "failed"
        raise
