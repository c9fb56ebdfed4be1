"""What the store front does when a consent revocation is recorded: list the files it
withdraws (from the version's index), have every entitlement served without them, and
tell each buyer organization that downloaded some of them to delete them."""

from __future__ import annotations

import logging
from datetime import timedelta

from django.db import IntegrityError, transaction
from django.utils import timezone

from datasets.models import DatasetFile, DatasetVersion
from datasets.selectors import version_files
from licensing.selectors import consent_revocation_coverage, consent_revocation_get, consent_revocations_unlisted, withdrawn_files
from licensing.services import consent_revocation_files_record
from marketplace.audit.services import audit_event_record
from marketplace.core.events import publish
from marketplace.listings import subsets as S
from marketplace.listings.events import ConsentNoticeIssued
from marketplace.listings.models import ConsentNotice, DownloadLog, Entitlement, Listing
from marketplace.listings.selectors import BUYER_FILE_ROLES
from marketplace.listings.services.selections import MEDIA_ROLES, files_named, index_rows, selection_request, version_index_build

log = logging.getLogger(__name__)
# Attributes of the index rows that name recorded subjects, as the consent records name them.
SUBJECT_KEYS = ("session_id", "episode_id", "video_id", "consent_id")
# Of those, the ones a later version's annotations are checked for (a video's id or name is
# not stable across versions; its frames are refused by their bytes).
REMEMBERED_KEYS = ("session_id", "episode_id", "consent_id")


def withdrawn_files_of(*, version: DatasetVersion, coverage: dict[str, set[str]]) -> tuple[list[DatasetFile], int]:
    """The version's files a coverage reaches, and their frames: the frames of every image or
    video whose attributes name a covered session, episode, video or consent id; the files
    named by path; and the archives holding any of those (the archive would deliver them)."""
    rows = index_rows(version_index_build(version_id=version.pk))
    files = list(version_files(version=version).filter(role__in=BUYER_FILE_ROLES).order_by("role", "path", "pk"))
    media = [f for f in files if f.role in MEDIA_ROLES and not f.path.lower().endswith(".json") and not (f.source_id is None and S.is_archive(f.path))]
    covered_rows = [r for r in rows if any(r.attributes.get(key) in coverage.get(key, set()) for key in SUBJECT_KEYS)]
    hit = {f.pk: f for f in files_named({n for r in covered_rows for n in r.names}, media).values()}
    named_paths = coverage.get("files", set())
    hit.update({f.pk: f for f in files if f.path in named_paths})
    # Frames: each withdrawn frame file once (an image, or one frame of a video).
    frame_files = {f.pk for f in files_named({n for r in rows for n in r.names}, media).values()}
    frames = len(frame_files & set(hit))
    sources = {f.source_id for f in hit.values() if f.source_id is not None}
    hit.update({f.pk: f for f in files if f.pk in sources})
    return sorted(hit.values(), key=lambda f: (f.role, f.path)), frames


def consent_revocation_apply(*, revocation_id: int) -> list[ConsentNotice]:
    """List the revocation's files (once), request the selections the version's live
    entitlements are now served from, and notify each buyer organization that downloaded a
    withdrawn file (one notice each; idempotent)."""
    revocation = consent_revocation_get(revocation_id=revocation_id)
    version = DatasetVersion.objects.select_related("dataset").get(pk=revocation.version_id)
    if revocation.files_listed_at is None:
        coverage = consent_revocation_coverage(revocation=revocation)
        files, frames = withdrawn_files_of(version=version, coverage=coverage)
        subjects = [(key, value) for key in REMEMBERED_KEYS for value in sorted(coverage.get(key, set()))]
        revocation = consent_revocation_files_record(
            revocation_id=revocation.pk,
            files=[{"id": f.pk, "path": f.path, "role": f.role, "sha256": f.sha256, "archive": f.source_id is None and S.is_archive(f.path)} for f in files],
            frames=frames,
            subjects=subjects,
        )
    withdrawn = {int(f["id"]): f for f in revocation.files}
    _request_selections(version=version)
    return _notify_downloaders(revocation=revocation, version=version, withdrawn=withdrawn)


def _request_selections(*, version: DatasetVersion) -> None:
    """Every subset held by a live entitlement of the version is rebuilt without the
    withdrawn files (a worker builds each once)."""
    withheld = sorted(withdrawn_files(version_id=version.pk))
    held = Entitlement.objects.filter(version=version, revoked_at__isnull=True).values_list("subset", flat=True)
    subsets = {S.subset_parse(subset) if subset else None for subset in held}
    with transaction.atomic():
        for subset in sorted(subsets, key=lambda s: s.key if s else ""):
            selection_request(version=version, subset=subset, withheld_file_ids=withheld)


def _notify_downloaders(*, revocation, version: DatasetVersion, withdrawn: dict[int, dict]) -> list[ConsentNotice]:
    by_key = {}
    for f in withdrawn.values():
        by_key.setdefault(f["path"], f)
    downloaded: dict[int, set[str]] = {}
    logs = DownloadLog.objects.filter(entitlement__version=version, path__in=list(by_key)).values_list("entitlement__buyer_id", "path").distinct()
    for buyer_id, path in logs:
        downloaded.setdefault(buyer_id, set()).add(path)
    listing = Listing.objects.filter(dataset_id=version.dataset_id).first()
    notices = []
    for buyer_id, paths in sorted(downloaded.items()):
        notice = _notice_issue(revocation=revocation, version=version, listing=listing, buyer_id=buyer_id, files=[{"path": p, "sha256": by_key[p].get("sha256", "")} for p in sorted(paths)])
        notices.append(notice)
    return notices


def _notice_issue(*, revocation, version: DatasetVersion, listing: Listing, buyer_id: int, files: list[dict]) -> ConsentNotice:
    try:
        with transaction.atomic():
            notice = ConsentNotice.objects.create(
                revocation_id=revocation.pk, buyer_id=buyer_id, listing=listing, version=version, files=files, requested_on=revocation.requested_on
            )
            audit_event_record(
                actor=None,
                action="consent.notice",
                obj=notice,
                organization=notice.buyer,
                before={},
                after={"revocation": revocation.pk, "listing": listing.slug, "version": version.number, "files": [f["path"] for f in files]},
            )
            publish(ConsentNoticeIssued(notice_id=notice.pk, buyer_id=buyer_id, listing=listing.slug, version=version.number, files=[f["path"] for f in files]))
    except IntegrityError:  # issued already (the reaction ran twice)
        notice = ConsentNotice.objects.get(revocation_id=revocation.pk, buyer_id=buyer_id)
    return notice


@transaction.atomic
def consent_notice_acknowledge(*, notice: ConsentNotice, actor) -> ConsentNotice:
    """A buyer member confirms the organization deleted the notice's files (idempotent)."""
    locked = ConsentNotice.objects.select_for_update().select_related("buyer", "listing", "version").get(pk=notice.pk)
    if locked.acknowledged_at is not None:
        return locked
    locked.acknowledged_at, locked.acknowledged_by = timezone.now(), actor
    locked.save(update_fields=["acknowledged_at", "acknowledged_by"])
    audit_event_record(
        actor=actor,
        action="consent.acknowledge",
        obj=locked,
        organization=locked.buyer,
        before={"acknowledged": False},
        after={"acknowledged": True, "files": [f["path"] for f in locked.files]},
    )
    return locked


def consent_revocations_reconcile(*, grace_seconds: int = 60) -> int:
    """Apply the revocations whose reaction was lost (files never listed, recorded more than
    ``grace_seconds`` ago): part of the listings' periodic reconciliation. Returns how many."""
    ids = consent_revocations_unlisted(recorded_before=timezone.now() - timedelta(seconds=grace_seconds))
    for revocation_id in ids:
        log.warning("consent revocation %s was never applied; applying it now", revocation_id)
        consent_revocation_apply(revocation_id=revocation_id)
    return len(ids)
