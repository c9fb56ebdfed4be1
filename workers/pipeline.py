"""The pipeline: submitted → processing → ingest → audit-sample draw → quality reports
(side by side) → provenance and license checks → in_review.

Design: the database is the source of truth, the broker only carries ids. Each step is a
:class:`~workers.models.Job` row keyed by (version, step, engine version, input checksum).
:func:`pipeline_advance` looks at a version's jobs under the version's row lock and
enqueues whatever is due next; every step task calls it again when it ends (on commit).
Running it twice, or after a broker that forgot its messages, does no harm: an existing
job is not sent again unless the sweeper finds it past its deadline. No chord state
lives in the broker, so a Redis restart loses nothing that the sweeper cannot re-send.

The audit gate: the audit comparison needs the auditor's reference annotations for the
drawn sample. Until they exist, the ``quality_audit`` job sits in ``waiting`` and the
version stays in ``processing`` (the other reports run meanwhile). The auditor's upload
calls :func:`pipeline_resume`. With ``PIPELINE_AUDIT_REQUIRED=false`` the audit is skipped
when no reference exists and the version goes on to review with self-declared figures.
"""

from __future__ import annotations

import logging

from django.conf import settings
from django.db import transaction

from datasets.models import DatasetVersion
from datasets.selectors import version_audit_reference, version_reference_is_panoptic
from datasets.services import version_transition
from datasets.states import VersionState
from quality.selectors import applicable_report_kinds
from workers.jobs import QUALITY_STEPS, job_enqueue, job_for_step, step_deadline
from workers.models import Job, JobState, JobStep
from workers.selectors import job_failure

logger = logging.getLogger(__name__)

DONE, PENDING, STOPPED = "done", "pending", "stopped"


def pipeline_start(*, version_id: int) -> None:
    """Start (or nudge) the pipeline for a submitted version; safe to call twice.

    Enqueues on commit: called inside a transaction, nothing is sent until the
    submission is visible to the workers.
    """
    from workers.tasks import pipeline_advance_task

    transaction.on_commit(lambda: pipeline_advance_task.delay(version_id))


def pipeline_resume(*, version_id: int) -> None:
    """Go on after new inputs arrived (the auditor's reference annotations)."""
    pipeline_start(version_id=version_id)


def _version_fail(*, version, job: Job) -> None:
    if job.state == JobState.FAILED_VALIDATION:
        version_transition(version=version, to_state=VersionState.FAILED_VALIDATION, actor=None, reason=f"{job.step}: {job.message}"[:500])
    else:
        # The reason is read by the seller (the version's history): the public failure, not Job.error.
        failure = job_failure(job) or {}
        version_transition(version=version, to_state=VersionState.FAILED, actor=None, reason=f"{job.step} failed: {failure.get('code', '')}: {failure.get('message', '')}"[:2000])


def _stage(*, version, steps: list[str]) -> str:
    """Ensure each step's job exists (enqueue new ones); report the stage's outcome."""
    outcome = DONE
    for step in steps:
        job, created = job_for_step(version=version, step=step)
        if created:
            job_enqueue(job=job)
        if job.state in (JobState.FAILED, JobState.FAILED_VALIDATION):
            _version_fail(version=version, job=job)
            return STOPPED
        if job.state == JobState.WAITING:
            # Inputs arrived under a different key would have created a new job; this
            # one still waits for a person.
            outcome = PENDING
        elif job.state != JobState.SUCCEEDED:
            outcome = PENDING
    return outcome




def _quality_steps(*, version) -> tuple[list[str], list[str]]:
    """The quality steps due now, and the steps still waiting for the auditor's reference."""
    kinds = applicable_report_kinds(version=version)
    waiting: list[str] = []
    steps = []
    for kind in kinds:
        step = QUALITY_STEPS[kind]
        if _waits_for_reference(version=version, kind=kind, kinds=kinds) and not _has_reference(version=version, kind=kind):
            if settings.PIPELINE_AUDIT_REQUIRED:
                waiting.append(step)  # not run on what it has now: it would run twice
                continue
            if kind == "audit":
                continue  # without a reference there is nothing to audit
        steps.append(step)
    return steps, waiting


def _waits_for_reference(*, version, kind: str, kinds: list[str]) -> bool:
    """The audit waits for its reference; the panoptic report does on a version with no
    instance audit (one reference per version: a version with both is audited on its
    instances, its panoptic report then has the merged-instances check only)."""
    if kind == "audit":
        return True
    return kind == "panoptic" and "audit" not in kinds


def _has_reference(*, version, kind: str = "audit") -> bool:
    if version_audit_reference(version=version) is None:
        return False
    return version_reference_is_panoptic(version=version) == (kind == "panoptic")


def _mark_waiting(*, version, step: str) -> None:
    Job.objects.get_or_create(
        version=version,
        step=step,
        engine_version="",
        input_checksum="awaiting-reference",
        defaults={"state": JobState.WAITING, "message": "waiting for the auditor's reference annotations of the drawn sample"},
    )


@transaction.atomic
def pipeline_advance(*, version_id: int) -> str:
    """Move the version's pipeline forward as far as it can go now; returns the version state."""
    version = DatasetVersion.objects.select_for_update().select_related("dataset").get(pk=version_id)
    if version.state == VersionState.SUBMITTED:
        version = version_transition(version=version, to_state=VersionState.PROCESSING, actor=None, reason="pipeline started")
    if version.state != VersionState.PROCESSING:
        return version.state

    for steps in ([JobStep.INGEST], [JobStep.AUDIT_SAMPLE]):
        outcome = _stage(version=version, steps=steps)
        if outcome != DONE:
            return DatasetVersion.objects.get(pk=version_id).state

    quality_steps, waiting = _quality_steps(version=version)
    for step in waiting:
        _mark_waiting(version=version, step=step)
    Job.objects.filter(version=version, state=JobState.WAITING).exclude(step__in=waiting).delete()
    outcome = _stage(version=version, steps=quality_steps)
    if outcome != DONE or waiting:
        return DatasetVersion.objects.get(pk=version_id).state

    if _stage(version=version, steps=[JobStep.CHECKS]) != DONE:
        return DatasetVersion.objects.get(pk=version_id).state

    version_transition(version=version, to_state=VersionState.IN_REVIEW, actor=None, reason="pipeline complete")
    return VersionState.IN_REVIEW


def job_requeue(*, job: Job, reason: str) -> None:
    """Send a queued or running job again (its message was lost, or its worker died)."""
    Job.objects.filter(pk=job.pk).update(state=JobState.QUEUED, deadline=step_deadline(), message=reason[:500])
    job_enqueue(job=job)
