"""Celery tasks of the datasets app (queue ``ingest``). They take ids and call a service;
each is idempotent, so a redelivery after a worker died is harmless."""

from __future__ import annotations

from celery import shared_task


@shared_task(name="datasets.tasks.upload_verify_task", autoretry_for=(ConnectionError, TimeoutError), retry_backoff=True, max_retries=5)
def upload_verify_task(upload_id: str) -> str:
    from datasets.services import upload_verify

    return upload_verify(upload_id=upload_id).state
