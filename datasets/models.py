"""Datasets and their versions. Uploads, files and ingest results hang off the version."""

from __future__ import annotations

from decimal import Decimal

from django.conf import settings
from django.core.validators import MinValueValidator
from django.db import models

from datasets.states import VersionState


class Modality(models.TextChoices):
    IMAGES = "images", "Images"
    VIDEO = "video", "Video"
    PANOPTIC = "panoptic", "Panoptic"


class VocabularyKind(models.TextChoices):
    EMBODIMENT = "embodiment"
    TASK = "task"
    SCENE = "scene"


class VocabularyTerm(models.Model):
    """Controlled vocabulary (embodiments, robot tasks, scene types) that staff can extend."""

    kind = models.CharField(max_length=16, choices=VocabularyKind.choices)
    slug = models.SlugField(max_length=64)
    name = models.CharField(max_length=120)

    class Meta:
        ordering = ["kind", "slug"]
        constraints = [models.UniqueConstraint(fields=["kind", "slug"], name="vocabulary_unique_slug")]

    def __str__(self) -> str:
        return f"{self.kind}:{self.slug}"


class Dataset(models.Model):
    owner = models.ForeignKey("accounts.Organization", on_delete=models.PROTECT, related_name="datasets")
    slug = models.SlugField(max_length=80, unique=True)
    title = models.CharField(max_length=200)
    summary = models.CharField(max_length=500, blank=True)
    description = models.TextField(blank=True)
    modality = models.CharField(max_length=16, choices=Modality.choices, default=Modality.IMAGES)
    embodiments = models.ManyToManyField(VocabularyTerm, related_name="datasets_by_embodiment", blank=True, limit_choices_to={"kind": VocabularyKind.EMBODIMENT})
    tasks = models.ManyToManyField(VocabularyTerm, related_name="datasets_by_task", blank=True, limit_choices_to={"kind": VocabularyKind.TASK})
    scene_types = models.ManyToManyField(VocabularyTerm, related_name="datasets_by_scene", blank=True, limit_choices_to={"kind": VocabularyKind.SCENE})
    annotation_license = models.CharField(max_length=64, help_text="SPDX id or LicenseRef- id from the license catalogue")
    price = models.DecimalField(max_digits=12, decimal_places=2, default=Decimal("0"), validators=[MinValueValidator(Decimal("0"))])
    currency = models.CharField(max_length=3, default="USD")
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-created_at"]
        constraints = [models.CheckConstraint(condition=models.Q(price__gte=0), name="dataset_price_non_negative")]

    def __str__(self) -> str:
        return self.slug


class DatasetVersion(models.Model):
    dataset = models.ForeignKey(Dataset, on_delete=models.PROTECT, related_name="versions")
    number = models.PositiveIntegerField()
    state = models.CharField(max_length=24, choices=VersionState.choices, default=VersionState.DRAFT)
    notes = models.TextField(blank=True)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)
    state_changed_at = models.DateTimeField(auto_now_add=True)
    submitted_at = models.DateTimeField(null=True, blank=True)
    published_at = models.DateTimeField(null=True, blank=True)
    # Filled by ingest (datasets.ingest); empty until then.
    validation_report = models.JSONField(default=dict, blank=True)
    statistics = models.JSONField(default=dict, blank=True)

    class Meta:
        ordering = ["dataset_id", "-number"]
        constraints = [
            models.UniqueConstraint(fields=["dataset", "number"], name="version_unique_number"),
            models.CheckConstraint(condition=models.Q(state__in=VersionState.values), name="version_state_valid"),
            # A dataset shows at most one published version at a time.
            models.UniqueConstraint(fields=["dataset"], condition=models.Q(state=VersionState.PUBLISHED), name="version_one_published"),
        ]
        indexes = [models.Index(fields=["state"])]

    def __str__(self) -> str:
        return f"{self.dataset.slug} v{self.number}"

    @property
    def is_frozen(self) -> bool:
        return self.state != VersionState.DRAFT
