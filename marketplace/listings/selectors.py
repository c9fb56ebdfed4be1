"""Reads for listings, orders, entitlements and downloads."""

from __future__ import annotations

from django.db.models import QuerySet

from datasets.models import DatasetVersion
from datasets.selectors import version_files
from datasets.states import VersionState
from marketplace.accounts.acting import acting_organization
from marketplace.accounts.models import Organization, OrganizationRole
from marketplace.accounts.selectors import buyer_organizations
from marketplace.core.errors import NotFound
from marketplace.listings.models import Entitlement, Listing, Order

# A live entitlement gives downloads while its version is published or withdrawn by the
# seller (buyers keep what they paid for); a suspended version (a takedown pending) gives none.
DOWNLOADABLE_STATES = (VersionState.PUBLISHED, VersionState.WITHDRAWN)


# Every state but published: a public listing whose version moved to one of these (before
# listing_sync ran) is hidden at once.
_HIDDEN_STATES = tuple(s for s in VersionState.values if s != VersionState.PUBLISHED)


def listings_public() -> QuerySet[Listing]:
    """Listings buyers may see: a published version, nothing else (no drafts, rejected, suspended).

    Written as "is public and its version is not among the unpublished ones" rather than a join
    on the version's state: PostgreSQL answers the subquery once from the state index (a hashed
    set, empty in the steady state) instead of joining every matching listing to its version.
    Same rows, as a public listing always has a version (constraint listing_public_has_version).
    """
    return Listing.objects.filter(is_public=True).exclude(
        version_id__in=DatasetVersion.objects.filter(state__in=_HIDDEN_STATES).values("pk")
    )


def live_entitlements(*, user) -> QuerySet[Entitlement]:
    return Entitlement.objects.filter(
        buyer__in=buyer_organizations(user=user), revoked_at__isnull=True, version__state__in=DOWNLOADABLE_STATES
    )


def entitlement_active(*, user, version) -> bool:
    """Whether one of the user's buyer organizations holds a live entitlement to exactly this version."""
    if user is None or not user.is_authenticated:
        return False
    return live_entitlements(user=user).filter(version=version).exists()


def listing_public_get(*, slug: str) -> Listing:
    listing = listings_public().filter(slug=slug).first()
    if listing is None:
        raise NotFound("No such listing.")
    return listing


def buyer_organization_for(*, user, slug: str | None = None) -> Organization:
    """The organization a user buys for: the one named (``X-Organization``), or their only
    buyer organization (see marketplace.accounts.acting)."""
    return acting_organization(user=user, role=OrganizationRole.BUYER, slug=slug)


def _buyer_orgs(*, user, slug: str | None):
    orgs = buyer_organizations(user=user)
    return orgs.filter(slug=slug) if slug else orgs


def orders_for_buyer(*, user, slug: str | None = None) -> QuerySet[Order]:
    """Orders of the user's buyer organizations (only the one named, when ``slug`` is given)."""
    return Order.objects.filter(buyer__in=_buyer_orgs(user=user, slug=slug)).select_related(
        "listing", "version", "buyer", "accepted_by", "entitlement"
    )


def order_get(*, order_id: int) -> Order:
    order = Order.objects.select_related("listing", "version", "buyer", "accepted_by", "entitlement").filter(pk=order_id).first()
    if order is None:
        raise NotFound("No such order.")
    return order


def entitlements_for_buyer(*, user, slug: str | None = None) -> QuerySet[Entitlement]:
    """Entitlements of the user's buyer organizations (only the one named, when ``slug`` is given)."""
    return Entitlement.objects.filter(buyer__in=_buyer_orgs(user=user, slug=slug)).select_related("listing", "version", "buyer")


def entitlement_get(*, entitlement_id: int) -> Entitlement:
    ent = Entitlement.objects.select_related("listing", "version", "buyer").filter(pk=entitlement_id).first()
    if ent is None:
        raise NotFound("No such entitlement.")
    return ent


def entitlement_live_for_buyer(*, user, entitlement_id: int) -> Entitlement:
    """A live entitlement of one of the user's buyer orgs; 404 for anything else (revoked, another org's, suspended version)."""
    ent = live_entitlements(user=user).select_related("version").filter(pk=entitlement_id).first()
    if ent is None:
        raise NotFound("No such entitlement.")
    return ent


# Roles a buyer receives: the data. Not provenance documents (consent forms may hold personal
# data), the auditor's reference, the engine cache or previews (public anyway).
BUYER_FILE_ROLES = ("annotations", "images", "second_pass", "video", "panoptic")


def entitlement_manifest(*, entitlement: Entitlement):
    return version_files(version=entitlement.version).filter(role__in=BUYER_FILE_ROLES).order_by("role", "path", "pk")
