"""Celery tasks of the quality app (queue ``quality`` by routing). They take ids and call services;
both services are idempotent, so at-least-once delivery is safe."""

from __future__ import annotations

from celery import shared_task

from marketplace.core.errors import DomainError


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


@shared_task(
    name="quality.tasks.evaluation_run_task",
    bind=True,
    autoretry_for=(ConnectionError, TimeoutError, OSError),
    retry_backoff=True,
    max_retries=3,
)
def evaluation_run_task(self, evaluation_id: int) -> str:
    from quality.services import evaluation_fail, evaluation_run

    try:
        return evaluation_run(evaluation_id=evaluation_id).state
    except DomainError as exc:
        evaluation_fail(evaluation_id=evaluation_id, message=exc.message)
        return "failed"
    except Exception as exc:
        if self.request.retries >= self.max_retries or not isinstance(exc, (ConnectionError, TimeoutError, OSError)):
            # A poison input ends as failed instead of looping or staying "running".
            evaluation_fail(evaluation_id=evaluation_id, message="The evaluation could not be completed.")
            if not isinstance(exc, (ConnectionError, TimeoutError, OSError)):
                return "failed"
        raise
