"""The sweeper (Celery beat, every minute): re-sends jobs stuck past their deadline,
gives up on jobs that keep dying, nudges versions whose next message was lost, and
aborts abandoned uploads."""

from __future__ import annotations

import logging

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from datasets.models import DatasetVersion
from datasets.services import uploads_expire_abandoned
from datasets.states import VersionState
from workers.errors import PipelineErrorCode
from workers.jobs import job_fail
from workers.models import ACTIVE_STATES, Job
from workers.pipeline import job_requeue, pipeline_start

logger = logging.getLogger(__name__)


def pipeline_sweep() -> dict:
    now = timezone.now()
    requeued = given_up = 0
    for job_id in list(Job.objects.filter(state__in=ACTIVE_STATES, deadline__lt=now).values_list("pk", flat=True)):
        with transaction.atomic():
            job = Job.objects.select_for_update(skip_locked=True).filter(pk=job_id, state__in=ACTIVE_STATES, deadline__lt=now).first()
            if job is None:
                continue
            # A job that keeps killing its workers is poison too: it ends, it does not loop.
            if job.attempts > settings.PIPELINE_MAX_RETRIES:
                job_fail(
                    job_id=job.pk, code=PipelineErrorCode.WORKER_LOST,
                    message=f"the step did not finish on any of its {job.attempts} attempts (its worker was lost, or it made no progress past its deadline)",
                )
                given_up += 1
                pipeline_start(version_id=job.version_id)
            else:
                job_requeue(job=job, reason=f"re-sent by the sweeper (stuck in {job.state} past its deadline)")
                requeued += 1

    # A version whose advance message was lost (a broker restart) moves on from its rows.
    nudged = 0
    for version_id in DatasetVersion.objects.filter(state__in=[VersionState.SUBMITTED, VersionState.PROCESSING]).values_list("pk", flat=True):
        with transaction.atomic():
            pipeline_start(version_id=version_id)
        nudged += 1

    expired = 0
    try:
        expired = uploads_expire_abandoned()
    except Exception:  # noqa: BLE001 - the job sweep above must not be undone by this
        logger.warning("expiring abandoned uploads failed", exc_info=True)
    return {"requeued": requeued, "given_up": given_up, "nudged": nudged, "uploads_expired": expired}
