"""How the store front follows what it shows: every handler re-syncs a dataset's listing
from its published version (``listing_sync`` is idempotent). Wired to the events in
``marketplace/reactions.py``."""

from __future__ import annotations

from datasets.events import DatasetChanged, VersionStateChanged
from datasets.models import DatasetVersion
from datasets.states import VersionState
from licensing.events import ChecksCompleted, ConsentRevoked, ProvenanceReviewed
from marketplace.listings.services import consent_revocation_apply, listing_sync_by_id, new_version_announce
from quality.events import QualityReportStored


def on_dataset_changed(event: DatasetChanged) -> None:
    listing_sync_by_id(dataset_id=event.dataset_id)


def on_version_state_changed(event: VersionStateChanged) -> None:
    """A version entered or left ``published``: the listing shows it, or hides."""
    if VersionState.PUBLISHED in (event.before, event.after):
        listing_sync_by_id(dataset_id=event.dataset_id)


def on_version_published_tell_holders(event: VersionStateChanged) -> None:
    """A newly published version: holders of older versions hear of it (and of a free claim)."""
    if event.after == VersionState.PUBLISHED and event.before != VersionState.SUSPENDED:
        new_version_announce(version_id=event.version_id)


def on_version_evidence_changed(event: QualityReportStored | ProvenanceReviewed | ChecksCompleted | ConsentRevoked) -> None:
    """New figures, reviewed provenance, new check results or a consent revocation (pending
    until its deadline) of a published version."""
    version = DatasetVersion.objects.filter(pk=event.version_id, state=VersionState.PUBLISHED).only("dataset_id").first()
    if version is not None:
        listing_sync_by_id(dataset_id=version.dataset_id)


def on_consent_revoked(event: ConsentRevoked) -> None:
    """A consent revocation: its files are listed and withdrawn from every entitlement, and
    the buyer organizations that downloaded them are told to delete them."""
    consent_revocation_apply(revocation_id=event.revocation_id)
