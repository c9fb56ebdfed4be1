"""Celery tasks of the datasets app (queue ``ingest``). They take ids and call a service;
each is idempotent, so a redelivery after a worker died is harmless."""

from __future__ import annotations

from celery import shared_task


@shared_task(name="datasets.tasks.upload_verify_task", autoretry_for=(ConnectionError, TimeoutError), retry_backoff=True, max_retries=5)
def upload_verify_task(upload_id: str) -> str:
    from datasets.services import upload_verify

    return upload_verify(upload_id=upload_id).state


@shared_task(name="datasets.tasks.version_ingest_task")
def version_ingest_task(version_id: int) -> str:
    """Ingest alone (used only when the pipeline is absent; the pipeline has its own step)."""
    from datasets.ingest import version_ingest
    from datasets.models import DatasetVersion
    from datasets.services import version_transition
    from datasets.states import VersionState

    version = DatasetVersion.objects.get(pk=version_id)
    if version.state == VersionState.SUBMITTED:
        version_transition(version=version, to_state=VersionState.PROCESSING, actor=None)
    return version_ingest(version_id=version_id)
