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
    """Consent (or another legal basis) of a version's data subjects: a ledger entry that
    covers named sessions, episodes, videos or files of the version. Coverage is declared
    here (``session_id`` and the lists) or by an attribute in the annotations: an image or
    video whose ``consent_id`` equals this record's is covered by it."""

    version = models.ForeignKey("datasets.DatasetVersion", on_delete=models.CASCADE, related_name="consent_records")
    session_id = models.CharField(max_length=200, blank=True)
    consent_id = models.CharField(max_length=200, blank=True)
    legal_basis = models.CharField(max_length=32, choices=LegalBasis.choices)
    # What the subject agreed to (e.g. "recording and ML training, commercial use").
    scope = models.TextField(blank=True)
    given_on = models.DateField(null=True, blank=True)
    sessions = models.JSONField(default=list, blank=True)
    episodes = models.JSONField(default=list, blank=True)
    videos = models.JSONField(default=list, blank=True)
    files = models.JSONField(default=list, blank=True, help_text="paths of the version's files")
    # A DatasetFile of role provenance_docs; kept as an id because the file model lives in
    # the datasets app and is validated by the service.
    document_file_id = models.BigIntegerField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["version_id", "session_id", "consent_id"]
        constraints = [
            models.UniqueConstraint(fields=["version", "session_id"], condition=~models.Q(session_id=""), name="consent_unique_session"),
            models.UniqueConstraint(fields=["version", "consent_id"], condition=~models.Q(consent_id=""), name="consent_unique_consent_id"),
            models.CheckConstraint(condition=models.Q(legal_basis__in=LegalBasis.values), name="consent_legal_basis_valid"),
        ]

    def coverage(self) -> dict[str, set[str]]:
        """What the record covers, by the attribute that names it in the annotations
        (``files``: paths)."""
        return {
            "session_id": {str(s) for s in [self.session_id, *self.sessions] if s},
            "episode_id": {str(e) for e in self.episodes if e},
            "video_id": {str(v) for v in self.videos if v},
            "consent_id": {self.consent_id} if self.consent_id else set(),
            "files": {str(f) for f in self.files if f},
        }


class RevocationState(models.TextChoices):
    PENDING = "pending"  # the version is served without the files; a version without them is due
    RESOLVED = "resolved"  # the version was replaced (or withdrawn) before the deadline
    SUSPENDED = "suspended"  # the deadline passed: the version was suspended


class ConsentRevocation(models.Model):
    """A data subject withdrew consent (GDPR art. 7(3)); the seller records it against the
    records it affects. The files they cover are listed once the revocation is recorded
    (``files``, ``files_listed_at``); entitlements stop serving them, the buyer
    organizations that downloaded them are told to delete them, and the version must be
    replaced by ``deadline``."""

    version = models.ForeignKey("datasets.DatasetVersion", on_delete=models.PROTECT, related_name="consent_revocations")
    records = models.ManyToManyField(ConsentRecord, related_name="revocations")
    requested_on = models.DateField(help_text="when the data subject asked")
    reason = models.TextField()
    state = models.CharField(max_length=12, choices=RevocationState.choices, default=RevocationState.PENDING)
    deadline = models.DateTimeField()
    recorded_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    recorded_at = models.DateTimeField(auto_now_add=True)
    # [{"id", "path", "role", "sha256"}] of the version's files it withdraws.
    files = models.JSONField(default=list, blank=True)
    frames = models.PositiveIntegerField(default=0)
    files_listed_at = models.DateTimeField(null=True, blank=True)
    closed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-recorded_at", "-pk"]
        constraints = [models.CheckConstraint(condition=models.Q(state__in=RevocationState.values), name="revocation_state_valid")]
        indexes = [models.Index(fields=["state", "deadline"], name="revocation_due")]


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
