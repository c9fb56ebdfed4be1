"""Job records: one row per pipeline step of a version, the source of truth for the
pipeline (the broker only carries ids; a lost message is re-sent from these rows)."""

from __future__ import annotations

import hashlib

from django.db import models


class JobState(models.TextChoices):
    QUEUED = "queued", "Queued"
    RUNNING = "running", "Running"
    # The step needs something from a person first (the auditor's reference annotations).
    WAITING = "waiting", "Waiting"
    SUCCEEDED = "succeeded", "Succeeded"
    FAILED = "failed", "Failed"
    FAILED_VALIDATION = "failed_validation", "Failed validation"


ACTIVE_STATES = (JobState.QUEUED, JobState.RUNNING)
FINAL_STATES = (JobState.SUCCEEDED, JobState.FAILED, JobState.FAILED_VALIDATION)


class JobStep(models.TextChoices):
    INGEST = "ingest", "Ingest"
    AUDIT_SAMPLE = "audit_sample", "Audit sample draw"
    QUALITY_INTRINSIC = "quality_intrinsic", "Quality: intrinsic checks"
    QUALITY_AUDIT = "quality_audit", "Quality: audit comparison"
    QUALITY_AGREEMENT = "quality_agreement", "Quality: annotator agreement"
    QUALITY_TEMPORAL = "quality_temporal", "Quality: temporal consistency"
    QUALITY_PANOPTIC = "quality_panoptic", "Quality: panoptic quality"
    CHECKS = "checks", "Provenance and license checks"


class Job(models.Model):
    version = models.ForeignKey("datasets.DatasetVersion", on_delete=models.CASCADE, related_name="jobs")
    step = models.CharField(max_length=32, choices=JobStep.choices)
    # Part of the idempotency key: a new engine version or new inputs make a new job.
    engine_version = models.CharField(max_length=64, blank=True, default="")
    input_checksum = models.CharField(max_length=64, blank=True, default="")
    state = models.CharField(max_length=24, choices=JobState.choices, default=JobState.QUEUED)
    attempts = models.PositiveIntegerField(default=0)
    progress = models.PositiveSmallIntegerField(default=0)
    message = models.CharField(max_length=500, blank=True, default="")
    error = models.TextField(blank=True, default="")
    result = models.JSONField(default=dict, blank=True)
    worker = models.CharField(max_length=255, blank=True, default="")
    device = models.CharField(max_length=16, blank=True, default="")
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)
    enqueued_at = models.DateTimeField(null=True, blank=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    # Past this, the sweeper considers the job lost (a dead worker, a broker that forgot).
    deadline = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["created_at", "id"]
        constraints = [
            models.UniqueConstraint(fields=["version", "step", "engine_version", "input_checksum"], name="job_key_unique"),
            models.CheckConstraint(condition=models.Q(state__in=JobState.values), name="job_state_valid"),
            models.CheckConstraint(condition=models.Q(progress__lte=100), name="job_progress_percent"),
        ]
        indexes = [models.Index(fields=["state", "deadline"])]

    def __str__(self) -> str:
        return f"{self.version_id}:{self.step} ({self.state})"

    @property
    def key(self) -> str:
        raw = f"{self.version_id}:{self.step}:{self.engine_version}:{self.input_checksum}"
        return hashlib.sha256(raw.encode()).hexdigest()[:32]

    @property
    def is_final(self) -> bool:
        return self.state in FINAL_STATES
