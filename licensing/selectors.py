"""Reads for licensing, provenance, checks, moderation and the audit log."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from django.db.models import Count, Exists, OuterRef, QuerySet

from datasets.models import DatasetVersion, FileRole
from datasets.selectors import dataset_other_versions, organization_other_datasets, version_files
from datasets.states import VersionState
from licensing.catalogue import OBLIGATIONS, PERMISSIONS, TERMS, Resolver, catalogue_load
from licensing.checks import Audience, evidence_shown
from licensing.models import CheckResult, CheckStatus, ConsentRecord, ConsentRevocation, FieldStatus, License, ProvenanceField, Severity
from licensing.provenance import FIELDS, is_filled
from marketplace.accounts.selectors import organizations_for
from marketplace.audit.selectors import object_audit_events, objects_audit_events
from marketplace.core.permissions import is_staff_member
from quality.figures import DECLARED_FIGURES, SUMMARY_FIGURES, with_declared
from quality.models import ReportStatus
from quality.selectors import latest_reports, version_quality_summaries, version_quality_summary

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


@dataclass(frozen=True)
class LicenseCatalogue:
    """The catalogue read once: its resolver, and each license's name and terms by SPDX id."""

    resolver: Resolver
    terms: dict[str, dict[str, Any]]


def license_catalogue() -> LicenseCatalogue:
    resolver = license_resolver()
    return LicenseCatalogue(resolver=resolver, terms={lic["spdx_id"]: lic for lic in License.objects.values("spdx_id", "name", *TERMS)})


# ---------------------------------------------------------------- effective terms


def version_effective_terms(*, version: DatasetVersion, licenses: LicenseCatalogue | None = None) -> dict[str, Any]:
    """The terms a buyer actually gets: the annotation license combined with every image's
    license (from the ingest statistics). A permission holds only if every input grants
    it; share-alike and attribution propagate from any input. Unknown licenses and
    unlicensed images grant nothing. ``licenses``: the catalogue, when the caller read it
    already (for many versions)."""
    return effective_terms(annotation_license=version.dataset.annotation_license, statistics=version.statistics or {}, licenses=licenses)


def licenses_granting(*, term: str) -> set[str]:
    """The catalogue's license ids that grant ``term`` (``commercial_use``, ``derivatives``...)."""
    catalogue_ensure()
    return set(License.objects.filter(**{term: True}).values_list("spdx_id", flat=True))


def effective_terms(*, annotation_license: str, statistics: dict[str, Any], licenses: LicenseCatalogue | None = None) -> dict[str, Any]:
    """The effective terms of an annotation license over images counted as ingest counts
    them (``images``, ``licenses[]`` with ``images`` each, ``images_without_license``): a
    whole version's, or a subset's (marketplace.listings.subsets)."""
    licenses = licenses or license_catalogue()
    resolver, catalogue = licenses.resolver, licenses.terms
    stats = statistics
    total_images = int(stats.get("images") or 0)
    unknown: list[dict] = []
    conflicts: list[dict] = []

    annotation_spdx = resolver.resolve(identifier=annotation_license).spdx_id
    if annotation_spdx is None:
        unknown.append({"input": "annotation_license", "name": annotation_license, "url": None, "images": 0})

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
    annotation_commercial = bool(annotation_spdx) and catalogue[annotation_spdx]["commercial_use"]
    commercial_images = sum(n for s, n in counts.items() if catalogue[s]["commercial_use"]) if annotation_commercial else 0
    if annotation_spdx:
        declared = catalogue[annotation_spdx]
        looser = [p for p in PERMISSIONS if declared[p] and not terms[p]] + [o for o in OBLIGATIONS if terms[o] and not declared[o]]
        # A split-licensed version: annotations declared for commercial use over images of
        # which only some allow it. The whole grants no commercial use (terms above); the
        # commercially usable subset does, and is sold on its own with its own terms. Only
        # a commercial declaration that no image supports misleads.
        if "commercial_use" in looser and commercial_images > 0:
            looser.remove("commercial_use")
        if looser:
            conflicts.append({"code": "declared_terms_too_permissive", "message": "The annotation license grants more than the inputs allow.", "terms": looser, "licenses": [annotation_spdx]})
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
    consents = [consent_record_output(c) for c in ConsentRecord.objects.filter(version=version)]
    return {
        "version": version.pk, "state": version.state, "fields": fields, "consent_records": consents,
        "consent_summary": consent_summary(version=version), **provenance_completeness(version=version),
    }


def consent_record_output(record: ConsentRecord) -> dict[str, Any]:
    return {
        "session_id": record.session_id,
        "consent_id": record.consent_id,
        "legal_basis": record.legal_basis,
        "scope": record.scope,
        "given_on": record.given_on.isoformat() if record.given_on else None,
        "sessions": record.sessions,
        "episodes": record.episodes,
        "videos": record.videos,
        "files": record.files,
        "document_file_id": record.document_file_id,
        "revoked_at": record.revoked_at.isoformat() if record.revoked_at else None,
    }


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


def version_checks_summary(*, version: DatasetVersion) -> dict[str, Any]:
    """How the version's checks came out: counts by result, and the failed ones by severity
    with their codes (what a buyer weighs before opening the checks themselves)."""
    rows = list(CheckResult.objects.filter(version=version).values_list("code", "status", "severity"))
    failed = sorted((severity, code) for code, status, severity in rows if status == CheckStatus.FAILED)
    return {
        "total": len(rows),
        "passed": sum(1 for _c, status, _s in rows if status == CheckStatus.PASSED),
        "failed": len(failed),
        "not_applicable": sum(1 for _c, status, _s in rows if status == CheckStatus.NOT_APPLICABLE),
        "failed_by_severity": {sev: [code for s, code in failed if s == sev] for sev in Severity.values if any(s == sev for s, _ in failed)},
    }


# Provenance fields whose values may name people or their sessions: the public summary
# shows how many values there are, never the values.
PRIVATE_PROVENANCE_FIELDS = frozenset({"sessions"})


def version_provenance_public(*, version: DatasetVersion) -> dict[str, Any]:
    """The public part of the version's provenance record: each field's value and status
    (verified / disputed / self-declared), the consent records' summary (:func:`consent_summary`).
    No consent or session ids, no moderator notes, no documents: nothing that names a person."""
    stored = provenance_fields(version=version)
    fields = {}
    for spec in FIELDS:
        row = stored.get(spec.name)
        value = row.value if row else None
        entry: dict[str, Any] = {"label": spec.label, "status": row.status if row else FieldStatus.SELF_DECLARED, "required": spec.required}
        if spec.name in PRIVATE_PROVENANCE_FIELDS:
            entry["count"] = len(value) if isinstance(value, list) else (0 if value in (None, "") else 1)
        else:
            entry["value"] = value
        fields[spec.name] = entry
    return {
        "version_id": version.pk,
        "fields": fields,
        "consent_records": consent_summary(version=version),
        **provenance_completeness(version=version),
    }


def evidence_audience(*, user, version: DatasetVersion) -> Audience:
    """Who ``user`` is to ``version``'s evidence: staff, a member of its seller organization,
    or anyone else (a buyer); see licensing.checks.Audience."""
    if is_staff_member(user):
        return Audience.STAFF
    if moderator_own_organization(user=user, version=version):
        return Audience.SELLER
    return Audience.PUBLIC


def version_checks_shown(*, user, version: DatasetVersion) -> list[dict[str, Any]]:
    """The version's check results with each evidence as ``user`` may read it: a buyer
    never reads another organization's names or files, a file path or a consent id."""
    audience = evidence_audience(user=user, version=version)
    return [
        {
            "code": c.code, "status": c.status, "severity": c.severity, "message": c.message,
            "evidence": evidence_shown(c.code, c.evidence, audience), "created_at": c.created_at,
        }
        for c in version_checks(version=version)
    ]


def consent_summary(*, version: DatasetVersion) -> dict[str, Any]:
    """What anyone may know of a version's consent records: how many, for how many
    sessions, under which legal bases, how many with a document. No id."""
    records = list(ConsentRecord.objects.filter(version=version))
    bases: dict[str, int] = {}
    for record in records:
        bases[record.legal_basis] = bases.get(record.legal_basis, 0) + 1
    return {
        "records": len(records),
        "sessions": len({session for record in records for session in record.coverage()["session_id"]}),
        "legal_bases": dict(sorted(bases.items())),
        "with_document": sum(1 for record in records if record.document_file_id),
    }


def version_provenance_shown(*, user, version: DatasetVersion) -> dict[str, Any]:
    """The version's provenance for ``user``: the seller's members and staff read the
    consent records and the session ids themselves; anyone else their counts (and the
    consent records' legal bases)."""
    provenance = version_provenance(version=version)
    if evidence_audience(user=user, version=version) == Audience.PUBLIC:
        del provenance["consent_records"]
        for name in PRIVATE_PROVENANCE_FIELDS:
            entry = provenance["fields"][name]
            value = entry.pop("value")
            entry["count"] = len(value) if isinstance(value, list) else (0 if value in (None, "") else 1)
    return provenance


# ---------------------------------------------------------------- moderation


def moderator_own_organization(*, user, version: DatasetVersion) -> bool:
    """Whether ``user`` is a member (any role) of the organization selling ``version``:
    such a moderator may read the version but not decide on it (separation of duties)."""
    return organizations_for(user=user).filter(pk=version.dataset.owner_id).exists()


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


# What the moderators' queue offers to filter by: every state after the pipeline.
MODERATION_STATES = (
    VersionState.IN_REVIEW,
    VersionState.CHANGES_REQUESTED,
    VersionState.REJECTED,
    VersionState.PUBLISHED,
    VersionState.SUSPENDED,
    VersionState.WITHDRAWN,
)
# Failed checks first, the most severe first; then the checks that passed or did not apply.
SEVERITY_RANK = {"error": 0, "warning": 1, "info": 2}
# Evidence keys whose string values name a file of the version.
EVIDENCE_FILE_KEYS = frozenset({"path", "file", "file_name"})
# The report kind that computes each headline figure (a figure of no kind was declared).
FIGURE_KINDS = {name: str(kind) for kind, names in SUMMARY_FIGURES.items() for name in names}
TERM_WORDS = {
    "commercial_use": "commercial use",
    "derivatives": "derivative works",
    "redistribution": "redistribution",
    "share_alike": "share-alike",
    "attribution": "attribution",
}


def moderation_versions() -> QuerySet[DatasetVersion]:
    """Every version a moderator's queue can show (each state after the pipeline), with its
    dataset and seller, oldest submission first."""
    return DatasetVersion.objects.filter(state__in=MODERATION_STATES).select_related("dataset", "dataset__owner").order_by("submitted_at", "id")


def moderation_versions_failing(*, versions: QuerySet, severity: str) -> QuerySet:
    """``versions`` narrowed to those with a failed check of ``severity``."""
    failing = CheckResult.objects.filter(version=OuterRef("pk"), status=CheckStatus.FAILED, severity=severity)
    return versions.filter(Exists(failing))


def moderation_sellers() -> list[tuple[str, str]]:
    """``(slug, name)`` of each organization with a version in the moderators' queue."""
    rows = DatasetVersion.objects.filter(state__in=MODERATION_STATES).values_list("dataset__owner__slug", "dataset__owner__name").order_by().distinct()
    return sorted(rows, key=lambda r: r[1].lower())


def moderation_queue_rows(*, versions: Iterable[DatasetVersion]) -> dict[int, dict[str, Any]]:
    """What the moderators' queue shows of each version (a page of versions with their
    dataset and seller loaded), in the same number of queries for any number of versions:
    its quality summary (figures with status, interval and sample size; the tier), its
    failed checks counted by severity, and its terms conflicts."""
    versions = list(versions)
    if not versions:
        return {}
    summaries = version_quality_summaries(versions=versions)
    failed: dict[int, dict[str, int]] = {v.pk: {} for v in versions}
    counts = (
        CheckResult.objects.filter(version_id__in=list(failed), status=CheckStatus.FAILED)
        .values_list("version_id", "severity")
        .annotate(n=Count("id"))
        .order_by()
    )
    for version_id, severity, n in counts:
        failed[version_id][severity] = n
    licenses = license_catalogue()
    rows = {}
    for v in versions:
        rows[v.pk] = {
            "quality": summaries[v.pk],
            "failed_checks": dict(sorted(failed[v.pk].items(), key=lambda kv: SEVERITY_RANK.get(kv[0], 9))),
            "conflicts": version_effective_terms(version=v, licenses=licenses)["conflicts"],
            "frames": _frames(v),
        }
    return rows


def _frames(version: DatasetVersion) -> int:
    """Frames (video) or images of the version, from its ingest statistics."""
    stats = version.statistics if isinstance(version.statistics, dict) else {}
    return int(stats.get("frames", stats.get("images", 0)) or 0)


def _figures(summary: dict[str, Any]) -> list[dict[str, Any]]:
    """Every figure of a quality summary (whatever it is called), with the report kind it
    comes from; the summary's other entries (tier, engine version...) are not figures."""
    return [
        {"name": name, "kind": FIGURE_KINDS.get(name, "declared"), **fig}
        for name, fig in summary.items()
        if isinstance(fig, dict) and "value" in fig and "status" in fig
    ]


def _evidence_strings(evidence: Any, keys: frozenset[str]) -> set[str]:
    found: set[str] = set()
    if isinstance(evidence, dict):
        for key, value in evidence.items():
            if key in keys and isinstance(value, str):
                found.add(value)
            else:
                found |= _evidence_strings(value, keys)
    elif isinstance(evidence, list):
        for item in evidence:
            found |= _evidence_strings(item, keys)
    return found


def _inputs_without(terms: dict[str, Any], catalogue: dict[str, dict], term: str, granted: bool) -> list[str]:
    """The inputs (image licenses with their image counts, unlicensed images) whose terms
    have ``term`` different from ``granted``, in words."""
    out = [f"{lic['spdx']} ({lic['images']} images)" for lic in terms["licenses"] if lic["spdx"] in catalogue and bool(catalogue[lic["spdx"]][term]) != granted]
    out += [f"{u['images']} images under {u['name'] or 'no license'} (not in the catalogue)" for u in terms["unknown"] if u.get("images")]
    return out


def conflict_explanation(conflict: dict[str, Any], *, terms: dict[str, Any], catalogue: dict[str, dict]) -> str:
    """A terms conflict of ``version_effective_terms`` explained in words, naming the
    licenses (and their image counts) that cause it."""
    annotation = terms.get("annotation_license")
    counts = {lic["spdx"]: lic["images"] for lic in terms["licenses"]}
    code = conflict.get("code")
    if code == "declared_terms_too_permissive":
        parts = []
        for term in conflict.get("terms", []):
            words = TERM_WORDS.get(term, term)
            if term in PERMISSIONS:
                parts.append(f"{annotation} grants {words}, but {', '.join(_inputs_without(terms, catalogue, term, True)) or 'an input'} do not.")
            else:
                parts.append(f"{annotation} does not require {words}, but {', '.join(_inputs_without(terms, catalogue, term, False)) or 'an input'} do.")
        return f"The dataset is declared under {annotation}, which promises buyers more than its inputs allow. " + " ".join(parts)
    if code == "derivatives_not_allowed":
        named = ", ".join(f"{s} ({counts.get(s, 0)} images)" for s in conflict.get("licenses", []))
        return f"Masks are derivative works of the images they are drawn on, and {named} forbid derivative works: masks on those images cannot be sold."
    if code == "incompatible_share_alike":
        named = ", ".join(conflict.get("licenses", []))
        return f"{named} each require derivatives to be shared under their own license; no single license satisfies all of them."
    return conflict.get("message") or str(code)


def _report_entry(report) -> dict[str, Any]:
    plots = sorted((report.artifacts or {}).get("plots") or {}, key=lambda n: (n.startswith("overlay"), n))
    extras = {k: v for k, v in (report.summary or {}).items() if not (isinstance(v, dict) and "value" in v)}
    return {
        "id": report.pk,
        "kind": report.kind,
        "status": report.status,
        "ok": report.status == ReportStatus.OK,
        "engine_version": report.engine_version,
        "device": report.device,
        "seconds": report.seconds,
        "created_at": report.created_at,
        "extras": extras,
        "charts": [n for n in plots if not n.startswith("overlay")],
        "overlays": [n for n in plots if n.startswith("overlay")],
    }


def moderation_review(*, version: DatasetVersion) -> dict[str, Any]:
    """Everything a moderator's decision on ``version`` needs, in a bounded number of
    queries: the API's moderation detail (figures, checks, effective terms, provenance),
    plus the reports' plots, the checks ordered errors first with the files their evidence
    names, the licenses' terms and each conflict in words, the provenance fields' reviewers,
    the consent documents, the dataset's other versions with their decisions and figures,
    the seller's other listings, and the version's audit log."""
    detail = moderation_detail(version=version)
    reports = latest_reports(version=version)
    report_entries = [_report_entry(reports[k]) for k in sorted(reports, key=lambda k: list(SUMMARY_FIGURES).index(k) if k in SUMMARY_FIGURES else -1)]

    checks = sorted(detail["checks"], key=lambda c: (c["status"] != CheckStatus.FAILED, SEVERITY_RANK.get(c["severity"], 9), c["code"]))
    named = set().union(*(_evidence_strings(c["evidence"], EVIDENCE_FILE_KEYS) for c in checks)) if checks else set()
    evidence_files = dict(version_files(version=version).filter(path__in=sorted(named)).values_list("path", "pk")) if named else {}
    overlays = {}
    for entry in report_entries:
        for name in entry["overlays"]:
            overlays.setdefault(name.rsplit("_", 1)[-1], (entry["id"], name))

    terms = detail["effective_terms"]
    catalogue = license_catalogue().terms
    license_rows = [{**lic, **{t: catalogue[lic["spdx"]][t] for t in TERMS}, "name": catalogue[lic["spdx"]]["name"]} for lic in terms["licenses"]]
    annotation = terms.get("annotation_license")
    explained = [{**c, "explanation": conflict_explanation(c, terms=terms, catalogue=catalogue)} for c in terms["conflicts"]]

    rows = {f.name: f for f in ProvenanceField.objects.filter(record__version=version).select_related("reviewed_by")}
    fields = [
        {"name": name, **entry, "reviewed_by": rows[name].reviewed_by.get_username() if name in rows and rows[name].reviewed_by else None,
         "reviewed_at": rows[name].reviewed_at if name in rows else None}
        for name, entry in detail["provenance"]["fields"].items()
    ]
    documents = list(version_files(version=version, role=FileRole.PROVENANCE_DOCS).order_by("path"))

    earlier = list(dataset_other_versions(version=version))
    earlier_figures = version_quality_summaries(versions=earlier)
    decisions: dict[str, list] = {}
    for event in objects_audit_events(objs=earlier, action_prefix="moderation."):
        decisions.setdefault(event.object_id, []).append(event)
    history = [
        {"version": v, "figures": _figures(earlier_figures[v.pk]), "tier": earlier_figures[v.pk].get("tier"), "decisions": decisions.get(str(v.pk), [])}
        for v in earlier
    ]
    others = list(organization_other_datasets(version=version))
    published = [d.published[0] for d in others if d.published]
    published_figures = version_quality_summaries(versions=published)
    listings = [
        {"dataset": d, "published": d.published[0] if d.published else None,
         "figures": _figures(published_figures[d.published[0].pk]) if d.published else [],
         "tier": published_figures[d.published[0].pk].get("tier") if d.published else None}
        for d in others
    ]
    return {
        **detail,
        "version": version,
        "frames": _frames(version),
        "figures": _figures(detail["quality_summary"] or {}),
        "facts": {k: v for k, v in (detail["quality_summary"] or {}).items() if not isinstance(v, dict)},
        "reports": report_entries,
        "checks": checks,
        "evidence_files": evidence_files,
        "overlays_by_image": overlays,
        "licenses": license_rows,
        "annotation_license_terms": catalogue.get(annotation) if annotation else None,
        "conflicts": explained,
        "fields": fields,
        "consent_records": detail["provenance"].get("consent_records", []),
        "documents": documents,
        "earlier_versions": history,
        "other_listings": listings,
        "audit_log": list(object_audit_events(obj=version)[:200]),
    }


def moderation_file(*, version: DatasetVersion, file_id: int):
    """One file of ``version`` (a provenance document, a file a check names), or None."""
    return version_files(version=version).filter(pk=file_id).first()


# ---------------------------------------------------------------- the consent ledger


def consent_revocations(*, version: DatasetVersion) -> QuerySet[ConsentRevocation]:
    return ConsentRevocation.objects.filter(version=version).select_related("recorded_by").prefetch_related("records").order_by("-recorded_at", "-pk")


def consent_revocation_get(*, revocation_id: int) -> ConsentRevocation:
    return ConsentRevocation.objects.select_related("version__dataset").prefetch_related("records").get(pk=revocation_id)


def consent_revocation_coverage(*, revocation: ConsentRevocation) -> dict[str, set[str]]:
    """What the revocation's records cover, merged: attribute name → values (``files``: paths)."""
    merged: dict[str, set[str]] = {}
    for record in revocation.records.all():
        for key, values in record.coverage().items():
            merged.setdefault(key, set()).update(values)
    return merged


def withdrawn_files(*, version_id: int) -> dict[int, dict[str, Any]]:
    """The version's files withdrawn by consent revocations, by file id:
    ``{"path", "role", "revocation", "requested_on"}``."""
    out: dict[int, dict[str, Any]] = {}
    for revocation in ConsentRevocation.objects.filter(version_id=version_id, files_listed_at__isnull=False).order_by("pk").only("pk", "files", "requested_on"):
        for f in revocation.files:
            out.setdefault(int(f["id"]), {"path": f["path"], "role": f.get("role", ""), "revocation": revocation.pk, "requested_on": revocation.requested_on.isoformat()})
    return out


def consent_revocations_unlisted(*, recorded_before: datetime) -> list[int]:
    """Revocations recorded before then whose files were never listed (a lost reaction)."""
    return list(ConsentRevocation.objects.filter(files_listed_at__isnull=True, recorded_at__lt=recorded_before).order_by("pk").values_list("pk", flat=True))
