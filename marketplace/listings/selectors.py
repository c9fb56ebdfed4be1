"""Reads for listings, orders, entitlements and downloads."""

from __future__ import annotations

from decimal import Decimal

from django.db.models import QuerySet

from datasets.models import DatasetVersion
from datasets.selectors import version_files
from datasets.states import VersionState
from licensing.selectors import withdrawn_files
from marketplace.accounts.acting import acting_organization
from marketplace.accounts.models import Organization, OrganizationRole
from marketplace.accounts.selectors import buyer_organizations, organizations_for
from marketplace.core.errors import NotFound
from marketplace.listings.models import ConsentNotice, Entitlement, Listing, Order
from marketplace.listings.subsets import Subset, subset_price

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


ENTITLEMENT_GRANT = "entitlement"


def entitlement_grant(entitlement: Entitlement) -> str:
    """The grant a download link issued under ``entitlement`` carries (see download_grant_live)."""
    return f"{ENTITLEMENT_GRANT}:{entitlement.pk}"


def download_grant_live(grant: str) -> bool:
    """Whether a signed download link's grant still holds: its entitlement exists and is
    not revoked (a refund, a staff revocation). Asked on every request for a local
    ``/files/<token>`` link; an unknown kind of grant holds nothing."""
    kind, _, ident = grant.partition(":")
    if kind != ENTITLEMENT_GRANT or not ident.isdigit():
        return False
    return Entitlement.objects.filter(pk=int(ident), revoked_at__isnull=True).exists()


def listing_public_get(*, slug: str) -> Listing:
    listing = listings_public().select_related("dataset__sales_terms", "version__subset_index").filter(slug=slug).first()
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


ORDER_RELATED = ("listing", "version", "buyer", "accepted_by", "entitlement")


def orders_for_buyer(*, user, slug: str | None = None) -> QuerySet[Order]:
    """Orders of the user's buyer organizations (only the one named, when ``slug`` is given)."""
    return Order.objects.filter(buyer__in=_buyer_orgs(user=user, slug=slug)).select_related(*ORDER_RELATED)


def orders_for_seller(*, user, slug: str | None = None, state: str | None = None) -> QuerySet[Order]:
    """Orders for the listings of the user's seller organizations (the one named, when
    ``slug`` is given), optionally in one state: what a seller member decides on."""
    sellers = organizations_for(user=user, role=OrganizationRole.SELLER)
    qs = Order.objects.filter(listing__seller__in=sellers.filter(slug=slug) if slug else sellers).select_related(*ORDER_RELATED)
    return qs.filter(state=state) if state else qs


def order_for_buyer_member(*, user, order_id: int) -> Order:
    """An order of one of the user's buyer organizations; NotFound otherwise."""
    order = orders_for_buyer(user=user).filter(pk=order_id).first()
    if order is None:
        raise NotFound("No such order.")
    return order


def order_for_seller_member(*, user, order_id: int) -> Order:
    """An order for a listing of one of the user's seller organizations; NotFound otherwise."""
    order = orders_for_seller(user=user).filter(pk=order_id).first()
    if order is None:
        raise NotFound("No such order.")
    return order


def order_get(*, order_id: int) -> Order:
    order = Order.objects.select_related("listing", "version", "buyer", "accepted_by", "entitlement").filter(pk=order_id).first()
    if order is None:
        raise NotFound("No such order.")
    return order


def entitlements_for_buyer(*, user, slug: str | None = None) -> QuerySet[Entitlement]:
    """Entitlements of the user's buyer organizations (only the one named, when ``slug`` is given)."""
    return Entitlement.objects.filter(buyer__in=_buyer_orgs(user=user, slug=slug)).select_related(
        "listing", "version", "buyer", "listing__dataset__sales_terms"
    )


def entitlement_for_buyer_member(*, user, entitlement_id: int) -> Entitlement:
    """An entitlement (live or not) of one of the user's buyer organizations; NotFound otherwise."""
    ent = entitlements_for_buyer(user=user).filter(pk=entitlement_id).first()
    if ent is None:
        raise NotFound("No such entitlement.")
    return ent


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


def listing_subsets(*, listing: Listing) -> dict:
    """The declared subsets a listing offers, from its version's index: the commercially
    usable subset, each split and each category, with frames, price (the seller's, else
    pro rata by frames) and effective terms. ``ready`` is False while the index is built."""
    index = getattr(listing.version, "subset_index", None) if listing.version_id else None
    if index is None:
        return {"ready": False, "commercial": None, "splits": [], "categories": []}
    sales = getattr(listing.dataset, "sales_terms", None)
    prices = (sales.subset_prices if sales else {}) or {}
    summary = index.summary
    total = int(summary["all"]["frames"])

    def offer(subset: Subset, part: dict) -> dict:
        set_price = Decimal(prices[subset.key]) if subset.key in prices else None
        return {
            "subset": subset.to_dict(),
            "frames": part["frames"],
            "price": str(subset_price(price=listing.price, frames=part["frames"], total_frames=total, set_price=set_price)),
            "price_set_by_seller": set_price is not None,
            "terms": part.get("terms"),
        }

    return {
        "ready": True,
        "frames": total,
        "commercial": offer(Subset(kind="commercial"), summary["commercial"]),
        "splits": [offer(Subset(kind="split", split=name), part) for name, part in summary["splits"].items()],
        "categories": [offer(Subset(kind="categories", categories=(name,)), part) for name, part in summary["categories"].items()],
    }


# ---------------------------------------------------------------- consent revocations


def entitlement_withdrawn_files(*, entitlement: Entitlement) -> list[dict]:
    """The files of the entitlement's version a consent revocation withdrew (``id``,
    ``path``, ``role``, the revocation), each with ``code`` ``consent_revoked``."""
    withdrawn = withdrawn_files(version_id=entitlement.version_id)
    rows = [{**w, "id": file_id, "code": "consent_revoked"} for file_id, w in withdrawn.items()]
    return sorted(rows, key=lambda w: (w["role"], w["path"]))


def consent_notices_for_buyer(*, user, slug: str | None = None, acknowledged: bool | None = None) -> QuerySet[ConsentNotice]:
    """Consent notices of the user's buyer organizations (only the one named, when ``slug`` is given)."""
    notices = ConsentNotice.objects.filter(buyer__in=_buyer_orgs(user=user, slug=slug)).select_related("buyer", "listing", "version", "acknowledged_by")
    if acknowledged is not None:
        notices = notices.filter(acknowledged_at__isnull=not acknowledged)
    return notices


def consent_notice_for_buyer_member(*, user, notice_id: int) -> ConsentNotice:
    notice = consent_notices_for_buyer(user=user).filter(pk=notice_id).first()
    if notice is None:
        raise NotFound("No such notice.")
    return notice


def consent_notices_for_seller(*, user, slug: str | None = None, acknowledged: bool | None = None) -> QuerySet[ConsentNotice]:
    """Consent notices sent to the buyers of the user's seller organizations' listings (the
    one named, when ``slug`` is given): which organization was told, and whether it
    acknowledged deleting the files."""
    sellers = organizations_for(user=user, role=OrganizationRole.SELLER)
    notices = ConsentNotice.objects.filter(listing__seller__in=sellers.filter(slug=slug) if slug else sellers).select_related(
        "buyer", "listing", "version", "acknowledged_by"
    )
    if acknowledged is not None:
        notices = notices.filter(acknowledged_at__isnull=not acknowledged)
    return notices
