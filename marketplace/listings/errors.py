"""Error codes of the store front: search, orders, entitlements. Clients key on these values: they never change meaning."""

from enum import StrEnum


class ListingErrorCode(StrEnum):
    CONSENT_REVOKED = "consent_revoked"
    EMPTY_SUBSET = "empty_subset"
    IDEMPOTENCY_KEY_REQUIRED = "idempotency_key_required"
    IDEMPOTENCY_KEY_REUSED = "idempotency_key_reused"
    INTENDED_USE_REQUIRED = "intended_use_required"
    INVALID_FILTER = "invalid_filter"
    INVALID_ORDER_STATE = "invalid_order_state"
    INVALID_SUBSET = "invalid_subset"
    LICENSE_NOT_OFFERED = "license_not_offered"
    NO_NEWER_VERSION = "no_newer_version"
    NOT_FOUND = "not_found"
    # Staff who are members of an order's buyer organization may not record its payment nor
    # refund it: the person settling the money must not be the one who benefits.
    OWN_ORGANIZATION = "own_organization"
    REASON_REQUIRED = "reason_required"
    SUBSET_NOT_READY = "subset_not_ready"
    UPDATE_NOT_FREE = "update_not_free"
    VERSION_NOT_AVAILABLE = "version_not_available"
