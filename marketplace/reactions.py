"""Every reaction in the system, in one table: when a lower app publishes an event (after
its transaction commits), these handlers of the higher apps run. Read this module to see
what follows from what; add a reaction here, nowhere else.

Lost reactions are repaired by the periodic reconciliations: the sweeper
(``workers.sweeper``) nudges versions stuck in the pipeline, ``listings_reconcile``
re-syncs listings that disagree with their sources.
"""

from __future__ import annotations

from datasets.events import AuditReferenceSubmitted, DatasetChanged, VersionStateChanged, VersionSubmitted
from licensing.events import ChecksCompleted, ConsentRevoked, ProvenanceReviewed
from marketplace.core.events import DomainEvent, Handler, subscribe
from marketplace.listings import reactions as listings
from marketplace.listings.events import ConsentNoticeIssued, EntitlementGranted, EntitlementRevoked, NewVersionAvailable, OrderStateChanged
from marketplace.notifications import reactions as notifications
from quality.events import QualityReportStored
from workers import reactions as pipeline

REACTIONS: tuple[tuple[type[DomainEvent], Handler], ...] = (
    # The pipeline: a submitted version starts it; the auditor's reference lets it go on.
    (VersionSubmitted, pipeline.on_version_submitted),
    (AuditReferenceSubmitted, pipeline.on_audit_reference_submitted),
    # The store front: a listing follows its dataset, its published version and the evidence.
    (DatasetChanged, listings.on_dataset_changed),
    (VersionStateChanged, listings.on_version_state_changed),
    (QualityReportStored, listings.on_version_evidence_changed),
    (ProvenanceReviewed, listings.on_version_evidence_changed),
    (ChecksCompleted, listings.on_version_evidence_changed),
    # A consent revocation marks the published version: the listing shows it is pending.
    (ConsentRevoked, listings.on_version_evidence_changed),
    # Holders of older versions hear of a newly published one.
    (VersionStateChanged, listings.on_version_published_tell_holders),
    # A consent revocation: its files are listed, withdrawn from entitlements, and the buyer
    # organizations that downloaded them are told to delete them.
    (ConsentRevoked, listings.on_consent_revoked),
    # Notifications and webhooks: organizations hear of what concerns them.
    (VersionStateChanged, notifications.on_version_state_changed),
    (OrderStateChanged, notifications.on_order_state_changed),
    (EntitlementGranted, notifications.on_entitlement_granted),
    (EntitlementRevoked, notifications.on_entitlement_revoked),
    (NewVersionAvailable, notifications.on_new_version_available),
    (ConsentNoticeIssued, notifications.on_consent_notice_issued),
    (ConsentRevoked, notifications.on_consent_revoked),
)


def connect() -> None:
    """Subscribe every handler above (at start-up, from the project's AppConfig)."""
    for event_type, handler in REACTIONS:
        subscribe(event_type, handler)
