"""Django admin for moderators: versions in review (decide with a reason, verify or dispute
provenance fields), the license catalogue, and a read-only audit log. Every change goes
through the services so that it leaves an audit event."""

from __future__ import annotations

from django import forms
from django.contrib import admin, messages

from datasets.states import VersionState
from licensing import services
from licensing.models import FieldStatus, License, ModeratedVersion, ProvenanceField
from marketplace.core.errors import DomainError
from marketplace.core.permissions import is_moderator


class ModeratorOnly:
    def has_module_permission(self, request) -> bool:
        return is_moderator(request.user)

    def has_view_permission(self, request, obj=None) -> bool:
        return is_moderator(request.user)


@admin.register(License)
class LicenseAdmin(ModeratorOnly, admin.ModelAdmin):
    list_display = ["spdx_id", "name", "commercial_use", "derivatives", "share_alike", "attribution", "redistribution"]
    search_fields = ["spdx_id", "name"]

    def has_add_permission(self, request) -> bool:
        return False  # the catalogue is data (licensing/data/licenses.json)

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False


class DecisionForm(forms.ModelForm):
    decision = forms.ChoiceField(choices=[("", "---------"), *[(d, d.replace("_", " ")) for d in services.Decision.ALL]], required=False)
    reason = forms.CharField(widget=forms.Textarea(attrs={"rows": 3}), required=False)

    class Meta:
        model = ModeratedVersion
        fields: list[str] = []



@admin.register(ModeratedVersion)
class ModeratedVersionAdmin(ModeratorOnly, admin.ModelAdmin):
    """Versions waiting for (or past) moderation. The change page shows everything a
    decision needs and takes the decision; field statuses are set in the provenance table."""

    form = DecisionForm
    list_display = ["__str__", "state", "submitted_at"]
    list_filter = ["state"]
    readonly_fields = ["dataset", "number", "state", "submitted_at", "effective_terms", "checks", "provenance_fields"]
    fieldsets = [
        (None, {"fields": ["dataset", "number", "state", "submitted_at"]}),
        ("Review", {"fields": ["effective_terms", "checks", "provenance_fields"]}),
        ("Decision", {"fields": ["decision", "reason"]}),
    ]

    def get_queryset(self, request):
        return super().get_queryset(request).select_related("dataset").filter(
            state__in=[VersionState.IN_REVIEW, VersionState.PUBLISHED, VersionState.SUSPENDED, VersionState.CHANGES_REQUESTED, VersionState.REJECTED]
        )

    def has_add_permission(self, request) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return is_moderator(request.user)

    @admin.display(description="effective terms")
    def effective_terms(self, obj):
        from licensing.selectors import version_effective_terms

        t = version_effective_terms(version=obj)
        return ", ".join(f"{k}={t[k]}" for k in ("commercial_use", "derivatives", "share_alike", "attribution", "redistribution")) + f"; conflicts: {[c['code'] for c in t['conflicts']]}"

    @admin.display(description="checks")
    def checks(self, obj):
        return "; ".join(f"{c.code}: {c.status}" for c in obj.check_results.all()) or "(not run)"

    @admin.display(description="provenance")
    def provenance_fields(self, obj):
        return "; ".join(f"{f.name}={f.value!r} [{f.status}]" for f in ProvenanceField.objects.filter(record__version=obj)) or "(empty)"

    def save_model(self, request, obj, form, change):
        decision = form.cleaned_data.get("decision")
        if not decision:
            return
        try:
            services.moderation_decide(version=obj, actor=request.user, decision=decision, reason=form.cleaned_data.get("reason") or "")
        except DomainError as exc:
            self.message_user(request, f"{exc.code}: {exc.message}", level=messages.ERROR)
        else:
            self.message_user(request, f"{obj}: {decision.replace('_', ' ')} recorded.", level=messages.SUCCESS)


@admin.register(ProvenanceField)
class ProvenanceFieldAdmin(ModeratorOnly, admin.ModelAdmin):
    """Verify or dispute one provenance field with a note (through the service, audited)."""

    list_display = ["record", "name", "status", "note"]
    list_filter = ["status"]
    fields = ["record", "name", "value", "status", "note"]
    readonly_fields = ["record", "name", "value"]
    actions = ["mark_verified"]

    def has_add_permission(self, request) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return is_moderator(request.user)

    def save_model(self, request, obj, form, change):
        services.provenance_fields_review(
            version=obj.record.version, actor=request.user, reviews=[{"name": obj.name, "status": obj.status, "note": obj.note}]
        )

    @admin.action(description="Mark selected fields verified")
    def mark_verified(self, request, queryset):
        for f in queryset.select_related("record__version"):
            services.provenance_fields_review(version=f.record.version, actor=request.user, reviews=[{"name": f.name, "status": FieldStatus.VERIFIED, "note": "verified in admin"}])
