"""Error codes of the store front: search, orders, entitlements. Clients key on these values: they never change meaning."""

from enum import StrEnum


class ListingErrorCode(StrEnum):
    IDEMPOTENCY_KEY_REQUIRED = "idempotency_key_required"
    IDEMPOTENCY_KEY_REUSED = "idempotency_key_reused"
    INVALID_FILTER = "invalid_filter"
    INVALID_ORDER_STATE = "invalid_order_state"
    LICENSE_NOT_OFFERED = "license_not_offered"
    NOT_FOUND = "not_found"
    VERSION_NOT_AVAILABLE = "version_not_available"
