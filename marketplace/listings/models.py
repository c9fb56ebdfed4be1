"""Listings (the public face of a dataset's published version), orders, entitlements and
download logs.

Search filters read denormalised columns on :class:`Listing` and rows of
:class:`ListingTerm` (one row per embodiment/task/scene/category/license value), so every
filter and facet is an index lookup rather than a walk over JSON or other apps' tables.
Display-only data (the quality summary, effective terms, previews) is kept as JSON on the
listing so a search page is one query, not one per listing.
"""

from __future__ import annotations

from decimal import Decimal

from django.conf import settings
from django.contrib.postgres.search import SearchVectorField
from django.db import models


class FigureStatus(models.IntegerChoices):
    """What backs a listing's figure, ranked so that sorting by it puts verified figures
    first (the labels are the statuses every response shows, see ``quality.figures``)."""

    NONE = 0, "none"
    SELF_DECLARED = 1, "self-declared"
    MEASURED = 2, "measured"
    VERIFIED = 3, "verified"

    @classmethod
    def of(cls, status: str | None) -> FigureStatus:
        return next((member for member in cls if member.label == status and member != cls.NONE), cls.NONE)


class Listing(models.Model):
    # A listing's slug is its dataset's slug.
    dataset = models.OneToOneField("datasets.Dataset", on_delete=models.CASCADE, related_name="listing")
    slug = models.SlugField(max_length=80, unique=True)
    # The published version shown; null while none is published (the listing is hidden).
    version = models.ForeignKey("datasets.DatasetVersion", on_delete=models.SET_NULL, null=True, blank=True, related_name="+")
    version_number = models.PositiveIntegerField(null=True, blank=True)
    is_public = models.BooleanField(default=False)

    title = models.CharField(max_length=200)
    summary = models.CharField(max_length=500, blank=True)
    description = models.TextField(blank=True)
    seller = models.ForeignKey("accounts.Organization", on_delete=models.PROTECT, related_name="listings")
    seller_slug = models.SlugField(max_length=80)
    seller_name = models.CharField(max_length=200, blank=True)
    # What the annotations are (datasets.models.AnnotationKind); the sensors are in ``sensors``.
    annotation_kind = models.CharField(max_length=16)

    # Quality figures: the value, and what backs it (FigureStatus: verified against the
    # platform's reference, measured from the seller's data, self-declared, or none).
    mask_iou = models.FloatField(null=True, blank=True)
    mask_iou_status = models.PositiveSmallIntegerField(choices=FigureStatus.choices, default=FigureStatus.NONE)
    ap = models.FloatField(null=True, blank=True)
    ap_status = models.PositiveSmallIntegerField(choices=FigureStatus.choices, default=FigureStatus.NONE)
    ap50 = models.FloatField(null=True, blank=True)
    ap50_status = models.PositiveSmallIntegerField(choices=FigureStatus.choices, default=FigureStatus.NONE)
    ap75 = models.FloatField(null=True, blank=True)
    ap75_status = models.PositiveSmallIntegerField(choices=FigureStatus.choices, default=FigureStatus.NONE)
    agreement = models.FloatField(null=True, blank=True)
    agreement_status = models.PositiveSmallIntegerField(choices=FigureStatus.choices, default=FigureStatus.NONE)
    temporal_iou = models.FloatField(null=True, blank=True)
    temporal_iou_status = models.PositiveSmallIntegerField(choices=FigureStatus.choices, default=FigureStatus.NONE)
    # The seller's two annotation passes agree less than the platform's threshold (null:
    # no second pass was measured).
    inconsistent_labeling = models.BooleanField(null=True, blank=True)
    tier = models.CharField(max_length=32, blank=True)

    # Effective license terms.
    commercial_use = models.BooleanField(default=False)
    derivatives = models.BooleanField(default=False)
    share_alike = models.BooleanField(default=False)

    has_tracks = models.BooleanField(default=False)
    frames = models.PositiveBigIntegerField(default=0)
    instances = models.PositiveBigIntegerField(default=0)
    price = models.DecimalField(max_digits=12, decimal_places=2, default=Decimal("0"))
    currency = models.CharField(max_length=3, default="USD")
    published_at = models.DateTimeField(null=True, blank=True)
    # A consent revocation reached the shown version: the seller must publish a version
    # without the withdrawn files by this deadline, else it is suspended. Buyers see it
    # before they order. Null: no revocation pending.
    revocation_deadline = models.DateTimeField(null=True, blank=True)

    provenance_completeness = models.FloatField(null=True, blank=True)
    provenance_verified_share = models.FloatField(null=True, blank=True)
    # Price per frame / quality weight (see marketplace.listings.pricing); null when it cannot be computed.
    quality_adjusted_cost = models.FloatField(null=True, blank=True)

    # Scene complexity measured at ingest (datasets.ingest.scene): mean instances per frame
    # and the share of instances whose mask overlaps or touches another one; null before
    # the version's ingest measured them.
    instances_per_frame = models.FloatField(null=True, blank=True)
    occlusion = models.FloatField(null=True, blank=True)
    # Embodiments and tasks the data covers (declared per frame/episode in the annotations,
    # else per dataset), and the diversity score computed from them (see
    # marketplace.listings.diversity).
    embodiment_count = models.PositiveIntegerField(default=0)
    task_count = models.PositiveIntegerField(default=0)
    diversity = models.FloatField(null=True, blank=True)
    scene = models.JSONField(default=dict, blank=True)
    diversity_inputs = models.JSONField(default=dict, blank=True)
    # Frames and episodes per embodiment and task, frames per sensor (as ingest counted them).
    coverage = models.JSONField(default=dict, blank=True)

    # Display data, denormalised (no joins when serialising a page of results).
    embodiments = models.JSONField(default=list, blank=True)
    tasks = models.JSONField(default=list, blank=True)
    scene_types = models.JSONField(default=list, blank=True)
    sensors = models.JSONField(default=list, blank=True)
    categories = models.JSONField(default=list, blank=True)
    licenses = models.JSONField(default=list, blank=True)
    quality = models.JSONField(default=dict, blank=True)
    terms = models.JSONField(default=dict, blank=True)
    cost_inputs = models.JSONField(default=dict, blank=True)
    previews = models.JSONField(default=list, blank=True)
    # Where the evidence is: the version's reports (kind, id, plot names) and its checks
    # summary; the API turns it into links (marketplace.listings.evidence).
    evidence = models.JSONField(default=dict, blank=True)
    # Per class: instances in the version, and AP against the reference where verified.
    per_class = models.JSONField(default=list, blank=True)

    # PostgreSQL full-text search (GIN index created in migration 0002, PostgreSQL only).
    search_vector = SearchVectorField(null=True, blank=True, editable=False)
    search_text = models.TextField(blank=True, editable=False)  # SQLite fallback (icontains)
    # "kind=value" keys of the embodiment, task, scene and license terms, space-separated
    # (slugs and SPDX ids hold no spaces). A copy of those ListingTerm rows kept inside the
    # covering index below, so filters and facets on them never touch the wide heap rows
    # nor join ListingTerm (categories, unbounded in number, stay in ListingTerm only).
    facet_keys = models.TextField(blank=True, editable=False)
    # The listing's embodiment / task / license / sensor values, sorted and space-separated: facets
    # GROUP BY these strings (few distinct combinations) and split each group's string in
    # Python, instead of unnesting every matching listing's values in SQL (~4x faster at 100k).
    facet_embodiments = models.TextField(blank=True, editable=False)
    facet_tasks = models.TextField(blank=True, editable=False)
    facet_licenses = models.TextField(blank=True, editable=False)
    facet_sensors = models.TextField(blank=True, editable=False)

    synced_at = models.DateTimeField(auto_now=True)
    # When the reconciliation last compared this row with its sources (oldest go first).
    checked_at = models.DateTimeField(null=True, blank=True, db_index=True)

    class Meta:
        ordering = ["-published_at", "pk"]
        indexes = [
            models.Index(fields=["is_public", "-published_at"], name="listing_public_published"),
            models.Index(fields=["is_public", "-mask_iou_status", "-mask_iou"], name="listing_public_mask_iou"),
            models.Index(fields=["is_public", "price"], name="listing_public_price"),
            models.Index(fields=["is_public", "quality_adjusted_cost"], name="listing_public_qac"),
            models.Index(fields=["is_public", "-diversity"], name="listing_public_diversity"),
            models.Index(fields=["is_public", "frames"], name="listing_public_frames"),
            models.Index(fields=["is_public", "ap"], name="listing_public_ap"),
            models.Index(fields=["is_public", "tier"], name="listing_public_tier"),
            models.Index(fields=["is_public", "annotation_kind"], name="listing_public_annotation_kind"),
            models.Index(fields=["is_public", "seller_slug"], name="listing_public_seller"),
            # Covering index of public listings: counts and facets at 100k listings are
            # index-only scans over it (a listing row is ~3 kB of display JSON and text;
            # this index holds ~200 bytes per listing). PostgreSQL only (ignored elsewhere).
            # PostgreSQL takes at most 32 columns: the scene and coverage minimums, rarer
            # filters, read the row.
            models.Index(
                fields=["id"],
                include=[
                    "version_id",
                    "tier",
                    "annotation_kind",
                    "mask_iou",
                    "mask_iou_status",
                    "ap",
                    "ap_status",
                    "ap50",
                    "ap50_status",
                    "ap75",
                    "ap75_status",
                    "agreement",
                    "agreement_status",
                    "temporal_iou",
                    "temporal_iou_status",
                    "commercial_use",
                    "derivatives",
                    "share_alike",
                    "has_tracks",
                    "frames",
                    "price",
                    "seller_slug",
                    "published_at",
                    "quality_adjusted_cost",
                    "facet_keys",
                    "facet_embodiments",
                    "facet_tasks",
                    "facet_licenses",
                    "facet_sensors",
                ],
                condition=models.Q(is_public=True),
                name="listing_public_facts",
            ),
        ]
        constraints = [
            models.CheckConstraint(
                condition=models.Q(is_public=False) | models.Q(version__isnull=False), name="listing_public_has_version"
            ),
        ]

    def __str__(self) -> str:
        return self.slug


class TermKind(models.TextChoices):
    EMBODIMENT = "embodiment"
    TASK = "task"
    SCENE = "scene"
    CATEGORY = "category"
    LICENSE = "license"
    SENSOR = "sensor"


class ListingTerm(models.Model):
    """One filterable multi-value attribute of a listing (index-backed any-of filters and facets)."""

    listing = models.ForeignKey(Listing, on_delete=models.CASCADE, related_name="terms_index")
    kind = models.CharField(max_length=16, choices=TermKind.choices)
    value = models.CharField(max_length=120)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["listing", "kind", "value"], name="listing_term_unique")]
        indexes = [models.Index(fields=["kind", "value", "listing"], name="listing_term_lookup")]


class SalesTerms(models.Model):
    """How the seller sells a dataset, whichever version is published: whether each order
    needs the seller's approval (restricted or research-only terms), for how long a buyer
    gets new versions free, and the prices of the declared subsets (else pro rata)."""

    dataset = models.OneToOneField("datasets.Dataset", on_delete=models.CASCADE, related_name="sales_terms")
    requires_approval = models.BooleanField(default=False)
    # The seller's prices of declared subsets by key ("commercial", "split:train"), as
    # decimal strings; a subset not named is priced pro rata by frames.
    subset_prices = models.JSONField(default=dict, blank=True)
    # Months after an entitlement is granted during which its holder claims newer versions
    # free; null: new versions are bought anew.
    free_update_months = models.PositiveSmallIntegerField(null=True, blank=True)
    updated_at = models.DateTimeField(auto_now=True)
    updated_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+")


class OrderState(models.TextChoices):
    AWAITING_APPROVAL = "awaiting_approval"  # the listing needs the seller's approval
    PENDING_PAYMENT = "pending_payment"
    PAID = "paid"
    REJECTED = "rejected"  # the seller declined it: never an entitlement
    CANCELLED = "cancelled"  # the buyer withdrew it before payment
    REFUNDED = "refunded"  # staff refunded it: its entitlement is revoked


# An order in one of these states blocks another for the same buyer org and version.
OPEN_ORDER_STATES = (OrderState.AWAITING_APPROVAL, OrderState.PENDING_PAYMENT, OrderState.PAID)
# The buyer may cancel while nothing was paid.
CANCELLABLE_ORDER_STATES = (OrderState.AWAITING_APPROVAL, OrderState.PENDING_PAYMENT)


class Order(models.Model):
    buyer = models.ForeignKey("accounts.Organization", on_delete=models.PROTECT, related_name="orders")
    listing = models.ForeignKey(Listing, on_delete=models.PROTECT, related_name="orders")
    version = models.ForeignKey("datasets.DatasetVersion", on_delete=models.PROTECT, related_name="orders")
    state = models.CharField(max_length=20, choices=OrderState.choices, default=OrderState.PENDING_PAYMENT)
    # The license the buyer accepted, when and by whom (the acceptance record).
    license = models.CharField(max_length=64)
    accepted_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    accepted_at = models.DateTimeField()
    price = models.DecimalField(max_digits=12, decimal_places=2)
    currency = models.CharField(max_length=3)
    idempotency_key = models.CharField(max_length=128)
    created_at = models.DateTimeField(auto_now_add=True)
    paid_at = models.DateTimeField(null=True, blank=True)
    paid_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+")
    # What the buyer means to do with the data (required when the listing needs approval).
    intended_use = models.TextField(blank=True)
    # The seller's decision on an order that awaited approval, or the cancellation/refund.
    decided_at = models.DateTimeField(null=True, blank=True)
    decided_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+")
    decision_reason = models.TextField(blank=True)
    closed_at = models.DateTimeField(null=True, blank=True, help_text="cancelled, rejected or refunded at")
    # A free claim of a newer version under the listing's update policy: the entitlement it
    # was claimed with.
    claimed_from = models.ForeignKey("Entitlement", on_delete=models.PROTECT, null=True, blank=True, related_name="update_claims")
    # The declared subset ordered ({} : the whole version) and its key ("" : whole).
    subset = models.JSONField(default=dict, blank=True)
    subset_key = models.CharField(max_length=600, blank=True, default="")

    class Meta:
        ordering = ["-created_at", "-pk"]
        constraints = [
            models.CheckConstraint(condition=models.Q(state__in=OrderState.values), name="order_state_valid"),
            models.UniqueConstraint(fields=["buyer", "idempotency_key"], name="order_unique_idempotency_key"),
            # Concurrent orders for the same version (and subset) by the same buyer org create one order.
            models.UniqueConstraint(
                fields=["buyer", "version", "subset_key"], condition=models.Q(state__in=OPEN_ORDER_STATES), name="order_one_open_per_version"
            ),
        ]


class Entitlement(models.Model):
    """The buyer organization's right to exactly one version's files (or a declared subset of them)."""

    buyer = models.ForeignKey("accounts.Organization", on_delete=models.PROTECT, related_name="entitlements")
    version = models.ForeignKey("datasets.DatasetVersion", on_delete=models.PROTECT, related_name="entitlements")
    listing = models.ForeignKey(Listing, on_delete=models.PROTECT, related_name="entitlements")
    order = models.OneToOneField(Order, on_delete=models.PROTECT, related_name="entitlement")
    license = models.CharField(max_length=64)
    granted_at = models.DateTimeField(auto_now_add=True)
    revoked_at = models.DateTimeField(null=True, blank=True)
    revoked_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+")
    revoke_reason = models.TextField(blank=True)
    # The declared subset it covers ({} : the whole version) and its key ("" : whole).
    subset = models.JSONField(default=dict, blank=True)
    subset_key = models.CharField(max_length=600, blank=True, default="")

    class Meta:
        ordering = ["-granted_at", "-pk"]
        constraints = [
            models.UniqueConstraint(
                fields=["buyer", "version", "subset_key"], condition=models.Q(revoked_at__isnull=True), name="entitlement_one_live_per_version"
            ),
        ]

    @property
    def is_live(self) -> bool:
        return self.revoked_at is None


class DownloadLog(models.Model):
    """One row per presigned/signed URL issued (every issue is logged)."""

    entitlement = models.ForeignKey(Entitlement, on_delete=models.PROTECT, related_name="downloads")
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    path = models.CharField(max_length=1024)
    storage_key = models.CharField(max_length=1024)
    ttl_seconds = models.PositiveIntegerField()
    issued_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-issued_at", "-pk"]
        indexes = [models.Index(fields=["entitlement", "-issued_at"], name="download_log_entitlement")]


class VersionIndex(models.Model):
    """One row per image (per video) of a published version's annotation files, kept in
    object storage (``storage_key``, JSON); ``summary`` holds what listings show of the
    subsets (frames and license counts of the whole, each split, the commercially usable
    subset, each category). Built once per version by a worker (marketplace.listings.subsets)."""

    version = models.OneToOneField("datasets.DatasetVersion", on_delete=models.CASCADE, related_name="subset_index")
    storage_key = models.CharField(max_length=1200)
    summary = models.JSONField(default=dict)
    built_at = models.DateTimeField(auto_now_add=True)


class SelectionState(models.TextChoices):
    BUILDING = "building"
    READY = "ready"
    FAILED = "failed"


class Selection(models.Model):
    """The files served for a version's subset and/or without the files a consent revocation
    withdrew: the kept media files as they are and every annotation file regenerated for the
    kept frames. Built once per ``key`` (subset and withdrawn files) by a worker and shared."""

    version = models.ForeignKey("datasets.DatasetVersion", on_delete=models.CASCADE, related_name="selections")
    key = models.CharField(max_length=64)
    subset = models.JSONField(default=dict, blank=True)
    withheld_file_ids = models.JSONField(default=list, blank=True)
    state = models.CharField(max_length=12, choices=SelectionState.choices, default=SelectionState.BUILDING)
    error = models.TextField(blank=True)
    frames = models.PositiveBigIntegerField(default=0)
    created_at = models.DateTimeField(auto_now_add=True)
    built_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["version", "key"], name="selection_unique_key"),
            models.CheckConstraint(condition=models.Q(state__in=SelectionState.values), name="selection_state_valid"),
        ]


class SelectionEntry(models.Model):
    """One file a selection serves: a file of the version as it is (``file``), or an
    annotation file generated for the selection (``file`` null, its own object)."""

    selection = models.ForeignKey(Selection, on_delete=models.CASCADE, related_name="entries")
    file = models.ForeignKey("datasets.DatasetFile", on_delete=models.CASCADE, null=True, blank=True, related_name="+")
    role = models.CharField(max_length=24)
    path = models.CharField(max_length=1024)
    size = models.BigIntegerField()
    sha256 = models.CharField(max_length=64)
    content_type = models.CharField(max_length=120)
    storage_key = models.CharField(max_length=1200)

    class Meta:
        ordering = ["selection_id", "role", "path", "pk"]
        constraints = [models.UniqueConstraint(fields=["selection", "path"], name="selection_entry_unique_path")]

    @property
    def generated(self) -> bool:
        return self.file_id is None


# Term kinds copied into Listing.facet_keys (see there).
FACET_KEY_KINDS = ("embodiment", "task", "scene", "license", "sensor")


def facet_keys_text(multi: dict[str, list[str]]) -> str:
    return " ".join(f"{kind}={value}" for kind in FACET_KEY_KINDS for value in multi.get(kind, []) if value and " " not in value)


def facet_group_fields(multi: dict[str, list[str]]) -> dict[str, str]:
    """Listing.facet_embodiments / facet_tasks / facet_licenses / facet_sensors from the listing's terms."""

    def joined(kind: str) -> str:
        return " ".join(sorted({v for v in multi.get(kind, []) if v and " " not in v}))

    return {
        "facet_embodiments": joined("embodiment"),
        "facet_tasks": joined("task"),
        "facet_licenses": joined("license"),
        "facet_sensors": joined("sensor"),
    }


class ConsentNotice(models.Model):
    """A buyer organization downloaded files whose consent was revoked: it is told which,
    to delete them, and acknowledges it. One per (revocation, buyer organization);
    ``revocation_id`` names the licensing app's revocation."""

    revocation_id = models.BigIntegerField()
    buyer = models.ForeignKey("accounts.Organization", on_delete=models.PROTECT, related_name="consent_notices")
    listing = models.ForeignKey(Listing, on_delete=models.PROTECT, related_name="consent_notices")
    version = models.ForeignKey("datasets.DatasetVersion", on_delete=models.PROTECT, related_name="consent_notices")
    # The withdrawn files this organization downloaded: [{"path", "sha256"}].
    files = models.JSONField(default=list)
    requested_on = models.DateField()
    created_at = models.DateTimeField(auto_now_add=True)
    acknowledged_at = models.DateTimeField(null=True, blank=True)
    acknowledged_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+")

    class Meta:
        ordering = ["-created_at", "-pk"]
        constraints = [models.UniqueConstraint(fields=["revocation_id", "buyer"], name="consent_notice_once_per_buyer")]
