from django.contrib import admin

from marketplace.accounts.models import ApiToken, Membership, Organization


class MembershipInline(admin.TabularInline):
    model = Membership
    extra = 0
    autocomplete_fields = ["user"]


@admin.register(Organization)
class OrganizationAdmin(admin.ModelAdmin):
    list_display = ["slug", "name", "created_at"]
    search_fields = ["slug", "name"]
    inlines = [MembershipInline]


@admin.register(ApiToken)
class ApiTokenAdmin(admin.ModelAdmin):
    list_display = ["prefix", "user", "created_at", "expires_at", "revoked_at"]
    readonly_fields = ["key_hash", "prefix", "password_fingerprint", "created_at", "last_used_at"]
    search_fields = ["user__username", "prefix"]
