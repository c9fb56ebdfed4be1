from django.contrib import admin

from datasets.models import AuditSample, Dataset, DatasetFile, DatasetVersion, UploadSession, VersionIngest, VocabularyTerm


@admin.register(VocabularyTerm)
class VocabularyTermAdmin(admin.ModelAdmin):
    """Staff extend the controlled vocabularies here."""

    list_display = ("kind", "slug", "name", "aliases")
    list_filter = ("kind",)
    search_fields = ("slug", "name", "aliases")


@admin.register(Dataset)
class DatasetAdmin(admin.ModelAdmin):
    list_display = ("slug", "owner", "title", "annotation_kind", "annotation_license", "price", "currency")
    search_fields = ("slug", "title")
    readonly_fields = ("owner", "slug", "created_by", "created_at", "updated_at")


@admin.register(DatasetVersion)
class DatasetVersionAdmin(admin.ModelAdmin):
    """Read-only: states change through services (audited), never by hand."""

    list_display = ("dataset", "number", "state", "submitted_at", "published_at")
    list_filter = ("state",)

    def has_change_permission(self, request, obj=None) -> bool:
        return False


@admin.register(DatasetFile)
class DatasetFileAdmin(admin.ModelAdmin):
    list_display = ("version", "role", "path", "size", "origin")
    list_filter = ("role", "origin")

    def has_change_permission(self, request, obj=None) -> bool:
        return False


@admin.register(UploadSession)
class UploadSessionAdmin(admin.ModelAdmin):
    list_display = ("id", "version", "role", "name", "size", "state", "expires_at")
    list_filter = ("state", "role")

    def has_change_permission(self, request, obj=None) -> bool:
        return False


admin.site.register(AuditSample)
admin.site.register(VersionIngest)
