"""Writes of the store front, by concern: the catalogue (listings, their sync and
reconciliation), orders and entitlements (with sales terms, approval, refunds, update
claims and downloads), selections (the version index and the files a subset or a
consent revocation leaves), and what a consent revocation sets off (consent). Every write is atomic, keyword-only and audited."""

from marketplace.listings.services.catalogue import (
    listing_fields_from_version,
    listing_search_vector_refresh,
    listing_sync,
    listing_sync_by_id,
    listings_reconcile,
)
from marketplace.listings.services.consent import consent_notice_acknowledge, consent_revocation_apply
from marketplace.listings.services.orders import (
    download_urls_issue,
    entitlement_revoke,
    entitlement_update_claim,
    new_version_announce,
    order_approve,
    order_cancel,
    order_create,
    order_mark_paid,
    order_payment_record,
    order_refund,
    order_reject,
    sales_terms_for,
    sales_terms_set,
    update_claim_until,
)
from marketplace.listings.services.selections import entitlement_serving, selection_build, selection_request, version_index_build

__all__ = [
    "consent_notice_acknowledge",
    "consent_revocation_apply",
    "download_urls_issue",
    "entitlement_serving",
    "entitlement_revoke",
    "entitlement_update_claim",
    "listing_fields_from_version",
    "listing_search_vector_refresh",
    "listing_sync",
    "listing_sync_by_id",
    "listings_reconcile",
    "new_version_announce",
    "order_approve",
    "order_cancel",
    "order_create",
    "order_mark_paid",
    "order_payment_record",
    "order_refund",
    "order_reject",
    "sales_terms_for",
    "sales_terms_set",
    "selection_build",
    "selection_request",
    "update_claim_until",
    "version_index_build",
]
