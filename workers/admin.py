from django.contrib import admin

from workers.models import Job


@admin.register(Job)
class JobAdmin(admin.ModelAdmin):
    list_display = ("id", "version", "step", "state", "attempts", "progress", "worker", "device", "updated_at")
    list_filter = ("state", "step", "device")
    search_fields = ("version__dataset__slug", "worker", "error")
    readonly_fields = [f.name for f in Job._meta.fields]
