"""Quality reports of dataset versions and buyers' evaluations of a listing's public split.

The engine (``quality.engine``) computes; these rows store what it computed, keyed so that a
re-run with the same inputs and the same engine never makes a second row.
"""

from __future__ import annotations

from django.conf import settings
from django.db import models


class ReportKind(models.TextChoices):
    INTRINSIC = "intrinsic"
    AUDIT = "audit"
    AGREEMENT = "agreement"
    TEMPORAL = "temporal"
    PANOPTIC = "panoptic"


class ReportStatus(models.TextChoices):
    # "ok": the engine produced figures. "no_input": the kind applies but its inputs are
    # missing (e.g. no reference yet); stored so the UI can say why there is no figure.
    OK = "ok"
    NO_INPUT = "no_input"


class QualityReport(models.Model):
    version = models.ForeignKey("datasets.DatasetVersion", on_delete=models.CASCADE, related_name="quality_reports")
    kind = models.CharField(max_length=16, choices=ReportKind.choices)
    engine_version = models.CharField(max_length=32)
    # sha256 over the sorted sha256s of the input files plus the engine parameters: the
    # idempotency key together with (version, kind, engine_version).
    inputs_checksum = models.CharField(max_length=64)
    status = models.CharField(max_length=16, choices=ReportStatus.choices, default=ReportStatus.OK)
    # Headline figures in the contract shape ({"mask_iou": {"value", "ci", "n", "status"}, ...}).
    summary = models.JSONField(default=dict, blank=True)
    # Storage keys: {"report": "<key of the full report JSON>", "plots": {"<name>": "<key>"}}.
    artifacts = models.JSONField(default=dict, blank=True)
    device = models.CharField(max_length=16, blank=True)
    seconds = models.FloatField(default=0)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["version_id", "kind", "-created_at"]
        constraints = [
            models.UniqueConstraint(fields=["version", "kind", "engine_version", "inputs_checksum"], name="quality_report_unique_key"),
            models.CheckConstraint(condition=models.Q(kind__in=ReportKind.values), name="quality_report_kind_valid"),
            models.CheckConstraint(condition=models.Q(status__in=ReportStatus.values), name="quality_report_status_valid"),
            models.CheckConstraint(condition=models.Q(seconds__gte=0), name="quality_report_seconds_non_negative"),
        ]
        indexes = [models.Index(fields=["version", "kind", "-created_at"])]

    def __str__(self) -> str:
        return f"{self.version_id}:{self.kind}@{self.engine_version}"


class EvaluationState(models.TextChoices):
    QUEUED = "queued"
    RUNNING = "running"
    DONE = "done"
    FAILED = "failed"


class BuyerEvaluation(models.Model):
    """A buyer's predictions scored against a listing's public evaluation split (try before buying)."""

    # The listing is the dataset (listing slug == dataset slug); the version is the one
    # published when the buyer posted, so the report stays tied to the data it scored.
    dataset = models.ForeignKey("datasets.Dataset", on_delete=models.CASCADE, related_name="buyer_evaluations")
    version = models.ForeignKey("datasets.DatasetVersion", on_delete=models.CASCADE, related_name="buyer_evaluations")
    organization = models.ForeignKey("accounts.Organization", on_delete=models.CASCADE, related_name="buyer_evaluations")
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, related_name="+")
    state = models.CharField(max_length=16, choices=EvaluationState.choices, default=EvaluationState.QUEUED)
    results_key = models.CharField(max_length=500)
    results_sha256 = models.CharField(max_length=64)
    n_detections = models.PositiveIntegerField(default=0)
    engine_version = models.CharField(max_length=32, blank=True)
    report = models.JSONField(default=dict, blank=True)
    error = models.JSONField(default=dict, blank=True)
    device = models.CharField(max_length=16, blank=True)
    seconds = models.FloatField(default=0)
    # Deliveries of its task that started it, those whose worker died among them.
    attempts = models.PositiveIntegerField(default=0)
    created_at = models.DateTimeField(auto_now_add=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]
        constraints = [
            models.CheckConstraint(condition=models.Q(state__in=EvaluationState.values), name="buyer_evaluation_state_valid"),
        ]
        indexes = [models.Index(fields=["organization", "-created_at"])]

    def __str__(self) -> str:
        return f"evaluation {self.pk} ({self.state})"


class EvaluationSplit(models.Model):
    """A published version's public evaluation split (see ``quality.services.split_image_ids``),
    computed once so that every buyer is scored on the same images."""

    version = models.OneToOneField("datasets.DatasetVersion", on_delete=models.CASCADE, related_name="evaluation_split")
    rule = models.CharField(max_length=16)  # "split" (the declared test/val split), "folder" (val/test folder) or "seeded"
    image_ids = models.JSONField(default=list)
    category_ids = models.JSONField(default=list)
    # What a buyer needs to run a model on the split, never the annotations: per image (in
    # image_ids order) {"id", "file_name", "width", "height"}, and each category's
    # {"id", "name"}. Empty on splits stored before they were kept (filled on first read).
    images = models.JSONField(default=list, blank=True)
    categories = models.JSONField(default=list, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    def __str__(self) -> str:
        return f"split of version {self.version_id} ({len(self.image_ids)} images)"
