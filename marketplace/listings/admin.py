"""Admin: listings are rebuilt by listing_sync (read-only here); orders and entitlements change
through their services (mark paid / revoke via the API), so the admin shows them read-only."""

from django.contrib import admin

from marketplace.listings.models import DownloadLog, Entitlement, Listing, Order


class ReadOnlyAdmin(admin.ModelAdmin):
    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False


@admin.register(Listing)
class ListingAdmin(ReadOnlyAdmin):
    list_display = ("slug", "seller_slug", "version_number", "is_public", "tier", "mask_iou", "mask_iou_status", "price", "published_at")
    list_filter = ("is_public", "annotation_kind", "tier", "mask_iou_status")
    search_fields = ("slug", "title", "seller_slug")


@admin.register(Order)
class OrderAdmin(ReadOnlyAdmin):
    list_display = ("pk", "buyer", "listing", "version", "state", "license", "price", "created_at", "paid_at")
    list_filter = ("state",)
    list_select_related = ("buyer", "listing", "version__dataset")


@admin.register(Entitlement)
class EntitlementAdmin(ReadOnlyAdmin):
    list_display = ("pk", "buyer", "listing", "version", "license", "granted_at", "revoked_at")
    list_select_related = ("buyer", "listing", "version__dataset")


@admin.register(DownloadLog)
class DownloadLogAdmin(ReadOnlyAdmin):
    list_display = ("pk", "entitlement", "user", "path", "issued_at", "ttl_seconds")
    list_select_related = ("user",)
