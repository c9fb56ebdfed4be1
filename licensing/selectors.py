"""Reads for licensing, provenance, checks, moderation and the audit log."""

from __future__ import annotations

from typing import Any

from django.db.models import QuerySet

from datasets.models import DatasetVersion
from datasets.states import VersionState
from licensing.catalogue import OBLIGATIONS, PERMISSIONS, TERMS, Resolver, catalogue_load
from licensing.models import CheckResult, ConsentRecord, FieldStatus, License, ProvenanceField
from licensing.provenance import FIELDS, is_filled
from quality.figures import DECLARED_FIGURES, with_declared
from quality.selectors import version_quality_summary

# ---------------------------------------------------------------- catalogue


def catalogue_ensure() -> None:
    """The catalogue is reference data shipped with the code and loaded by a migration; a
    database flushed since (tests on transactional databases) gets it back here."""
    if not License.objects.exists():
        catalogue_load(License)


def license_list() -> QuerySet[License]:
    catalogue_ensure()
    return License.objects.all()


def license_resolver() -> Resolver:
    catalogue_ensure()
    return Resolver(list(License.objects.values("spdx_id", "name", "url", "aliases")))


def license_terms(*, spdx_id: str) -> dict | None:
    lic = License.objects.filter(spdx_id=spdx_id).values("spdx_id", *TERMS).first()
    return lic


# ---------------------------------------------------------------- effective terms


def version_effective_terms(*, version: DatasetVersion) -> dict[str, Any]:
    """The terms a buyer actually gets: the annotation license combined with every image's
    license (from the ingest statistics). A permission holds only if every input grants
    it; share-alike and attribution propagate from any input. Unknown licenses and
    unlicensed images grant nothing."""
    resolver = license_resolver()
    catalogue = {lic["spdx_id"]: lic for lic in License.objects.values("spdx_id", *TERMS)}
    stats = version.statistics or {}
    total_images = int(stats.get("images") or 0)
    unknown: list[dict] = []
    conflicts: list[dict] = []

    annotation_spdx = resolver.resolve(identifier=version.dataset.annotation_license).spdx_id
    if annotation_spdx is None:
        unknown.append({"input": "annotation_license", "name": version.dataset.annotation_license, "url": None, "images": 0})

    counts: dict[str, int] = {}
    image_inputs: list[str] = []
    for entry in stats.get("licenses") or []:
        images = int(entry.get("images") or 0)
        if images <= 0:
            continue  # declared in licenses[] but used by no image: not an input
        spdx = resolver.resolve(identifier=str(entry.get("name") or ""), name=entry.get("name"), url=entry.get("url")).spdx_id
        if spdx is None:
            unknown.append({"input": "image_license", "id": entry.get("id"), "name": entry.get("name"), "url": entry.get("url"), "images": images})
            continue
        counts[spdx] = counts.get(spdx, 0) + images
        image_inputs.append(spdx)
    without = int(stats.get("images_without_license") or 0)
    if without:
        unknown.append({"input": "image_license", "id": None, "name": None, "url": None, "images": without})

    inputs = ([annotation_spdx] if annotation_spdx else []) + image_inputs
    terms = {}
    for perm in PERMISSIONS:
        terms[perm] = bool(inputs) and not unknown and all(catalogue[s][perm] for s in inputs)
    for obl in OBLIGATIONS:
        # An unknown input may carry any obligation: assume it does.
        terms[obl] = any(catalogue[s][obl] for s in inputs) or bool(unknown)

    # Masks are derivative works of their images: annotating a no-derivatives image breaches it.
    nd = sorted(s for s in image_inputs if not catalogue[s]["derivatives"])
    if nd:
        conflicts.append({"code": "derivatives_not_allowed", "message": "Instance masks are derivative works; these image licenses forbid derivatives.", "licenses": nd})
    share_alike = sorted({s for s in inputs if catalogue[s]["share_alike"]})
    families = {s.rsplit("-", 1)[0] for s in share_alike}
    if len(families) > 1:
        conflicts.append({"code": "incompatible_share_alike", "message": "Inputs carry different share-alike licenses; no single license satisfies all of them.", "licenses": share_alike})
    if annotation_spdx:
        declared = catalogue[annotation_spdx]
        looser = [p for p in PERMISSIONS if declared[p] and not terms[p]] + [o for o in OBLIGATIONS if terms[o] and not declared[o]]
        if looser:
            conflicts.append({"code": "declared_terms_too_permissive", "message": "The annotation license grants more than the inputs allow.", "terms": looser, "licenses": [annotation_spdx]})

    annotation_commercial = bool(annotation_spdx) and catalogue[annotation_spdx]["commercial_use"]
    commercial_images = sum(n for s, n in counts.items() if catalogue[s]["commercial_use"]) if annotation_commercial else 0
    return {
        **terms,
        "annotation_license": annotation_spdx,
        "licenses": [{"spdx": s, "images": n} for s, n in sorted(counts.items())],
        "images": total_images,
        "images_without_license": without,
        "commercial_images": commercial_images,
        "unknown": unknown,
        "conflicts": conflicts,
    }


# ---------------------------------------------------------------- provenance


def provenance_fields(*, version: DatasetVersion) -> dict[str, ProvenanceField]:
    return {f.name: f for f in ProvenanceField.objects.filter(record__version=version)}


def version_provenance(*, version: DatasetVersion) -> dict[str, Any]:
    stored = provenance_fields(version=version)
    fields = {}
    for spec in FIELDS:
        row = stored.get(spec.name)
        fields[spec.name] = {
            "value": row.value if row else None,
            "status": row.status if row else FieldStatus.SELF_DECLARED,
            "note": row.note if row else "",
            "label": spec.label,
            "required": spec.required,
        }
    consents = [
        {"session_id": c.session_id, "consent_id": c.consent_id, "legal_basis": c.legal_basis, "document_file_id": c.document_file_id}
        for c in ConsentRecord.objects.filter(version=version)
    ]
    return {"version": version.pk, "state": version.state, "fields": fields, "consent_records": consents, **provenance_completeness(version=version)}


def provenance_completeness(*, version: DatasetVersion) -> dict[str, float]:
    """Share of provenance fields filled in, and share of those a moderator verified."""
    stored = provenance_fields(version=version)
    filled = [f for f in stored.values() if is_filled(f.value)]
    verified = [f for f in filled if f.status == FieldStatus.VERIFIED]
    return {
        "completeness": round(len(filled) / len(FIELDS), 4),
        "verified_share": round(len(verified) / len(filled), 4) if filled else 0.0,
    }


# ---------------------------------------------------------------- checks and quality


def version_quality_figures(*, version: DatasetVersion) -> dict[str, Any]:
    """The version's quality summary as buyers and moderators see it: the platform's figures
    (``verified`` or ``measured``), and the seller's declared figures (``self-declared``)
    where the platform has none of that name."""
    declared = dict(ProvenanceField.objects.filter(record__version=version, name__in=list(DECLARED_FIGURES)).values_list("name", "value"))
    return with_declared(version_quality_summary(version=version), declared)


def version_checks(*, version: DatasetVersion) -> QuerySet[CheckResult]:
    return CheckResult.objects.filter(version=version)


# ---------------------------------------------------------------- moderation


def moderation_queue() -> QuerySet[DatasetVersion]:
    return DatasetVersion.objects.filter(state=VersionState.IN_REVIEW).select_related("dataset", "dataset__owner").order_by("submitted_at", "id")


def moderation_detail(*, version: DatasetVersion) -> dict[str, Any]:
    provenance = version_provenance(version=version)
    declared = {name: provenance["fields"][name]["value"] for name in DECLARED_FIGURES}
    quality = with_declared(version_quality_summary(version=version), declared)
    return {
        "id": version.pk,
        "dataset": version.dataset.slug,
        "organization": version.dataset.owner.slug,
        "number": version.number,
        "state": version.state,
        "submitted_at": version.submitted_at,
        "statistics": version.statistics,
        "checks": [
            {"code": c.code, "status": c.status, "severity": c.severity, "message": c.message, "evidence": c.evidence}
            for c in version_checks(version=version)
        ],
        "effective_terms": version_effective_terms(version=version),
        "quality_summary": quality,
        # The seller's two annotation passes disagree (agreement below its threshold).
        "inconsistent_labeling": quality.get("inconsistent_labeling"),
        "provenance": provenance,
    }
