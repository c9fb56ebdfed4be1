"""The moderators' desk, in the Django admin.

* The queue (``/admin/licensing/moderatedversion/``): opens on the versions in review,
  oldest submission first, with what a moderator triages by (seller, annotation kind,
  frames, verified mask IoU with its interval, tier, failed checks by severity, terms
  conflicts, time waiting); filters by state, seller, failed-check severity and annotation
  kind; search by dataset or seller.
* The review page of a version (``<id>/change/``): quality figures with their labels, the
  reports' plots and overlays, the checks, the effective terms, the provenance with a
  verify / dispute form per field, the context (earlier versions, the seller's other
  listings, the audit log) and the decision.

Every action is the API's service call (same checks, same audit event, same errors, shown
as the API would answer them). Every page here is refused (403) to anyone signed in who is
not a moderator; anonymous visitors are sent to the login page.
"""

from __future__ import annotations

from functools import wraps

from django.contrib import admin, messages
from django.contrib.admin.views.main import ChangeList
from django.core.exceptions import PermissionDenied
from django.http import FileResponse, Http404, HttpResponseNotAllowed
from django.shortcuts import redirect
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils import timezone
from django.utils.html import format_html, format_html_join

from datasets.models import AnnotationKind
from datasets.selectors import VersionAccess, version_visible
from datasets.states import VersionState
from licensing import selectors, services
from licensing.models import FieldStatus, License, ModeratedVersion, Severity
from licensing.templatetags.moderation import NONE_WORD, figure_html
from marketplace.core.errors import DomainError, NotFound
from marketplace.core.permissions import is_moderator
from marketplace.core.storage import StorageError, get_storage
from quality.selectors import report_plot_key

ALL_STATES = "all"


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


# ---------------------------------------------------------------- the queue's filters


class StateFilter(admin.SimpleListFilter):
    """The version's state; with no choice made, the versions waiting for review."""

    title = "state"
    parameter_name = "state"

    def lookups(self, request, model_admin):
        return [(str(s), VersionState(s).label) for s in selectors.MODERATION_STATES] + [(ALL_STATES, "All states")]

    def chosen(self) -> str:
        return self.value() or VersionState.IN_REVIEW

    def choices(self, changelist):
        for lookup, title in self.lookup_choices:
            yield {
                "selected": self.chosen() == lookup,
                "query_string": changelist.get_query_string({self.parameter_name: lookup}),
                "display": title,
            }

    def queryset(self, request, queryset):
        chosen = self.chosen()
        return queryset if chosen == ALL_STATES else queryset.filter(state=chosen)


class SellerFilter(admin.SimpleListFilter):
    title = "seller"
    parameter_name = "seller"

    def lookups(self, request, model_admin):
        return selectors.moderation_sellers()

    def queryset(self, request, queryset):
        return queryset.filter(dataset__owner__slug=self.value()) if self.value() else queryset


class SeverityFilter(admin.SimpleListFilter):
    title = "failed check severity"
    parameter_name = "failed"

    def lookups(self, request, model_admin):
        return [(Severity.ERROR, "a failed error"), (Severity.WARNING, "a failed warning")]

    def queryset(self, request, queryset):
        return selectors.moderation_versions_failing(versions=queryset, severity=self.value()) if self.value() else queryset


class KindFilter(admin.SimpleListFilter):
    title = "annotation kind"
    parameter_name = "kind"

    def lookups(self, request, model_admin):
        return AnnotationKind.choices

    def queryset(self, request, queryset):
        return queryset.filter(dataset__annotation_kind=self.value()) if self.value() else queryset


class QueueChangeList(ChangeList):
    """The admin's change list, plus what each row shows beyond its columns, read for the
    whole page at once (a fixed number of queries, whatever the page size)."""

    def get_results(self, request):
        super().get_results(request)
        rows = selectors.moderation_queue_rows(versions=self.result_list)
        for version in self.result_list:
            version.queue = rows[version.pk]


# ---------------------------------------------------------------- formatting


def _waiting(since) -> str:
    if since is None:
        return "—"
    seconds = int((timezone.now() - since).total_seconds())
    days, rest = divmod(seconds, 86400)
    hours, rest = divmod(rest, 3600)
    if days:
        return f"{days} d {hours} h"
    return f"{hours} h {rest // 60} min" if hours else f"{rest // 60} min"


# ---------------------------------------------------------------- the admin


def moderator_page(view):
    """Anonymous: the admin's login redirect; signed in but not a moderator: 403."""

    @wraps(view)
    def guarded(request, *args, **kwargs):
        if request.user.is_authenticated and not is_moderator(request.user):
            raise PermissionDenied
        return view(request, *args, **kwargs)

    return guarded


@admin.register(ModeratedVersion)
class ModeratedVersionAdmin(ModeratorOnly, admin.ModelAdmin):
    """The moderators' queue and review page (see the module's docstring)."""

    list_display = ["version", "seller", "kind", "frames", "mask_iou", "tier", "failed_checks", "conflicts", "waiting"]
    list_display_links = ["version"]
    list_filter = [StateFilter, SellerFilter, SeverityFilter, KindFilter]
    search_fields = ["dataset__title", "dataset__slug", "dataset__owner__name", "dataset__owner__slug"]
    search_help_text = "dataset title or slug, seller name or slug"
    ordering = ["submitted_at", "id"]
    actions = None
    show_full_result_count = False
    list_per_page = 50
    review_template = "admin/licensing/moderatedversion/review.html"

    def get_queryset(self, request):
        return super().get_queryset(request).filter(state__in=selectors.MODERATION_STATES).select_related("dataset", "dataset__owner")

    def get_changelist(self, request, **kwargs):
        return QueueChangeList

    def has_add_permission(self, request) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return is_moderator(request.user)

    # -------------------------------------------------------- columns

    @admin.display(description="version", ordering="dataset__title")
    def version(self, obj):
        return format_html("{} <span class=\"mod-muted\">v{}</span>", obj.dataset.title, obj.number)

    @admin.display(description="seller", ordering="dataset__owner__name")
    def seller(self, obj):
        return obj.dataset.owner.name

    @admin.display(description="kind", ordering="dataset__annotation_kind")
    def kind(self, obj):
        return obj.dataset.get_annotation_kind_display()

    @admin.display(description="frames")
    def frames(self, obj):
        return f"{obj.queue['frames']:,}"

    @admin.display(description="mask IoU [95 % CI]")
    def mask_iou(self, obj):
        return figure_html(obj.queue["quality"].get("mask_iou"))

    @admin.display(description="tier")
    def tier(self, obj):
        return obj.queue["quality"].get("tier") or "—"

    @admin.display(description="failed checks")
    def failed_checks(self, obj):
        failed = obj.queue["failed_checks"]
        if not failed:
            return NONE_WORD
        return format_html_join(" ", '<span class="mod-count mod-sev-{}">{} {}{}</span>', ((sev, n, sev, "" if n == 1 else "s") for sev, n in failed.items()))

    @admin.display(description="terms conflicts")
    def conflicts(self, obj):
        codes = [c["code"].replace("_", " ") for c in obj.queue["conflicts"]]
        return format_html_join(", ", '<span class="mod-sev-error">{}</span>', ((c,) for c in codes)) if codes else NONE_WORD

    @admin.display(description="waiting", ordering="submitted_at")
    def waiting(self, obj):
        return _waiting(obj.submitted_at)

    def changelist_view(self, request, extra_context=None):
        extra_context = {**(extra_context or {}), "title": "Moderation queue", "is_nav_sidebar_enabled": False}
        return super().changelist_view(request, extra_context)

    # -------------------------------------------------------- routes

    def get_urls(self):
        def page(view):
            return moderator_page(self.admin_site.admin_view(view))

        name = f"{self.opts.app_label}_{self.opts.model_name}"
        return [
            path("", page(self.changelist_view), name=f"{name}_changelist"),
            path("<int:version_id>/change/", page(self.review_view), name=f"{name}_change"),
            path("<int:version_id>/fields/", page(self.field_review_view), name=f"{name}_field_review"),
            path("<int:version_id>/decision/", page(self.decision_view), name=f"{name}_decision"),
            path("<int:version_id>/plots/<int:report_id>/<str:plot>.png", page(self.plot_view), name=f"{name}_plot"),
            path("<int:version_id>/files/<int:file_id>/", page(self.file_view), name=f"{name}_file"),
        ]

    def _version(self, request, version_id: int):
        try:
            return version_visible(user=request.user, version_id=version_id, access=VersionAccess.MODERATE)
        except NotFound:
            raise Http404 from None

    def _review_url(self, version_id: int, anchor: str = "") -> str:
        url = reverse(f"admin:{self.opts.app_label}_{self.opts.model_name}_change", args=[version_id])
        return f"{url}#{anchor}" if anchor else url

    # -------------------------------------------------------- the review page

    def review_view(self, request, version_id: int):
        return self._render_review(request, self._version(request, version_id))

    def _render_review(self, request, version, *, errors: dict[str, DomainError] | None = None, posted: dict | None = None, status: int = 200):
        review = selectors.moderation_review(version=version)
        # A moderator of the seller's own organization reads the page but decides nothing:
        # the banner says why, and no decision or provenance form is shown.
        try:
            services.moderation_independence_check(version=version, actor=request.user)
            own_organization = None
        except DomainError as exc:
            own_organization = exc
        gate = None
        if version.state == VersionState.IN_REVIEW:
            try:
                services.version_publish_check(version=version)
            except DomainError as exc:
                gate = exc
        context = {
            **self.admin_site.each_context(request),
            "is_nav_sidebar_enabled": False,  # the page needs the width
            "opts": self.opts,
            "title": f"Review: {version.dataset.title} v{version.number}",
            "review": review,
            "version": version,
            "gate": gate,
            "own_organization": own_organization,
            "errors": errors or {},
            "posted": posted or {},
            "decisions": [(d, d.replace("_", " ")) for d in services.Decision.ALL],
            "field_statuses": FieldStatus,
            "waiting": _waiting(version.submitted_at),
        }
        return TemplateResponse(request, self.review_template, context, status=status)

    # -------------------------------------------------------- actions (the API's services)

    def field_review_view(self, request, version_id: int):
        """Verify or dispute one provenance field with a note: ``provenance_fields_review``."""
        if request.method != "POST":
            return HttpResponseNotAllowed(["POST"])
        version = self._version(request, version_id)
        name, status, note = request.POST.get("name", ""), request.POST.get("status", ""), request.POST.get("note", "")
        try:
            services.provenance_fields_review(version=version, actor=request.user, reviews=[{"name": name, "status": status, "note": note}])
        except DomainError as exc:
            return self._render_review(request, version, errors={f"field:{name}": exc}, posted={"field": name, "note": note}, status=exc.status_code)
        messages.success(request, f"{name}: {status}" + (f" ({note})" if note else ""))
        return redirect(self._review_url(version.pk, f"field-{name}"))

    def decision_view(self, request, version_id: int):
        """Approve, reject or request changes (``moderation_decide``); suspend or reinstate a
        published version (``version_suspend`` / ``version_reinstate``)."""
        if request.method != "POST":
            return HttpResponseNotAllowed(["POST"])
        version = self._version(request, version_id)
        decision, reason = request.POST.get("decision", ""), request.POST.get("reason", "")
        try:
            if decision == "suspend":
                services.version_suspend(version=version, actor=request.user, reason=reason)
            elif decision == "reinstate":
                services.version_reinstate(version=version, actor=request.user, reason=reason)
            else:
                services.moderation_decide(version=version, actor=request.user, decision=decision, reason=reason)
        except DomainError as exc:
            return self._render_review(request, version, errors={"decision": exc}, posted={"decision": decision, "reason": reason}, status=exc.status_code)
        messages.success(request, f"{version.dataset.title} v{version.number}: {decision.replace('_', ' ')} recorded.")
        return redirect(self._review_url(version.pk, "decision"))

    # -------------------------------------------------------- files, through the moderator's session

    def plot_view(self, request, version_id: int, report_id: int, plot: str):
        """A plot or overlay of one of the version's quality reports (PNG)."""
        version = self._version(request, version_id)
        try:
            key = report_plot_key(version=version, report_id=report_id, name=plot)
            handle = get_storage().open(key)
        except (NotFound, StorageError):
            raise Http404 from None
        return FileResponse(handle, content_type="image/png")

    def file_view(self, request, version_id: int, file_id: int):
        """A file of the version (a provenance document, a file a check's evidence names), as a download."""
        version = self._version(request, version_id)
        dfile = selectors.moderation_file(version=version, file_id=file_id)
        if dfile is None:
            raise Http404
        try:
            handle = get_storage().open(dfile.storage_key)
        except StorageError:
            raise Http404 from None
        return FileResponse(handle, as_attachment=True, filename=dfile.path.rsplit("/", 1)[-1], content_type=dfile.content_type)
