"""Licensing, provenance, checks and moderation records."""

from __future__ import annotations

from django.conf import settings
from django.db import models

from datasets.models import DatasetVersion


class License(models.Model):
    """A catalogue entry keyed by SPDX id (or a ``LicenseRef-`` id), with its terms in a
    machine-readable form. Loaded from ``licensing/data/licenses.json`` by a data migration."""

    spdx_id = models.CharField(max_length=64, unique=True)
    name = models.CharField(max_length=200)
    url = models.URLField(blank=True)
    commercial_use = models.BooleanField()
    derivatives = models.BooleanField()
    share_alike = models.BooleanField()
    attribution = models.BooleanField()
    redistribution = models.BooleanField()
    aliases = models.JSONField(default=list, blank=True, help_text="other spellings the resolver accepts")

    class Meta:
        ordering = ["spdx_id"]

    def __str__(self) -> str:
        return self.spdx_id


class FieldStatus(models.TextChoices):
    SELF_DECLARED = "self-declared"
    VERIFIED = "verified"
    DISPUTED = "disputed"


class ProvenanceRecord(models.Model):
    """A version's provenance. Each field is a :class:`ProvenanceField` row so that it
    carries its own moderation status."""

    version = models.OneToOneField("datasets.DatasetVersion", on_delete=models.CASCADE, related_name="provenance")
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    def __str__(self) -> str:
        return f"provenance of {self.version}"


class ProvenanceField(models.Model):
    record = models.ForeignKey(ProvenanceRecord, on_delete=models.CASCADE, related_name="fields")
    name = models.CharField(max_length=64, help_text="Croissant RAI name where one exists (rai:...)")
    value = models.JSONField(null=True, blank=True)
    status = models.CharField(max_length=16, choices=FieldStatus.choices, default=FieldStatus.SELF_DECLARED)
    note = models.TextField(blank=True)
    reviewed_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+")
    reviewed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["record_id", "id"]
        constraints = [
            models.UniqueConstraint(fields=["record", "name"], name="provenance_field_unique_name"),
            models.CheckConstraint(condition=models.Q(status__in=FieldStatus.values), name="provenance_field_status_valid"),
        ]

    def __str__(self) -> str:
        return f"{self.name} ({self.status})"


class LegalBasis(models.TextChoices):
    """GDPR art. 6(1) bases that apply to recording people."""

    CONSENT = "consent"
    CONTRACT = "contract"
    LEGITIMATE_INTERESTS = "legitimate_interests"
    PUBLIC_TASK = "public_task"
    LEGAL_OBLIGATION = "legal_obligation"
    VITAL_INTERESTS = "vital_interests"


class ConsentRecord(models.Model):
    """Consent (or another legal basis) for one recording session or trajectory."""

    version = models.ForeignKey("datasets.DatasetVersion", on_delete=models.CASCADE, related_name="consent_records")
    session_id = models.CharField(max_length=200)
    consent_id = models.CharField(max_length=200, blank=True)
    legal_basis = models.CharField(max_length=32, choices=LegalBasis.choices)
    # A DatasetFile of role provenance_docs; kept as an id because the file model lives in
    # the datasets app and is validated by the service.
    document_file_id = models.BigIntegerField(null=True, blank=True)

    class Meta:
        ordering = ["version_id", "session_id"]
        constraints = [
            models.UniqueConstraint(fields=["version", "session_id"], name="consent_unique_session"),
            models.CheckConstraint(condition=models.Q(legal_basis__in=LegalBasis.values), name="consent_legal_basis_valid"),
        ]


class CheckStatus(models.TextChoices):
    PASSED = "passed"
    FAILED = "failed"
    NOT_APPLICABLE = "not_applicable"


class Severity(models.TextChoices):
    INFO = "info"
    WARNING = "warning"
    ERROR = "error"


class CheckResult(models.Model):
    """One provenance/license check's outcome for a version (replaced on each run)."""

    version = models.ForeignKey("datasets.DatasetVersion", on_delete=models.CASCADE, related_name="check_results")
    code = models.CharField(max_length=64)
    status = models.CharField(max_length=16, choices=CheckStatus.choices)
    severity = models.CharField(max_length=16, choices=Severity.choices)
    message = models.TextField()
    evidence = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["version_id", "code"]
        constraints = [
            models.UniqueConstraint(fields=["version", "code"], name="check_result_unique_code"),
            models.CheckConstraint(condition=models.Q(status__in=CheckStatus.values), name="check_result_status_valid"),
            models.CheckConstraint(condition=models.Q(severity__in=Severity.values), name="check_result_severity_valid"),
        ]


class ImageFingerprint(models.Model):
    """A perceptual hash (64-bit pHash) of one image of a version, split into four 16-bit
    bands: two hashes within Hamming distance 3 share at least one band exactly
    (pigeonhole), so candidate near-duplicates are found with indexed equality lookups."""

    version = models.ForeignKey("datasets.DatasetVersion", on_delete=models.CASCADE, related_name="image_fingerprints")
    file_id = models.BigIntegerField(help_text="DatasetFile id")
    path = models.CharField(max_length=1024)
    phash = models.CharField(max_length=16, help_text="hex")
    band0 = models.IntegerField(db_index=True)
    band1 = models.IntegerField(db_index=True)
    band2 = models.IntegerField(db_index=True)
    band3 = models.IntegerField(db_index=True)
    exif_personal = models.JSONField(default=list, blank=True, help_text="names of personal-data EXIF tags found")

    class Meta:
        constraints = [models.UniqueConstraint(fields=["version", "file_id"], name="fingerprint_unique_file")]


class ModeratedVersion(DatasetVersion):
    """A proxy of DatasetVersion for the moderators' admin (the datasets app keeps its own)."""

    class Meta:
        proxy = True
        verbose_name = "version under moderation"
        verbose_name_plural = "versions under moderation"
