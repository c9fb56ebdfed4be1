"""Reads for listings, orders, entitlements and downloads."""

from __future__ import annotations

from django.db.models import QuerySet

from datasets.states import VersionState
from marketplace.accounts.selectors import buyer_organizations
from marketplace.listings.models import Entitlement, Listing

# A live entitlement gives downloads while its version is published or withdrawn by the
# seller (buyers keep what they paid for); a suspended version (a takedown pending) gives none.
DOWNLOADABLE_STATES = (VersionState.PUBLISHED, VersionState.WITHDRAWN)


def listings_public() -> QuerySet[Listing]:
    """Listings buyers may see: a published version, nothing else (no drafts, rejected, suspended)."""
    return Listing.objects.filter(is_public=True, version__state=VersionState.PUBLISHED)


def live_entitlements(*, user) -> QuerySet[Entitlement]:
    return Entitlement.objects.filter(buyer__in=buyer_organizations(user=user), revoked_at__isnull=True, version__state__in=DOWNLOADABLE_STATES)


def entitlement_active(*, user, version) -> bool:
    """Whether one of the user's buyer organizations holds a live entitlement to exactly this version."""
    if user is None or not user.is_authenticated:
        return False
    return live_entitlements(user=user).filter(version=version).exists()
