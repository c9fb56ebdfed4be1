"""Reads of quality reports and buyer evaluations, with the object-level rules applied here."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from django.db.models import QuerySet

from datasets.models import AnnotationKind, DatasetFile, DatasetVersion, FileRole
from datasets.selectors import VersionAccess, version_files, version_image_files, version_video_file, version_visible
from marketplace.accounts.selectors import buyer_organizations
from marketplace.core.errors import NotFound
from quality.engine import ENGINE_VERSION
from quality.errors import QualityErrorCode
from quality.figures import SUMMARY_FIGURES, VERIFIED, figure
from quality.models import BuyerEvaluation, EvaluationSplit, QualityReport, ReportKind, ReportStatus


def applicable_report_kinds(*, version: DatasetVersion) -> list[str]:
    """The report kinds that make sense for this version, in computing order.

    intrinsic and audit apply to every instance dataset (images or video); agreement needs a
    ``second_pass`` file; temporal applies to video (annotation kind, a ``video`` file, or tracks
    found at ingest: YouTube-VIS or COCO with tracks); panoptic to
    the panoptic annotation kind or a ``panoptic`` file.
    """
    kind = version.dataset.annotation_kind
    roles = set(version_files(version=version).values_list("role", flat=True).distinct())
    kinds: list[str] = []
    if kind != AnnotationKind.PANOPTIC or FileRole.ANNOTATIONS in roles:
        kinds += [ReportKind.INTRINSIC.value, ReportKind.AUDIT.value]
    if FileRole.SECOND_PASS in roles:
        kinds.append(ReportKind.AGREEMENT.value)
    if kind == AnnotationKind.VIDEO or FileRole.VIDEO in roles or version_video_file(version=version) is not None:
        kinds.append(ReportKind.TEMPORAL.value)
    if kind == AnnotationKind.PANOPTIC or FileRole.PANOPTIC in roles:
        kinds.append(ReportKind.PANOPTIC.value)
    return kinds


def latest_reports(*, version: DatasetVersion) -> dict[str, QualityReport]:
    """The newest report of each kind for the version (a newer engine or new inputs supersede)."""
    latest: dict[str, QualityReport] = {}
    for report in QualityReport.objects.filter(version=version).order_by("kind", "-created_at", "-pk"):
        latest.setdefault(report.kind, report)
    return latest


def latest_reports_of(*, version_ids: Iterable[int]) -> dict[int, dict[str, QualityReport]]:
    """:func:`latest_reports` of many versions in one query (every id is a key, possibly
    mapping to no report)."""
    ids = list(version_ids)
    latest: dict[int, dict[str, QualityReport]] = {vid: {} for vid in ids}
    for report in QualityReport.objects.filter(version_id__in=ids).order_by("version_id", "kind", "-created_at", "-pk"):
        latest[report.version_id].setdefault(report.kind, report)
    return latest


def version_quality_summaries(*, versions: Iterable[DatasetVersion]) -> dict[int, dict[str, Any]]:
    """:func:`version_quality_summary` of each version, keyed by id, in one query."""
    versions = list(versions)
    reports = latest_reports_of(version_ids=[v.pk for v in versions])
    return {v.pk: version_quality_summary(version=v, reports=reports[v.pk]) for v in versions}


def version_quality_summary(*, version: DatasetVersion, reports: dict[str, QualityReport] | None = None) -> dict[str, Any]:
    """The version's headline figures (contract shape): each ``{"value", "ci", "n", "status"}``,
    plus ``tier`` (from a *verified* mask_iou only, else None), ``inconsistent_labeling``
    (the agreement report's flag: mean IoU of the two passes below its threshold; None
    without an agreement report) and ``engine_version``. Keys of figures that were not
    computed are absent. ``reports``: the version's :func:`latest_reports` when the caller
    already has them."""
    reports = latest_reports(version=version) if reports is None else reports
    summary: dict[str, Any] = {}
    engine_versions: list[str] = []
    for kind, keys in SUMMARY_FIGURES.items():
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
    agreement = reports.get(ReportKind.AGREEMENT)
    flagged = agreement.summary.get("inconsistent_labeling") if agreement and agreement.status == ReportStatus.OK else None
    summary["inconsistent_labeling"] = bool(flagged) if flagged is not None else None
    if engine_versions or reports:
        summary["engine_version"] = (engine_versions or [r.engine_version for r in reports.values()])[0]
    else:
        summary["engine_version"] = ENGINE_VERSION
    return summary


def version_report_evidence(*, version: DatasetVersion) -> list[dict[str, Any]]:
    """The version's computed reports as a buyer reaches them: per kind with an ``ok``
    report, ``{"kind", "id", "plots": [plot names]}`` (kinds in order, names sorted)."""
    reports = latest_reports(version=version)
    return [
        {"kind": kind, "id": report.pk, "plots": sorted((report.artifacts or {}).get("plots") or {})}
        for kind, report in sorted(reports.items())
        if report.status == ReportStatus.OK
    ]


def version_per_class(*, version: DatasetVersion, categories: Iterable[dict[str, Any]]) -> list[dict[str, Any]]:
    """Per class of ``categories`` (``{"id", "name", "count"}``, the version's statistics):
    ``{"category_id", "name", "instances", "ap"}``, where ``ap`` is the class's AP figure
    from the audit (video AP for a video version) when it is verified against the
    reference (None otherwise, and for a class the reference sample does not hold)."""
    audit = QualityReport.objects.filter(version=version, kind=ReportKind.AUDIT).order_by("-created_at", "-pk").first()
    verified = audit is not None and audit.status == ReportStatus.OK and audit.summary.get("verified") is True
    per_class_ap = (audit.summary.get("per_class_ap") or {}) if verified else {}
    n = (audit.summary.get("n_images") or audit.summary.get("n_videos")) if verified else None
    out = []
    for cat in categories:
        ap = per_class_ap.get(str(cat.get("id")))
        out.append(
            {
                "category_id": cat.get("id"),
                "name": cat.get("name"),
                "instances": int(cat.get("count") or 0),
                "ap": figure(ap, status=VERIFIED, n=n) if ap is not None else None,
            }
        )
    return out


def version_quality_findings(*, version: DatasetVersion) -> dict[str, dict[str, Any] | None]:
    """What the quality reports found that the checks and the moderator act on, each None
    when the report that would find it has not been computed:

    * ``inconsistent_labeling``: ``{"flagged", "agreement" (figure), "threshold"}`` from the
      agreement report (the seller's two passes agree less than the threshold).
    * ``merged_instances``: ``{"flagged", "count" (figure), "examples", "report_id"}`` from
      the panoptic report (thing segments covering several disconnected blobs).
    """
    reports = {kind: r for kind, r in latest_reports(version=version).items() if r.status == ReportStatus.OK}
    findings: dict[str, dict[str, Any] | None] = {"inconsistent_labeling": None, "merged_instances": None}
    panoptic = reports.get(ReportKind.PANOPTIC)
    if panoptic is not None and panoptic.summary.get("merged_instances") is not None:
        count = panoptic.summary["merged_instances"]
        findings["merged_instances"] = {
            "flagged": bool(count.get("value")),
            "count": count,
            "examples": panoptic.summary.get("merged_instances_examples") or [],
            "report_id": panoptic.pk,
        }
    agreement = reports.get(ReportKind.AGREEMENT)
    if agreement is not None and agreement.summary.get("inconsistent_labeling") is not None:
        findings["inconsistent_labeling"] = {
            "flagged": bool(agreement.summary["inconsistent_labeling"]),
            "agreement": agreement.summary.get("agreement"),
            "threshold": agreement.summary.get("threshold"),
        }
    return findings


def report_plot_key(*, version: DatasetVersion, report_id: int, name: str) -> str:
    """The storage key of the plot ``name`` of the version's report ``report_id``; NotFound
    when the version has no such report or the report no such plot."""
    report = QualityReport.objects.filter(version=version, pk=report_id).only("artifacts").first()
    key = ((report.artifacts or {}).get("plots") or {}).get(name) if report is not None else None
    if not key:
        raise NotFound("No such plot.", code=QualityErrorCode.REPORT_NOT_FOUND)
    return key


# ---------------------------------------------------------------- reads for a user


def report_plot_for(*, user, version_id: int, kind: str, name: str) -> str:
    """The storage key of the plot ``name`` of the version's newest report of ``kind``, for
    a user who may see the version's evidence; NotFound otherwise."""
    report = report_get(user=user, version_id=version_id, kind=kind)
    key = ((report.artifacts or {}).get("plots") or {}).get(name)
    if not key:
        raise NotFound("No such plot.", code=QualityErrorCode.REPORT_NOT_FOUND)
    return key


def split_image_files(*, split: EvaluationSplit, images: list[dict[str, Any]]) -> dict[str, DatasetFile]:
    """The image (or frame) files of a page of the split's ``images``, by file name (one query)."""
    return version_image_files(version=split.version, file_names=[img["file_name"] for img in images])


def report_list(*, user, version_id: int) -> QuerySet[QualityReport]:
    """The version's reports, newest first per kind; the heavy JSON columns are deferred."""
    version = version_visible(user=user, version_id=version_id, access=VersionAccess.EVIDENCE)
    return QualityReport.objects.filter(version=version).defer("artifacts").order_by("kind", "-created_at", "-pk")


def report_get(*, user, version_id: int, kind: str) -> QualityReport:
    """The newest report of ``kind`` for the version, or NotFound."""
    version = version_visible(user=user, version_id=version_id, access=VersionAccess.EVIDENCE)
    if kind not in ReportKind.values:
        raise NotFound("No such report kind.", code=QualityErrorCode.REPORT_NOT_FOUND)
    report = QualityReport.objects.filter(version=version, kind=kind).order_by("-created_at", "-pk").first()
    if report is None:
        raise NotFound("No report of this kind yet.", code=QualityErrorCode.REPORT_NOT_FOUND)
    return report


def evaluation_get(*, user, evaluation_id: int) -> BuyerEvaluation:
    """A buyer evaluation, visible only to members of the buyer organization that posted it."""
    evaluation = BuyerEvaluation.objects.filter(pk=evaluation_id, organization__in=buyer_organizations(user=user)).first()
    if evaluation is None:
        raise NotFound("Evaluation not found.", code=QualityErrorCode.EVALUATION_NOT_FOUND)
    return evaluation
