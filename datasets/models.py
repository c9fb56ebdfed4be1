"""Datasets and their versions. Uploads, files and ingest results hang off the version."""

from __future__ import annotations

import uuid
from decimal import Decimal

from django.conf import settings
from django.core.validators import MinValueValidator
from django.db import models

from datasets.states import VersionState


class AnnotationKind(models.TextChoices):
    """What the annotations are (their format), as opposed to what sensor took the frames."""

    INSTANCES = "instances", "Instance masks"
    VIDEO = "video", "Video (tracked instance masks)"
    PANOPTIC = "panoptic", "Panoptic"


class Sensor(models.TextChoices):
    """Sensor modalities a seller declares for a dataset (any number of them)."""

    RGB = "rgb", "RGB camera"
    RGBD = "rgbd", "RGB-D camera"
    DEPTH = "depth", "Depth"
    STEREO = "stereo", "Stereo pair"
    THERMAL = "thermal", "Thermal"
    INFRARED = "infrared", "Near infrared"
    POINT_CLOUD = "point_cloud", "Point cloud (lidar, depth fusion)"
    EVENT = "event", "Event camera"
    MULTISPECTRAL = "multispectral", "Multispectral"
    TACTILE = "tactile", "Tactile"


class VocabularyKind(models.TextChoices):
    EMBODIMENT = "embodiment"
    TASK = "task"
    SCENE = "scene"


class VocabularyTerm(models.Model):
    """Controlled vocabulary (embodiments, robot tasks, scene types) that staff can extend.

    A term is found by its slug, its name or any of its aliases, compared as
    :func:`datasets.vocabulary.term_key` writes them (case, spaces and punctuation do not
    count: ``UR5e``, ``ur5-e`` and ``ur5e`` are one key)."""

    kind = models.CharField(max_length=16, choices=VocabularyKind.choices)
    slug = models.SlugField(max_length=64)
    name = models.CharField(max_length=120)
    aliases = models.JSONField(default=list, blank=True, help_text="other names buyers and files use (LeRobot robot_type, vendor names)")

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
    annotation_kind = models.CharField(max_length=16, choices=AnnotationKind.choices, default=AnnotationKind.INSTANCES)
    # Sensor modalities (Sensor values), declared by the seller.
    sensors = models.JSONField(default=list, blank=True)
    embodiments = models.ManyToManyField(
        VocabularyTerm, related_name="datasets_by_embodiment", blank=True, limit_choices_to={"kind": VocabularyKind.EMBODIMENT}
    )
    tasks = models.ManyToManyField(
        VocabularyTerm, related_name="datasets_by_task", blank=True, limit_choices_to={"kind": VocabularyKind.TASK}
    )
    scene_types = models.ManyToManyField(
        VocabularyTerm, related_name="datasets_by_scene", blank=True, limit_choices_to={"kind": VocabularyKind.SCENE}
    )
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
    # A consent revocation reached this published version: it stays published, without the
    # withdrawn files, until this deadline, by which the seller publishes a version without
    # them; then it is suspended. Null: no revocation pending.
    revocation_deadline = models.DateTimeField(null=True, blank=True)

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

    @property
    def revocation_pending(self) -> bool:
        return self.revocation_deadline is not None and self.state == VersionState.PUBLISHED


class FileRole(models.TextChoices):
    ANNOTATIONS = "annotations"
    IMAGES = "images"
    SECOND_PASS = "second_pass"
    VIDEO = "video"
    PANOPTIC = "panoptic"
    PROVENANCE_DOCS = "provenance_docs"
    REFERENCE = "reference"  # the auditor's reference annotations for the audit sample
    PREVIEW = "preview"  # overlay PNGs written by ingest
    CACHE = "cache"  # the engine's reference cache written by ingest


# Roles a seller may upload; the others are written by the platform.
SELLER_ROLES = (FileRole.ANNOTATIONS, FileRole.IMAGES, FileRole.SECOND_PASS, FileRole.VIDEO, FileRole.PANOPTIC, FileRole.PROVENANCE_DOCS)


class FileOrigin(models.TextChoices):
    UPLOAD = "upload"  # arrived through an upload session (verified by re-hashing)
    INGEST = "ingest"  # written by an ingest run (extracted, preview, cache): deleted on re-run
    AUDIT = "audit"  # reference annotations posted by an auditor


class DatasetFile(models.Model):
    """One object in storage that belongs to a version (the version's manifest)."""

    version = models.ForeignKey(DatasetVersion, on_delete=models.CASCADE, related_name="files")
    role = models.CharField(max_length=24, choices=FileRole.choices)
    path = models.CharField(max_length=1024)
    size = models.BigIntegerField(validators=[MinValueValidator(0)])
    sha256 = models.CharField(max_length=64)
    content_type = models.CharField(max_length=120, default="application/octet-stream")
    storage_key = models.CharField(max_length=1200, unique=True)
    origin = models.CharField(max_length=12, choices=FileOrigin.choices, default=FileOrigin.UPLOAD)
    # For a file extracted from an archive: the archive it came from.
    source = models.ForeignKey("self", on_delete=models.CASCADE, null=True, blank=True, related_name="extracted")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["version_id", "role", "path"]
        constraints = [
            models.UniqueConstraint(fields=["version", "path"], name="datasetfile_unique_path"),
            models.CheckConstraint(condition=models.Q(size__gte=0), name="datasetfile_size_non_negative"),
            models.CheckConstraint(condition=models.Q(role__in=FileRole.values), name="datasetfile_role_valid"),
        ]
        indexes = [models.Index(fields=["version", "role"])]

    def __str__(self) -> str:
        return f"{self.version_id}:{self.role}:{self.path}"


class UploadState(models.TextChoices):
    OPEN = "open"  # parts may arrive
    VERIFYING = "verifying"  # complete was called; a worker assembles and re-hashes
    COMPLETE = "complete"  # verified; its DatasetFile exists
    REJECTED = "rejected"  # verification failed; nothing kept
    ABORTED = "aborted"
    EXPIRED = "expired"


class UploadSession(models.Model):
    """A resumable multipart upload of one file into a draft version."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    version = models.ForeignKey(DatasetVersion, on_delete=models.CASCADE, related_name="uploads")
    organization = models.ForeignKey("accounts.Organization", on_delete=models.PROTECT, related_name="+")
    role = models.CharField(max_length=24, choices=FileRole.choices)
    name = models.CharField(max_length=1024)
    size = models.BigIntegerField(validators=[MinValueValidator(0)])
    sha256 = models.CharField(max_length=64)
    part_size = models.BigIntegerField()
    part_count = models.PositiveIntegerField()
    part_sha256 = models.JSONField(default=list, blank=True)  # hex per part when the client gave them
    # A shard: a tar of many small files, unpacked on verification into one manifest row per
    # member (the shard itself is not kept); ``members`` counts the rows it recorded.
    shard = models.BooleanField(default=False)
    members = models.PositiveIntegerField(default=0)
    storage_key = models.CharField(max_length=1200, unique=True)
    multipart_id = models.CharField(max_length=1024)
    state = models.CharField(max_length=12, choices=UploadState.choices, default=UploadState.OPEN)
    error = models.JSONField(default=dict, blank=True)
    file = models.OneToOneField(DatasetFile, on_delete=models.SET_NULL, null=True, blank=True, related_name="upload")
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)
    expires_at = models.DateTimeField()

    class Meta:
        ordering = ["-created_at"]
        constraints = [
            models.CheckConstraint(condition=models.Q(state__in=UploadState.values), name="upload_state_valid"),
            models.CheckConstraint(condition=models.Q(size__gte=0) & models.Q(part_size__gt=0), name="upload_sizes_valid"),
        ]
        indexes = [models.Index(fields=["state", "expires_at"])]


class AuditSample(models.Model):
    """The platform-drawn audit sample of a version (the seller does not choose it)."""

    version = models.ForeignKey(DatasetVersion, on_delete=models.CASCADE, related_name="audit_samples")
    seed = models.BigIntegerField()
    size = models.PositiveIntegerField()
    image_ids = models.JSONField(default=list)
    # Video versions: the drawn clips, one per video: {"video_id", "length", "height",
    # "width", "frame_indices", "file_names" (every frame of the video), "image_ids" (COCO
    # with tracks: the image id of each sampled frame)}. Empty for image versions.
    clips = models.JSONField(default=list, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at"]
        constraints = [models.UniqueConstraint(fields=["version", "seed", "size"], name="auditsample_unique_draw")]


class VersionIngest(models.Model):
    """What the last successful ingest of a version produced (format, cache, previews)."""

    version = models.OneToOneField(DatasetVersion, on_delete=models.CASCADE, related_name="ingest")
    format = models.CharField(max_length=24, blank=True)
    reference_cache_key = models.CharField(max_length=1200, blank=True)
    previews = models.JSONField(default=list, blank=True)  # storage keys of overlay PNGs
    finished_at = models.DateTimeField(null=True, blank=True)


class WithdrawnKind(models.TextChoices):
    """How withdrawn content is recognised in a later version."""

    SHA256 = "sha256"  # a file's bytes
    SESSION_ID = "session_id"  # an image's or video's attribute in the annotations
    EPISODE_ID = "episode_id"
    CONSENT_ID = "consent_id"


class WithdrawnContent(models.Model):
    """Content of a dataset whose data subject revoked consent: every later version's ingest
    refuses it (``consent_revoked``). Written when a revocation's files are listed;
    ``revocation_id`` names the licensing app's revocation."""

    dataset = models.ForeignKey(Dataset, on_delete=models.CASCADE, related_name="withdrawn_content")
    kind = models.CharField(max_length=16, choices=WithdrawnKind.choices)
    value = models.CharField(max_length=200)
    path = models.CharField(max_length=1024, blank=True, help_text="where it was found in the revoked version")
    revocation_id = models.BigIntegerField()
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["dataset_id", "kind", "value"]
        constraints = [
            models.UniqueConstraint(fields=["dataset", "kind", "value"], name="withdrawn_unique_value"),
            models.CheckConstraint(condition=models.Q(kind__in=WithdrawnKind.values), name="withdrawn_kind_valid"),
        ]
