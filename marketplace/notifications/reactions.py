"""How organizations hear about what happens: each handler turns a domain event into
notifications for the members concerned and deliveries to their webhooks. Wired in
``marketplace/reactions.py``."""

from __future__ import annotations

from datasets.events import VersionStateChanged
from datasets.models import DatasetVersion
from licensing.events import ConsentRevoked
from licensing.selectors import consent_revocation_get
from marketplace.accounts.models import OrganizationRole
from marketplace.listings.events import ConsentNoticeIssued, EntitlementGranted, EntitlementRevoked, NewVersionAvailable, OrderStateChanged
from marketplace.notifications.models import EventKind
from marketplace.notifications.services import notify

SELLERS = (OrganizationRole.SELLER,)
BUYERS = (OrganizationRole.BUYER,)
# An order leaving this state for one of these was decided by a seller member.
AWAITING_APPROVAL = "awaiting_approval"
DECISIONS = {"pending_payment": "approved", "rejected": "rejected"}


def on_version_state_changed(event: VersionStateChanged) -> None:
    """The seller organization hears of every move of its versions."""
    version = DatasetVersion.objects.select_related("dataset").get(pk=event.version_id)
    notify(
        organization_id=version.dataset.owner_id,
        kind=EventKind.VERSION_STATE_CHANGED,
        key=f"{event.version_id}:{event.before}>{event.after}:{version.state_changed_at.isoformat()}",
        title=f"{version.dataset.slug} v{version.number}: {event.before} → {event.after}",
        payload={"dataset": version.dataset.slug, "version": version.number, "version_id": version.pk, "before": event.before, "after": event.after},
        roles=SELLERS,
    )


def on_order_state_changed(event: OrderStateChanged) -> None:
    """Buyer and seller organizations hear of the order; a decision on an order that
    awaited approval is its own kind."""
    decided = event.before == AWAITING_APPROVAL and event.after in DECISIONS
    kind = EventKind.ORDER_DECIDED if decided else EventKind.ORDER_STATE_CHANGED
    payload = {
        "order": event.order_id,
        "listing": event.listing,
        "version": event.version,
        "before": event.before or None,
        "after": event.after,
        "reason": event.reason,
    }
    what = f"order {event.order_id} for {event.listing} v{event.version}"
    title = f"{what}: {DECISIONS[event.after]}" if decided else f"{what}: {event.after}"
    for organization_id, roles in ((event.buyer_id, BUYERS), (event.seller_id, SELLERS)):
        notify(organization_id=organization_id, kind=kind, key=f"{event.order_id}:{event.before}>{event.after}", title=title, payload=payload, roles=roles)


def on_entitlement_granted(event: EntitlementGranted) -> None:
    notify(
        organization_id=event.buyer_id,
        kind=EventKind.ENTITLEMENT_GRANTED,
        key=str(event.entitlement_id),
        title=f"You may download {event.listing} v{event.version}",
        payload={"entitlement": event.entitlement_id, "listing": event.listing, "version": event.version, "subset": event.subset or None},
        roles=BUYERS,
    )


def on_entitlement_revoked(event: EntitlementRevoked) -> None:
    notify(
        organization_id=event.buyer_id,
        kind=EventKind.ENTITLEMENT_REVOKED,
        key=str(event.entitlement_id),
        title=f"Your entitlement to {event.listing} v{event.version} was revoked",
        payload={"entitlement": event.entitlement_id, "listing": event.listing, "version": event.version, "reason": event.reason},
        roles=BUYERS,
    )


def on_new_version_available(event: NewVersionAvailable) -> None:
    free = f"; claim it free until {event.free_until[:10]}" if event.free_until else ""
    notify(
        organization_id=event.buyer_id,
        kind=EventKind.NEW_VERSION_AVAILABLE,
        key=f"{event.entitlement_id}:{event.version}",
        title=f"{event.listing} v{event.version} is out (you hold v{event.held_version}){free}",
        payload={
            "listing": event.listing,
            "version": event.version,
            "entitlement": event.entitlement_id,
            "held_version": event.held_version,
            "free_until": event.free_until or None,
            "claim": f"/api/v1/entitlements/{event.entitlement_id}/claim-update/" if event.free_until else None,
        },
        roles=BUYERS,
    )


def on_consent_notice_issued(event: ConsentNoticeIssued) -> None:
    """A buyer organization downloaded files whose consent was revoked: its members and
    webhooks hear which files to delete, and where to acknowledge it."""
    count = len(event.files)
    notify(
        organization_id=event.buyer_id,
        kind=EventKind.CONSENT_REVOKED,
        key=str(event.notice_id),
        title=f"Consent was revoked for {count} file{'s' if count != 1 else ''} of {event.listing} v{event.version} you downloaded: delete them",
        payload={
            "notice": event.notice_id,
            "listing": event.listing,
            "version": event.version,
            "files": event.files,
            "acknowledge": f"/api/v1/consent-notices/{event.notice_id}/acknowledge/",
        },
        roles=BUYERS,
    )


def on_consent_revoked(event: ConsentRevoked) -> None:
    """The seller organization hears what a revocation it recorded withdrew and by when a
    version without those files is due."""
    revocation = consent_revocation_get(revocation_id=event.revocation_id)
    version = revocation.version
    due = f"; publish a version without them by {revocation.deadline.date().isoformat()}" if revocation.state == "pending" else ""
    notify(
        organization_id=version.dataset.owner_id,
        kind=EventKind.CONSENT_REVOKED,
        key=f"revocation:{revocation.pk}",
        title=f"Consent revoked on {version.dataset.slug} v{version.number}: {len(revocation.files)} files withdrawn{due}",
        payload={
            "revocation": revocation.pk,
            "dataset": version.dataset.slug,
            "version": version.number,
            "version_id": version.pk,
            "state": revocation.state,
            "deadline": revocation.deadline.isoformat() if revocation.state == "pending" else None,
            "files": [f["path"] for f in revocation.files],
        },
        roles=SELLERS,
    )
