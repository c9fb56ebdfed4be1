from django.contrib import admin

from quality.models import BuyerEvaluation, EvaluationSplit, QualityReport


@admin.register(QualityReport)
class QualityReportAdmin(admin.ModelAdmin):
    list_display = ("id", "version", "kind", "status", "engine_version", "device", "seconds", "created_at")
    list_filter = ("kind", "status", "engine_version")
    # Reports are computed, never edited by hand.
    readonly_fields = [f.name for f in QualityReport._meta.fields]


@admin.register(BuyerEvaluation)
class BuyerEvaluationAdmin(admin.ModelAdmin):
    list_display = ("id", "dataset", "version", "organization", "state", "n_detections", "created_at")
    list_filter = ("state",)
    readonly_fields = [f.name for f in BuyerEvaluation._meta.fields]


@admin.register(EvaluationSplit)
class EvaluationSplitAdmin(admin.ModelAdmin):
    list_display = ("version", "rule", "created_at")
    readonly_fields = ("version", "rule", "image_ids", "category_ids", "created_at")
