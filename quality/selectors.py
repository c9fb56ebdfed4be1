"""Reads of quality reports and buyer evaluations, with the object-level rules applied here."""

from __future__ import annotations

from typing import Any

from django.db.models import QuerySet

from datasets.models import DatasetVersion, Modality
from datasets.states import VersionState
from marketplace.core.errors import NotFound
from marketplace.core.permissions import is_staff_member
from quality.models import BuyerEvaluation, QualityReport, ReportKind, ReportStatus

VERIFIED = "verified"
SELF_DECLARED = "self-declared"


def _version_roles(*, version: DatasetVersion) -> set[str] | None:
    """The file roles present in the version, or None when the datasets app cannot say yet."""
    try:
        from datasets.selectors import version_files
    except ImportError:  # the ingest side is not there yet: fall back on the modality
        return None
    try:
        return set(version_files(version=version).values_list("role", flat=True).distinct())
    except Exception:  # noqa: BLE001 - an older datasets schema must not break the listing of reports
        return None


def applicable_report_kinds(*, version: DatasetVersion) -> list[str]:
    """The report kinds that make sense for this version, in computing order.

    intrinsic and audit apply to every instance dataset (images or video); agreement needs a
    ``second_pass`` file; temporal applies to video (modality or a ``video`` file); panoptic to
    the panoptic modality or a ``panoptic`` file.
    """
    modality = version.dataset.modality
    roles = _version_roles(version=version)
    kinds: list[str] = []
    instance_data = modality != Modality.PANOPTIC or (roles is not None and "annotations" in roles)
    if instance_data:
        kinds += [ReportKind.INTRINSIC.value, ReportKind.AUDIT.value]
    if roles is not None and "second_pass" in roles:
        kinds.append(ReportKind.AGREEMENT.value)
    if modality == Modality.VIDEO or (roles is not None and "video" in roles):
        kinds.append(ReportKind.TEMPORAL.value)
    if modality == Modality.PANOPTIC or (roles is not None and "panoptic" in roles):
        kinds.append(ReportKind.PANOPTIC.value)
    return kinds


def latest_reports(*, version: DatasetVersion) -> dict[str, QualityReport]:
    """The newest report of each kind for the version (a newer engine or new inputs supersede)."""
    latest: dict[str, QualityReport] = {}
    for report in QualityReport.objects.filter(version=version).order_by("kind", "-created_at", "-pk"):
        latest.setdefault(report.kind, report)
    return latest


# Summary keys each kind contributes to the version's quality summary.
_SUMMARY_KEYS: dict[str, tuple[str, ...]] = {
    ReportKind.AUDIT: ("mask_iou", "ap", "ap50", "ap75", "boundary_iou", "instance_recall", "instance_precision"),
    ReportKind.AGREEMENT: ("agreement",),
    ReportKind.TEMPORAL: ("temporal_iou",),
    ReportKind.PANOPTIC: ("pq", "sq", "rq"),
}


def version_quality_summary(*, version: DatasetVersion) -> dict[str, Any]:
    """The version's headline figures (contract shape): each ``{"value", "ci", "n", "status"}``,
    plus ``tier`` (from a *verified* mask_iou only, else None) and ``engine_version``.
    Keys of figures that were not computed are absent."""
    reports = latest_reports(version=version)
    summary: dict[str, Any] = {}
    engine_versions: list[str] = []
    for kind, keys in _SUMMARY_KEYS.items():
        report = reports.get(kind)
        if report is None or report.status != ReportStatus.OK:
            continue
        engine_versions.append(report.engine_version)
        for key in keys:
            figure = report.summary.get(key)
            if isinstance(figure, dict) and figure.get("value") is not None:
                summary[key] = figure
    mask_iou = summary.get("mask_iou")
    audit = reports.get(ReportKind.AUDIT)
    summary["tier"] = audit.summary.get("tier") if audit and mask_iou and mask_iou.get("status") == VERIFIED else None
    if engine_versions or reports:
        summary["engine_version"] = (engine_versions or [r.engine_version for r in reports.values()])[0]
    else:
        from quality.engine import ENGINE_VERSION

        summary["engine_version"] = ENGINE_VERSION
    return summary


# ---------------------------------------------------------------- object-level access


def _member_org_ids(user, role: str) -> set[int]:
    from marketplace.accounts.models import Membership

    if not user or not user.is_authenticated:
        return set()
    return set(Membership.objects.filter(user=user, role=role).values_list("organization_id", flat=True))


def version_quality_visible(*, user, version_id: int) -> DatasetVersion:
    """The version whose reports ``user`` may read, or NotFound.

    The seller organization's members and platform staff always; anyone else (buyers,
    anonymous) only while the version is published. Hidden and missing look the same (404).
    """
    version = DatasetVersion.objects.select_related("dataset").filter(pk=version_id).first()
    if version is None:
        raise NotFound("Version not found.", code="version_not_found")
    if version.state == VersionState.PUBLISHED or is_staff_member(user):
        return version
    if version.dataset.owner_id in _member_org_ids(user, "seller"):
        return version
    raise NotFound("Version not found.", code="version_not_found")


def report_list(*, user, version_id: int) -> QuerySet[QualityReport]:
    """The version's reports, newest first per kind; the heavy JSON columns are deferred."""
    version = version_quality_visible(user=user, version_id=version_id)
    return QualityReport.objects.filter(version=version).defer("artifacts").order_by("kind", "-created_at", "-pk")


def report_get(*, user, version_id: int, kind: str) -> QualityReport:
    """The newest report of ``kind`` for the version, or NotFound."""
    version = version_quality_visible(user=user, version_id=version_id)
    if kind not in ReportKind.values:
        raise NotFound("No such report kind.", code="report_not_found")
    report = QualityReport.objects.filter(version=version, kind=kind).order_by("-created_at", "-pk").first()
    if report is None:
        raise NotFound("No report of this kind yet.", code="report_not_found")
    return report


def evaluation_get(*, user, evaluation_id: int) -> BuyerEvaluation:
    """A buyer evaluation, visible only to members of the buyer organization that posted it."""
    orgs = _member_org_ids(user, "buyer")
    evaluation = BuyerEvaluation.objects.filter(pk=evaluation_id, organization_id__in=orgs).first()
    if evaluation is None:
        raise NotFound("Evaluation not found.", code="evaluation_not_found")
    return evaluation
