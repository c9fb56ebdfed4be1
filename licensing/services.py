"""Writes for licensing, provenance, checks and moderation. Each is atomic and records its
audit event."""

from __future__ import annotations

import io
import logging
import tempfile
from datetime import date, datetime, timedelta
from typing import Any, BinaryIO

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from datasets.ingest.archive import is_archive
from datasets.models import DatasetVersion, FileRole
from datasets.selectors import version_files
from datasets.services import version_revocation_clear, version_revocation_mark, version_transition, withdrawn_content_add
from datasets.states import VersionState
from licensing import checks as C
from licensing.errors import LicensingErrorCode
from licensing.events import ChecksCompleted, ConsentRevoked, ProvenanceReviewed
from licensing.models import (
    CheckResult,
    CheckStatus,
    ConsentRecord,
    ConsentRevocation,
    FieldStatus,
    ImageFingerprint,
    LegalBasis,
    ProvenanceField,
    ProvenanceRecord,
    RevocationState,
    Severity,
)
from licensing.provenance import BY_NAME, field_value_errors
from licensing.selectors import consent_record_output, moderator_own_organization, version_effective_terms
from marketplace.audit.services import audit_event_record
from marketplace.core.errors import Conflict, Forbidden, InvalidInput, field_error
from marketplace.core.events import publish
from marketplace.core.storage import CHUNK, get_storage
from quality.selectors import version_quality_findings, version_quality_summary

log = logging.getLogger(__name__)


# ---------------------------------------------------------------- publish block


def version_publish_check(*, version: DatasetVersion) -> dict[str, Any]:
    """Refuse (Conflict) to publish a version whose terms cannot be honoured or whose checks
    failed, else return its effective terms. In order, each with its own code:

    * ``unknown_license``: the declared license is not in the catalogue;
    * ``terms_too_permissive``: the declared license grants more than the inputs allow;
    * ``derivatives_not_allowed``: images under a no-derivatives license (masks are
      derivative works of their images);
    * ``incompatible_share_alike``: inputs under share-alike licenses no one license satisfies;
    * ``checks_failed``: a provenance or license check with severity ``error`` failed (each
      failing check's code is a ``location`` in the details).
    """
    terms = version_effective_terms(version=version)
    if terms["annotation_license"] is None:
        raise Conflict(
            "The declared license is not in the catalogue.", code=LicensingErrorCode.UNKNOWN_LICENSE,
            details=[field_error("annotation_license", f"{version.dataset.annotation_license!r} is not a known license", "unknown_license")],
        )
    conflicts = {c["code"]: c for c in terms["conflicts"]}
    if (conflict := conflicts.get("declared_terms_too_permissive")) is not None:
        raise Conflict(
            "The declared license grants more than the images' licenses allow.", code=LicensingErrorCode.TERMS_TOO_PERMISSIVE,
            details=[field_error(f"effective_terms.{t}", f"declared {terms['annotation_license']} is more permissive on {t}", "too_permissive") for t in conflict["terms"]],
        )
    if (conflict := conflicts.get("derivatives_not_allowed")) is not None:
        raise Conflict(
            "Images under a no-derivatives license cannot be sold with masks drawn on them.", code=LicensingErrorCode.DERIVATIVES_NOT_ALLOWED,
            details=[field_error("effective_terms.licenses", f"{spdx} forbids derivative works", "derivatives_not_allowed") for spdx in conflict["licenses"]],
        )
    if (conflict := conflicts.get("incompatible_share_alike")) is not None:
        raise Conflict(
            "The inputs carry share-alike licenses that no single license satisfies.", code=LicensingErrorCode.INCOMPATIBLE_SHARE_ALIKE,
            details=[field_error("effective_terms.licenses", f"{spdx} requires sharing alike under its own terms", "incompatible_share_alike") for spdx in conflict["licenses"]],
        )
    failing = list(CheckResult.objects.filter(version=version, status=CheckStatus.FAILED, severity=Severity.ERROR).order_by("code"))
    if failing:
        raise Conflict(
            f"{len(failing)} check(s) with severity error failed; the version cannot be published until they pass.",
            code=LicensingErrorCode.CHECKS_FAILED,
            details=[field_error(check.code, check.message, "check_failed") for check in failing],
        )
    return terms


# ---------------------------------------------------------------- provenance


def _record_for(version: DatasetVersion) -> ProvenanceRecord:
    record, _ = ProvenanceRecord.objects.get_or_create(version=version)
    return record


@transaction.atomic
def provenance_update(*, version: DatasetVersion, actor, fields: dict[str, Any], consent_records: list[dict] | None = None) -> ProvenanceRecord:
    """The seller sets provenance values while the version is a draft. Values only: a field's
    status is the moderators' (a changed value goes back to ``self-declared``)."""
    locked = DatasetVersion.objects.select_for_update().select_related("dataset").get(pk=version.pk)
    if locked.state != VersionState.DRAFT:
        raise Conflict("Provenance can only be edited while the version is a draft.", code=LicensingErrorCode.VERSION_FROZEN)
    errors = [e for name, value in fields.items() for e in field_value_errors(name, value)]
    if consent_records is not None:
        consent_records, document_errors = _consent_documents_resolve(locked, consent_records)
        errors += document_errors + _consent_errors(locked, consent_records)
    if errors:
        raise InvalidInput("Invalid provenance.", code=LicensingErrorCode.INVALID_PROVENANCE, details=errors)
    record = _record_for(locked)
    existing = {f.name: f for f in record.fields.all()}
    before, after = {}, {}
    for name, value in fields.items():
        row = existing.get(name)
        if row is None:
            ProvenanceField.objects.create(record=record, name=name, value=value)
        elif row.value != value:
            before[name] = row.value
            row.value, row.status, row.note, row.reviewed_by, row.reviewed_at = value, FieldStatus.SELF_DECLARED, "", None, None
            row.save()
        else:
            continue
        after[name] = value
    if consent_records is not None:
        before["consent_records"] = [consent_record_output(c) for c in ConsentRecord.objects.filter(version=locked)]
        ConsentRecord.objects.filter(version=locked).delete()
        ConsentRecord.objects.bulk_create([ConsentRecord(version=locked, **c) for c in consent_records])
        after["consent_records"] = [{**c, "given_on": str(c["given_on"]) if c.get("given_on") else None} for c in consent_records]
    record.save(update_fields=["updated_at"])
    audit_event_record(actor=actor, action="provenance.update", obj=locked, organization=locked.dataset.owner, before=before, after=after)
    return record


COVERAGE_LISTS = ("sessions", "episodes", "videos", "files")


def _consent_documents_resolve(version: DatasetVersion, records: list[dict]) -> tuple[list[dict], list[dict]]:
    """A record may name its document by the path of a provenance document of the version
    (``document``, as the dataset card does: the folder's path) instead of its file id:
    the path becomes ``document_file_id``. An unknown path, or one naming another file
    than ``document_file_id``, is a located error."""
    wanted = {rec["document"] for rec in records if isinstance(rec, dict) and rec.get("document")}
    by_path: dict[str, int] = {}
    if wanted:
        for path, pk in version_files(version=version, role=FileRole.PROVENANCE_DOCS).filter(path__in=wanted).order_by("path", "pk").values_list("path", "pk"):
            by_path[path] = pk  # the latest upload of a path
    out, errors = [], []
    for i, rec in enumerate(records):
        if not isinstance(rec, dict) or "document" not in rec:
            out.append(rec)
            continue
        rec = dict(rec)
        path = rec.pop("document") or ""
        if path:
            found = by_path.get(path)
            if found is None:
                errors.append(field_error(f"consent_records[{i}].document", f"no provenance document {path!r} in this version", "unknown_document"))
            elif rec.get("document_file_id") not in (None, found):
                errors.append(field_error(f"consent_records[{i}].document", f"{path!r} is not the file document_file_id names", "conflict"))
            else:
                rec["document_file_id"] = found
        out.append(rec)
    return out, errors


def _consent_errors(version: DatasetVersion, records: list[dict]) -> list[dict]:
    """Each record names what it covers (a session, lists of sessions, episodes, videos or
    files) or carries a ``consent_id`` the annotations refer to; sessions and consent ids
    are unique within the version."""
    errors: list[dict] = []
    sessions: set[str] = set()
    consent_ids: set[str] = set()
    documents = set(version_files(version=version, role=FileRole.PROVENANCE_DOCS).values_list("pk", flat=True))
    for i, rec in enumerate(records):
        loc = f"consent_records[{i}]"
        if not isinstance(rec, dict):
            errors.append(field_error(loc, "an object", "invalid"))
            continue
        session, consent_id = rec.get("session_id") or "", rec.get("consent_id") or ""
        if not session and not consent_id and not any(rec.get(k) for k in COVERAGE_LISTS):
            errors.append(field_error(f"{loc}.session_id", "name what the record covers: a session_id, sessions, episodes, videos, files or a consent_id the annotations carry", "required"))
        if session and session in sessions:
            errors.append(field_error(f"{loc}.session_id", "duplicate session", "duplicate"))
        if consent_id and consent_id in consent_ids:
            errors.append(field_error(f"{loc}.consent_id", "duplicate consent id", "duplicate"))
        if session:
            sessions.add(session)
        if consent_id:
            consent_ids.add(consent_id)
        for key in COVERAGE_LISTS:
            value = rec.get(key) or []
            if not isinstance(value, list) or not all(isinstance(v, str) and v and len(v) <= 1024 for v in value) or len(value) > 10000:
                errors.append(field_error(f"{loc}.{key}", "a list of names", "invalid"))
        if rec.get("legal_basis") not in LegalBasis.values:
            errors.append(field_error(f"{loc}.legal_basis", f"one of {', '.join(LegalBasis.values)}", "invalid_choice"))
        doc = rec.get("document_file_id")
        if doc is not None and doc not in documents:
            errors.append(field_error(f"{loc}.document_file_id", "not a provenance document of this version", "invalid_document"))
    return errors


@transaction.atomic
def provenance_fields_review(*, version: DatasetVersion, actor, reviews: list[dict[str, str]]) -> list[ProvenanceField]:
    """A moderator marks provenance fields ``verified`` or ``disputed`` (or back to
    ``self-declared``), each with a note. One audit event per field."""
    errors = []
    for i, r in enumerate(reviews):
        if r.get("name") not in BY_NAME:
            errors.append(field_error(f"fields[{i}].name", "unknown provenance field", "unknown_field"))
        if r.get("status") not in FieldStatus.values:
            errors.append(field_error(f"fields[{i}].status", f"one of {', '.join(FieldStatus.values)}", "invalid_choice"))
        if r.get("status") == FieldStatus.DISPUTED and not (r.get("note") or "").strip():
            errors.append(field_error(f"fields[{i}].note", "a dispute needs a note", "required"))
    if errors:
        raise InvalidInput("Invalid review.", code=LicensingErrorCode.INVALID_REVIEW, details=errors)
    locked = DatasetVersion.objects.select_for_update().select_related("dataset", "dataset__owner").get(pk=version.pk)
    moderation_independence_check(version=locked, actor=actor)
    record = _record_for(locked)
    rows = []
    for r in reviews:
        row, _ = ProvenanceField.objects.get_or_create(record=record, name=r["name"])
        before = {"status": row.status, "note": row.note}
        row.status, row.note = r["status"], r.get("note") or ""
        row.reviewed_by, row.reviewed_at = actor, timezone.now()
        row.save()
        audit_event_record(
            actor=actor, action=f"provenance.field.{row.status}", obj=locked, organization=locked.dataset.owner,
            before={"field": row.name, **before}, after={"field": row.name, "status": row.status, "note": row.note}, reason=row.note,
        )
        rows.append(row)
    publish(ProvenanceReviewed(version_id=locked.pk))
    return rows


# ---------------------------------------------------------------- checks


# An image up to this size is read into memory; a larger one is streamed to a temporary
# file that Pillow reads as it needs: memory per image is bounded whatever the file's size.
SPOOL_BYTES = 4 * 1024 * 1024


def _image_file(key: str, size: int) -> BinaryIO:
    with get_storage().open(key) as src:
        if size <= SPOOL_BYTES:
            return io.BytesIO(src.read(SPOOL_BYTES + 1))
        out = tempfile.TemporaryFile()  # noqa: SIM115 - the caller closes it
        while chunk := src.read(CHUNK):
            out.write(chunk)
    out.seek(0)
    return out


def image_fingerprints_compute(*, version: DatasetVersion) -> list[ImageFingerprint]:
    """Perceptual hash and personal-metadata scan of every image of the version; computed
    once per image (kept across runs). Images are streamed one at a time; an uploaded
    archive is never opened here: ingest recorded each of its members as a file of its own."""
    have = set(ImageFingerprint.objects.filter(version=version).values_list("file_id", flat=True))
    new = []
    for f in version_files(version=version, role=FileRole.IMAGES):
        if f.pk in have or is_archive(f.path):
            continue
        try:
            with _image_file(f.storage_key, f.size) as image:
                bits, personal = C.image_inspect(image)
        except C.IMAGE_ERRORS as exc:  # a broken image is ingest's finding, not ours
            log.warning("cannot inspect %s: %s", f.path, exc)
            continue
        b = C.bands(bits)
        new.append(ImageFingerprint(version=version, file_id=f.pk, path=f.path, phash=f"{bits:016x}", band0=b[0], band1=b[1], band2=b[2], band3=b[3], exif_personal=personal))
    ImageFingerprint.objects.bulk_create(new, ignore_conflicts=True)
    return list(ImageFingerprint.objects.filter(version=version))


def near_duplicates(*, version: DatasetVersion, fingerprints: list[ImageFingerprint]) -> dict[str, dict]:
    """Images of this version within NEAR_DUPLICATE_BITS of an image of another
    organization's published version, grouped by listing slug."""
    from django.db.models import Q

    others = ImageFingerprint.objects.filter(version__state=VersionState.PUBLISHED).exclude(version__dataset__owner=version.dataset.owner_id)
    found: dict[str, dict] = {}
    for chunk_start in range(0, len(fingerprints), 500):
        chunk = fingerprints[chunk_start : chunk_start + 500]
        q = Q()
        for i in range(4):
            q |= Q(**{f"band{i}__in": {getattr(f, f"band{i}") for f in chunk}})
        candidates = list(others.filter(q).values("phash", "path", "version__dataset__slug"))
        for f in chunk:
            mine = int(f.phash, 16)
            for c in candidates:
                if bin(mine ^ int(c["phash"], 16)).count("1") <= C.NEAR_DUPLICATE_BITS:
                    slug = c["version__dataset__slug"]
                    entry = found.setdefault(slug, {"listing": slug, "images": 0, "examples": []})
                    entry["images"] += 1
                    if len(entry["examples"]) < 10:
                        entry["examples"].append({"path": f.path, "matches": c["path"]})
                    break
    return found


def checks_run(*, version_id: int) -> list[CheckResult]:
    """Run every provenance and license check for a version and replace its results
    (idempotent). Image hashing happens outside the transaction: it reads storage."""
    version = DatasetVersion.objects.select_related("dataset", "dataset__owner").get(pk=version_id)
    fingerprints = image_fingerprints_compute(version=version)
    fields = {f.name: f.value for f in ProvenanceField.objects.filter(record__version=version)}
    ctx = C.CheckContext(
        version=version,
        fields=fields,
        consent_sessions={s for c in ConsentRecord.objects.filter(version=version) for s in c.coverage()["session_id"]},
        statistics=version.statistics or {},
        effective_terms=version_effective_terms(version=version),
        quality_summary=version_quality_summary(version=version),
        quality_findings=version_quality_findings(version=version),
        fingerprints=fingerprints,
        duplicates=near_duplicates(version=version, fingerprints=fingerprints) if fingerprints else {},
    )
    results = [check(ctx) for check in C.CHECKS]
    with transaction.atomic():
        CheckResult.objects.filter(version=version).delete()
        rows = CheckResult.objects.bulk_create([CheckResult(version=version, **r) for r in results])
        publish(ChecksCompleted(version_id=version.pk))
    return rows


# ---------------------------------------------------------------- moderation


def moderation_independence_check(*, version: DatasetVersion, actor) -> None:
    """Refuse (403 ``own_organization``) a moderator who belongs to the version's seller
    organization: nobody approves, rejects, suspends, reinstates or verifies the provenance
    of their own organization's data."""
    if moderator_own_organization(user=actor, version=version):
        raise Forbidden(
            f"You are a member of {version.dataset.owner.name}, which sells this version: another moderator must decide on it.",
            code=LicensingErrorCode.OWN_ORGANIZATION,
            details=[field_error("version", "a version of your own organization", LicensingErrorCode.OWN_ORGANIZATION)],
        )


class Decision:
    APPROVE = "approve"
    REJECT = "reject"
    REQUEST_CHANGES = "request_changes"
    ALL = (APPROVE, REJECT, REQUEST_CHANGES)


@transaction.atomic
def moderation_decide(*, version: DatasetVersion, actor, decision: str, reason: str = "") -> DatasetVersion:
    """Approve (publish, after the publish check), reject or request changes. Approving a
    new version withdraws the dataset's previously published one."""
    if decision not in Decision.ALL:
        raise InvalidInput("Unknown decision.", code=LicensingErrorCode.INVALID_DECISION, details=[field_error("decision", f"one of {', '.join(Decision.ALL)}", "invalid_choice")])
    if decision != Decision.APPROVE and not reason.strip():
        raise InvalidInput("A reason is required.", code=LicensingErrorCode.REASON_REQUIRED, details=[field_error("reason", "required", "required")])
    locked = DatasetVersion.objects.select_for_update().select_related("dataset", "dataset__owner").get(pk=version.pk)
    moderation_independence_check(version=locked, actor=actor)
    if locked.state != VersionState.IN_REVIEW:
        raise Conflict(f"Only a version in review can be decided (this one is {locked.state}).", code=LicensingErrorCode.INVALID_TRANSITION)
    if decision == Decision.APPROVE:
        version_publish_check(version=locked)
        previous = DatasetVersion.objects.filter(dataset=locked.dataset, state=VersionState.PUBLISHED).exclude(pk=locked.pk).first()
        if previous is not None:
            version_transition(version=previous, to_state=VersionState.WITHDRAWN, actor=actor, reason=f"superseded by v{locked.number}", action="moderation.supersede")
        to_state = VersionState.PUBLISHED
    else:
        to_state = VersionState.REJECTED if decision == Decision.REJECT else VersionState.CHANGES_REQUESTED
    return version_transition(version=locked, to_state=to_state, actor=actor, reason=reason, action=f"moderation.{decision}")


@transaction.atomic
def version_suspend(*, version: DatasetVersion, actor, reason: str) -> DatasetVersion:
    if not reason.strip():
        raise InvalidInput("A reason is required.", code=LicensingErrorCode.REASON_REQUIRED, details=[field_error("reason", "required", "required")])
    moderation_independence_check(version=version, actor=actor)
    return version_transition(version=version, to_state=VersionState.SUSPENDED, actor=actor, reason=reason, action="moderation.suspend")


@transaction.atomic
def version_reinstate(*, version: DatasetVersion, actor, reason: str = "") -> DatasetVersion:
    locked = DatasetVersion.objects.select_for_update().select_related("dataset", "dataset__owner").get(pk=version.pk)
    moderation_independence_check(version=locked, actor=actor)
    if locked.state != VersionState.SUSPENDED:
        raise Conflict("Only a suspended version can be reinstated.", code=LicensingErrorCode.INVALID_TRANSITION)
    version_publish_check(version=locked)
    return version_transition(version=locked, to_state=VersionState.PUBLISHED, actor=actor, reason=reason, action="moderation.reinstate")




# ---------------------------------------------------------------- the consent ledger


# Versions whose buyers may hold files: a revocation reaches them.
REVOCABLE_STATES = (VersionState.PUBLISHED, VersionState.SUSPENDED, VersionState.WITHDRAWN)


def _revocation_deadline() -> Any:
    return timezone.now() + timedelta(days=int(settings.CONSENT_REVOCATION_DEADLINE_DAYS))


@transaction.atomic
def consent_revocation_record(*, version: DatasetVersion, actor, requested_on: date, reason: str, consent_ids: list[str]) -> ConsentRevocation:
    """A seller member records that data subjects withdrew consent: the records named by
    their ``consent_id`` (or ``session_id``) are revoked, and the ``ConsentRevoked`` event
    (after commit) has the files listed, withdrawn from entitlements and reported. A
    published version is marked ``revocation_pending`` with the deadline for a version
    without the files; one no longer published (withdrawn or suspended, still held by its
    buyers) has nothing to replace: its revocation is resolved at once. Nothing changes when
    any part of the request is refused."""
    locked = DatasetVersion.objects.select_for_update().select_related("dataset__owner").get(pk=version.pk)
    if locked.state not in REVOCABLE_STATES:
        raise Conflict(
            f"Only a version that was published can have its consent revoked (this one is {locked.state}); a draft is edited instead.",
            code=LicensingErrorCode.VERSION_NEVER_PUBLISHED,
        )
    errors = []
    if not reason.strip():
        errors.append(field_error("reason", "required", "required"))
    if requested_on > timezone.localdate():
        errors.append(field_error("requested_on", "in the future", "invalid"))
    if not consent_ids:
        errors.append(field_error("records", "name at least one consent record (its consent_id or session_id)", "required"))
    records = list(ConsentRecord.objects.select_for_update().filter(version=locked))
    by_name = {r.consent_id: r for r in records if r.consent_id} | {r.session_id: r for r in records if r.session_id and not r.consent_id}
    chosen: list[ConsentRecord] = []
    for i, name in enumerate(consent_ids):
        record = by_name.get(name)
        if record is None:
            errors.append(field_error(f"records[{i}]", f"no consent record {name!r} in this version", LicensingErrorCode.UNKNOWN_CONSENT_RECORD))
        elif record.revoked_at is not None:
            errors.append(field_error(f"records[{i}]", f"{name!r} was revoked on {record.revoked_at.date().isoformat()}", LicensingErrorCode.CONSENT_ALREADY_REVOKED))
        elif record not in chosen:
            chosen.append(record)
    if errors:
        raise InvalidInput("The revocation is not valid.", code=LicensingErrorCode.INVALID_REVOCATION, details=errors)
    now = timezone.now()
    published = locked.state == VersionState.PUBLISHED
    revocation = ConsentRevocation.objects.create(
        version=locked,
        requested_on=requested_on,
        reason=reason.strip(),
        deadline=_revocation_deadline() if published else now,
        state=RevocationState.PENDING if published else RevocationState.RESOLVED,
        closed_at=None if published else now,
        recorded_by=actor,
    )
    revocation.records.set(chosen)
    ConsentRecord.objects.filter(pk__in=[r.pk for r in chosen]).update(revoked_at=now)
    if published:
        version_revocation_mark(version=locked, deadline=revocation.deadline, actor=actor, reason=f"consent revocation {revocation.pk}")
    audit_event_record(
        actor=actor,
        action="consent.revoke",
        obj=locked,
        organization=locked.dataset.owner,
        before={"records": [{"consent_id": r.consent_id, "session_id": r.session_id, "revoked": False} for r in chosen]},
        after={
            "revocation": revocation.pk,
            "records": [{"consent_id": r.consent_id, "session_id": r.session_id, "revoked": True} for r in chosen],
            "requested_on": requested_on.isoformat(),
            "state": revocation.state,
            "deadline": revocation.deadline.isoformat() if published else None,
        },
        reason=revocation.reason,
    )
    publish(ConsentRevoked(revocation_id=revocation.pk, version_id=locked.pk))
    return revocation


@transaction.atomic
def consent_revocation_files_record(*, revocation_id: int, files: list[dict[str, Any]], frames: int, subjects: list[tuple[str, str]]) -> ConsentRevocation:
    """The files a revocation withdraws, as the store front listed them from the version's
    index (``[{"id", "path", "role", "sha256", "archive"}]``), and the subjects it names: kept on the
    revocation and remembered by the dataset, whose later versions refuse them at ingest.
    Idempotent: a revocation's files are listed once."""
    revocation = ConsentRevocation.objects.select_for_update().select_related("version__dataset__owner").get(pk=revocation_id)
    if revocation.files_listed_at is not None:
        return revocation
    revocation.files, revocation.frames, revocation.files_listed_at = files, frames, timezone.now()
    revocation.save(update_fields=["files", "frames", "files_listed_at"])
    # Files by their bytes; an archive's members are remembered one by one, not the archive.
    items = [("sha256", f["sha256"], f["path"]) for f in files if f.get("sha256") and not f.get("archive")] + [(kind, value, "") for kind, value in subjects]
    withdrawn_content_add(dataset_id=revocation.version.dataset_id, revocation_id=revocation.pk, items=items)
    audit_event_record(
        actor=None,
        action="consent.files_withdrawn",
        obj=revocation.version,
        organization=revocation.version.dataset.owner,
        before={},
        after={"revocation": revocation.pk, "files": [f["path"] for f in files], "frames": frames},
    )
    return revocation


def consent_deadlines_enforce(*, now: datetime | None = None) -> dict[str, int]:
    """Close pending revocations: resolved once their version is no longer published (a
    version without the files replaced it, or it was withdrawn); past the deadline, the
    version is suspended. Idempotent (beat and ``manage.py consent_deadlines``)."""
    now = now or timezone.now()
    counts = {"resolved": 0, "suspended": 0}
    for revocation_id in ConsentRevocation.objects.filter(state=RevocationState.PENDING).order_by("deadline").values_list("pk", flat=True):
        outcome = _revocation_close(revocation_id=revocation_id, now=now)
        if outcome:
            counts[outcome] += 1
    return counts


@transaction.atomic
def _revocation_close(*, revocation_id: int, now: datetime) -> str | None:
    revocation = ConsentRevocation.objects.select_for_update().select_related("version__dataset__owner").get(pk=revocation_id)
    if revocation.state != RevocationState.PENDING:
        return None
    version = DatasetVersion.objects.select_for_update().get(pk=revocation.version_id)
    if version.state != VersionState.PUBLISHED:
        outcome, reason = RevocationState.RESOLVED, f"the version is {version.state}"
    elif revocation.deadline <= now:
        outcome, reason = RevocationState.SUSPENDED, f"consent revocation {revocation.pk}: no version without the withdrawn files by {revocation.deadline.isoformat()}"
        version_transition(version=version, to_state=VersionState.SUSPENDED, actor=None, reason=reason, action="consent.suspend")
    else:
        return None
    revocation.state, revocation.closed_at = outcome, now
    revocation.save(update_fields=["state", "closed_at"])
    if not ConsentRevocation.objects.filter(version=version, state=RevocationState.PENDING).exists():
        version_revocation_clear(version=version, actor=None, reason=reason)
    audit_event_record(
        actor=None,
        action=f"consent.{outcome}",
        obj=version,
        organization=revocation.version.dataset.owner,
        before={"revocation": revocation.pk, "state": RevocationState.PENDING},
        after={"revocation": revocation.pk, "state": outcome},
        reason=reason,
    )
    return outcome
