"""Writes for orders, entitlements, sales terms, update claims and downloads. Atomic,
keyword-only, audited."""


from __future__ import annotations

import calendar
from datetime import timedelta
from typing import Any

from django.conf import settings
from django.db import IntegrityError, transaction
from django.utils import timezone

from datasets.models import Dataset, DatasetVersion
from datasets.states import VersionState
from marketplace.accounts.models import Organization
from marketplace.accounts.selectors import organizations_for
from marketplace.audit.services import audit_event_record
from marketplace.core.errors import Conflict, Forbidden, InvalidInput, NotFound, field_error
from marketplace.core.events import publish
from marketplace.core.storage import get_storage
from marketplace.listings.errors import ListingErrorCode
from marketplace.listings.events import EntitlementGranted, EntitlementRevoked, NewVersionAvailable, OrderStateChanged
from marketplace.listings.models import (
    CANCELLABLE_ORDER_STATES,
    OPEN_ORDER_STATES,
    DownloadLog,
    Entitlement,
    Listing,
    Order,
    OrderState,
    SalesTerms,
)
from marketplace.listings.selectors import entitlement_grant
from marketplace.listings.services.selections import selection_request, subset_quote
from marketplace.listings.subsets import Subset, subset_parse

# Orders and entitlements --------------------------------------------------------------
# Lock order (deadlock avoidance, as Saleor does): Organization, then Listing, then Order,
# then Entitlement; within one table, ascending pk.


def _order_snapshot(order) -> dict[str, Any]:
    return {
        "state": order.state,
        "listing": order.listing.slug,
        "version": order.version.number,
        "license": order.license,
        "price": str(order.price),
        "currency": order.currency,
        "intended_use": order.intended_use,
        "subset": order.subset or None,
    }


def _order_event(order, *, before: str, reason: str = "") -> None:
    publish(
        OrderStateChanged(
            order_id=order.pk,
            buyer_id=order.buyer_id,
            seller_id=order.listing.seller_id,
            listing=order.listing.slug,
            version=order.version.number,
            before=before,
            after=order.state,
            reason=reason,
        )
    )


def _find_existing_order(*, buyer, idempotency_key: str, version_id: int | None, subset_key: str = ""):
    order = Order.objects.select_related("listing", "version").filter(buyer=buyer, idempotency_key=idempotency_key).first()
    if order is None and version_id is not None:
        order = (
            Order.objects.select_related("listing", "version")
            .filter(buyer=buyer, version_id=version_id, subset_key=subset_key, state__in=OPEN_ORDER_STATES)
            .first()
        )
    return order


def sales_terms_for(*, dataset: Dataset) -> SalesTerms:
    """The dataset's sales terms (the defaults when the seller never set them)."""
    return SalesTerms.objects.filter(dataset=dataset).first() or SalesTerms(dataset=dataset)


@transaction.atomic
def sales_terms_set(
    *, dataset: Dataset, actor, requires_approval: bool, free_update_months: int | None, subset_prices: dict[str, str] | None = None
) -> SalesTerms:
    """The seller sets how the dataset is sold (from the next order on)."""
    terms, _ = SalesTerms.objects.select_for_update().get_or_create(dataset=dataset)

    def snapshot() -> dict:
        return {"requires_approval": terms.requires_approval, "free_update_months": terms.free_update_months, "subset_prices": terms.subset_prices}

    before = snapshot()
    terms.requires_approval, terms.free_update_months, terms.updated_by = requires_approval, free_update_months, actor
    terms.subset_prices = dict(subset_prices or {})
    terms.save()
    after = snapshot()
    audit_event_record(actor=actor, action="sales_terms.update", obj=dataset, organization=dataset.owner, before=before, after=after)
    return terms


def order_create(
    *,
    listing: Listing,
    buyer,
    user,
    license: str,
    version_number: int,
    idempotency_key: str,
    intended_use: str = "",
    subset: Subset | None = None,
):
    """Accept the license and order the listing's published version, or a declared subset of
    it (priced by the seller, else pro rata by frames); returns ``(order, created)``.

    A listing whose sales terms require the seller's approval takes the order into
    ``awaiting_approval`` (the buyer must state an intended use); otherwise it waits for
    payment, and a free one is paid at once (and the entitlement granted).

    A retried request (same buyer org and Idempotency-Key) returns the first order; any other
    request for a version the buyer org already has an open (awaiting, pending or paid) order
    for returns that order too, so concurrent requests create exactly one. Both rules are also
    DB constraints; the IntegrityError path covers the race between the check and the insert.
    """

    subset_key = subset.key if subset else ""

    def same_request(order) -> tuple[Any, bool]:
        if order.listing_id != listing.pk or order.version.number != version_number or order.subset_key != subset_key:
            raise Conflict(
                "This Idempotency-Key was used for another order.",
                code=ListingErrorCode.IDEMPOTENCY_KEY_REUSED,
                details=[field_error("Idempotency-Key", "used for another order", "reused")],
            )
        return order, False

    existing = _find_existing_order(buyer=buyer, idempotency_key=idempotency_key, version_id=None)
    if existing is not None:
        return same_request(existing)

    with transaction.atomic():
        Organization.objects.select_for_update().get(pk=buyer.pk)
        locked = Listing.objects.select_for_update(of=("self",)).select_related("version", "dataset").get(pk=listing.pk)
        if not locked.is_public or locked.version is None or locked.version.state != VersionState.PUBLISHED:
            raise NotFound("No such listing.", code=ListingErrorCode.NOT_FOUND)
        if version_number != locked.version_number:
            raise InvalidInput(
                "Only the listing's published version can be ordered.",
                code=ListingErrorCode.VERSION_NOT_AVAILABLE,
                details=[field_error("version", f"the published version is {locked.version_number}", "version_not_available")],
            )
        accepted = {lic.lower(): lic for lic in [*locked.licenses, locked.dataset.annotation_license] if lic}
        if license.lower() not in accepted:
            raise InvalidInput(
                "The license must be one the listing is offered under.",
                code=ListingErrorCode.LICENSE_NOT_OFFERED,
                details=[field_error("license", f"one of {sorted(accepted.values())}", "license_not_offered")],
            )
        terms = sales_terms_for(dataset=locked.dataset)
        needs_approval = terms.requires_approval
        price = locked.price
        if subset is not None:
            _frames, price = subset_quote(version=locked.version, subset=subset, price=locked.price, set_prices=terms.subset_prices)
        if needs_approval and not intended_use.strip():
            raise InvalidInput(
                "This listing needs the seller's approval: state your intended use.",
                code=ListingErrorCode.INTENDED_USE_REQUIRED,
                details=[field_error("intended_use", "required for this listing", "required")],
            )
        existing = _find_existing_order(buyer=buyer, idempotency_key=idempotency_key, version_id=locked.version_id, subset_key=subset_key)
        if existing is not None:
            if existing.idempotency_key == idempotency_key:
                return same_request(existing)
            return existing, False
        try:
            with transaction.atomic():
                order = Order.objects.create(
                    buyer=buyer,
                    listing=locked,
                    version=locked.version,
                    state=OrderState.AWAITING_APPROVAL if needs_approval else OrderState.PENDING_PAYMENT,
                    license=accepted[license.lower()],
                    accepted_by=user,
                    accepted_at=timezone.now(),
                    price=price,
                    currency=locked.currency,
                    idempotency_key=idempotency_key,
                    intended_use=intended_use.strip(),
                    subset=subset.to_dict() if subset else {},
                    subset_key=subset_key,
                )
        except IntegrityError:
            existing = _find_existing_order(buyer=buyer, idempotency_key=idempotency_key, version_id=locked.version_id, subset_key=subset_key)
            if existing is None:
                raise
            return same_request(existing) if existing.idempotency_key == idempotency_key else (existing, False)
        audit_event_record(actor=user, action="order.create", obj=order, organization=buyer, after=_order_snapshot(order))
        _order_event(order, before="")
        if order.price == 0 and order.state == OrderState.PENDING_PAYMENT:
            order = order_mark_paid(order=order, actor=user, reason="free listing")
    return order, True


def _order_locked(order) -> Order:
    return Order.objects.select_for_update(of=("self",)).select_related("listing", "version", "buyer").get(pk=order.pk)


def _order_moved(order: Order, *, actor, before: dict, action: str, reason: str) -> None:
    audit_event_record(actor=actor, action=action, obj=order, organization=order.buyer, before=before, after=_order_snapshot(order), reason=reason)
    _order_event(order, before=before["state"], reason=reason)


def _require_state(order: Order, states: tuple[str, ...], what: str) -> None:
    if order.state not in states:
        raise Conflict(
            f"An order in state {order.state!r} cannot be {what}.",
            code=ListingErrorCode.INVALID_ORDER_STATE,
            details=[field_error("state", f"must be one of {', '.join(states)}", "invalid_order_state")],
        )


def _reason_required(reason: str) -> None:
    if not reason.strip():
        raise InvalidInput("A reason is required.", code=ListingErrorCode.REASON_REQUIRED, details=[field_error("reason", "required", "required")])


@transaction.atomic
def order_approve(*, order, actor, reason: str = "") -> Order:
    """A seller member approves an order that awaited approval: it waits for payment (a free
    one is paid at once and its entitlement granted)."""
    locked = _order_locked(order)
    _require_state(locked, (OrderState.AWAITING_APPROVAL,), "approved")
    before = _order_snapshot(locked)
    locked.state, locked.decided_at, locked.decided_by, locked.decision_reason = OrderState.PENDING_PAYMENT, timezone.now(), actor, reason.strip()
    locked.save(update_fields=["state", "decided_at", "decided_by", "decision_reason"])
    _order_moved(locked, actor=actor, before=before, action="order.approve", reason=reason)
    if locked.price == 0:
        locked = order_mark_paid(order=locked, actor=actor, reason="free listing, approved")
    return locked


@transaction.atomic
def order_reject(*, order, actor, reason: str) -> Order:
    """A seller member declines an order that awaited approval, with a reason; no
    entitlement ever comes of it."""
    _reason_required(reason)
    locked = _order_locked(order)
    _require_state(locked, (OrderState.AWAITING_APPROVAL,), "rejected")
    before = _order_snapshot(locked)
    now = timezone.now()
    locked.state, locked.decided_at, locked.decided_by, locked.decision_reason, locked.closed_at = OrderState.REJECTED, now, actor, reason.strip(), now
    locked.save(update_fields=["state", "decided_at", "decided_by", "decision_reason", "closed_at"])
    _order_moved(locked, actor=actor, before=before, action="order.reject", reason=reason)
    return locked


@transaction.atomic
def order_cancel(*, order, actor, reason: str = "") -> Order:
    """The buyer withdraws an order that was not paid (awaiting approval or payment)."""
    locked = _order_locked(order)
    _require_state(locked, CANCELLABLE_ORDER_STATES, "cancelled")
    before = _order_snapshot(locked)
    locked.state, locked.closed_at = OrderState.CANCELLED, timezone.now()
    locked.save(update_fields=["state", "closed_at"])
    _order_moved(locked, actor=actor, before=before, action="order.cancel", reason=reason)
    return locked


def payment_independence_check(*, order: Order, actor, what: str) -> None:
    """Refuse (403 ``own_organization``) a staff member who belongs to the order's buyer
    organization: recording a payment grants the entitlement and a refund returns the money,
    so nobody settles their own organization's order."""
    if organizations_for(user=actor).filter(pk=order.buyer_id).exists():
        raise Forbidden(
            f"You are a member of the organization that placed this order: another staff member must {what} it.",
            code=ListingErrorCode.OWN_ORGANIZATION,
            details=[field_error("order", "an order of your own organization", ListingErrorCode.OWN_ORGANIZATION)],
        )


@transaction.atomic
def order_payment_record(*, order, actor, reason: str = "") -> Order:
    """Platform staff record that an order was paid (B2B invoicing): the entitlement is
    granted. A member of the buyer organization is refused."""
    payment_independence_check(order=order, actor=actor, what="mark as paid")
    return order_mark_paid(order=order, actor=actor, reason=reason)


@transaction.atomic
def order_refund(*, order, actor, reason: str) -> Order:
    """Staff refund a paid order: it ends ``refunded`` and its entitlement is revoked. A
    member of the buyer organization is refused."""
    payment_independence_check(order=order, actor=actor, what="refund")
    _reason_required(reason)
    locked = _order_locked(order)
    _require_state(locked, (OrderState.PAID,), "refunded")
    before = _order_snapshot(locked)
    locked.state, locked.closed_at = OrderState.REFUNDED, timezone.now()
    locked.save(update_fields=["state", "closed_at"])
    _order_moved(locked, actor=actor, before=before, action="order.refund", reason=reason)
    entitlement = Entitlement.objects.filter(order=locked).first()
    if entitlement is not None:
        entitlement_revoke(entitlement=entitlement, actor=actor, reason=f"order refunded: {reason.strip()}")
    return locked


def _add_months(moment, months: int):
    month = moment.month - 1 + months
    year, month = moment.year + month // 12, month % 12 + 1
    day = min(moment.day, calendar.monthrange(year, month)[1])
    return moment.replace(year=year, month=month, day=day)


def update_claim_until(*, entitlement: Entitlement, terms: SalesTerms):
    """Until when the entitlement's holder may claim newer versions free (None: never)."""
    if terms.free_update_months is None:
        return None
    return _add_months(entitlement.granted_at, terms.free_update_months)


def entitlement_update_claim(*, entitlement: Entitlement, user) -> tuple[Order, bool]:
    """Claim the listing's newer published version free, under its update policy; returns
    ``(order, created)``. The claim is a paid order of price 0 with its own entitlement (the
    old one stays). Conflict ``no_newer_version`` when the entitlement is to the current
    version, ``update_not_free`` when the policy gives no free updates or its window closed."""
    with transaction.atomic():
        Organization.objects.select_for_update().get(pk=entitlement.buyer_id)
        ent = Entitlement.objects.select_related("listing", "version", "listing__dataset").get(pk=entitlement.pk)
        listing = Listing.objects.select_for_update(of=("self",)).select_related("version").get(pk=ent.listing_id)
        current = listing.version
        if not listing.is_public or current is None or current.state != VersionState.PUBLISHED or current.number <= ent.version.number:
            raise Conflict("There is no newer version to claim.", code=ListingErrorCode.NO_NEWER_VERSION)
        until = update_claim_until(entitlement=ent, terms=sales_terms_for(dataset=ent.listing.dataset))
        if until is None or until < timezone.now():
            raise Conflict(
                "The listing's update policy gives no free update for this entitlement: order the new version.",
                code=ListingErrorCode.UPDATE_NOT_FREE,
                details=[field_error("entitlement", "no free update" if until is None else f"free updates ended {until.isoformat()}", "update_not_free")],
            )
        key = f"update-claim:{ent.pk}:{current.pk}"
        claimed = Order.objects.filter(buyer_id=ent.buyer_id, idempotency_key=key).first()
        if claimed is not None:
            return claimed, False
        open_order = Order.objects.filter(buyer_id=ent.buyer_id, version=current, subset_key=ent.subset_key, state__in=OPEN_ORDER_STATES).first()
        if open_order is not None:
            if open_order.state == OrderState.PAID:
                return open_order, False  # the organization holds the new version already
            raise Conflict(
                "An order for the new version is open: cancel it, then claim.",
                code=ListingErrorCode.INVALID_ORDER_STATE,
                details=[field_error("order", f"order {open_order.pk} is {open_order.state}", "order_open")],
            )
        order = Order.objects.create(
            buyer_id=ent.buyer_id,
            listing=listing,
            version=current,
            license=ent.license,
            accepted_by=user,
            accepted_at=timezone.now(),
            price=0,
            currency=listing.currency,
            idempotency_key=key,
            claimed_from=ent,
            subset=ent.subset,
            subset_key=ent.subset_key,
        )
        audit_event_record(actor=user, action="order.update_claim", obj=order, organization=ent.buyer, after={**_order_snapshot(order), "claimed_from": ent.pk})
        _order_event(order, before="")
        return order_mark_paid(order=order, actor=user, reason=f"free update of entitlement {ent.pk}"), True


@transaction.atomic
def order_mark_paid(*, order, actor, reason: str = ""):
    """Mark an order paid and grant its entitlement (idempotent: a paid order stays as it is).
    The free paths call it directly; staff recording a payment go through
    ``order_payment_record``, which checks who they are."""
    locked = Order.objects.select_for_update().select_related("listing", "version").get(pk=order.pk)
    if locked.state == OrderState.PAID:
        return locked
    if locked.state != OrderState.PENDING_PAYMENT:
        raise Conflict(f"An order in state {locked.state!r} cannot be paid.", code=ListingErrorCode.INVALID_ORDER_STATE)
    before = _order_snapshot(locked)
    locked.state, locked.paid_at, locked.paid_by = OrderState.PAID, timezone.now(), actor
    locked.save(update_fields=["state", "paid_at", "paid_by"])
    audit_event_record(
        actor=actor, action="order.paid", obj=locked, organization=locked.buyer, before=before, after=_order_snapshot(locked), reason=reason
    )
    _order_event(locked, before=before["state"], reason=reason)
    entitlement = Entitlement.objects.create(
        buyer_id=locked.buyer_id,
        version=locked.version,
        listing=locked.listing,
        order=locked,
        license=locked.license,
        subset=locked.subset,
        subset_key=locked.subset_key,
    )
    audit_event_record(
        actor=actor,
        action="entitlement.grant",
        obj=entitlement,
        organization=locked.buyer,
        after={"version": locked.version_id, "order": locked.pk, "license": locked.license, "subset": locked.subset or None},
    )
    if locked.subset:  # its files: a selection a worker builds now, not at the first download
        selection_request(version=locked.version, subset=subset_parse(locked.subset), withheld_file_ids=[])
    publish(
        EntitlementGranted(
            entitlement_id=entitlement.pk, buyer_id=locked.buyer_id, listing=locked.listing.slug, version=locked.version.number, subset=locked.subset
        )
    )
    return locked


@transaction.atomic
def entitlement_revoke(*, entitlement, actor, reason: str = ""):
    """Revoke an entitlement: no URL is issued for it from here on (idempotent)."""
    locked = Entitlement.objects.select_for_update().select_related("listing", "version").get(pk=entitlement.pk)
    if locked.revoked_at is not None:
        return locked
    locked.revoked_at, locked.revoked_by, locked.revoke_reason = timezone.now(), actor, reason
    locked.save(update_fields=["revoked_at", "revoked_by", "revoke_reason"])
    audit_event_record(
        actor=actor,
        action="entitlement.revoke",
        obj=locked,
        organization=locked.buyer,
        before={"revoked": False},
        after={"revoked": True},
        reason=reason,
    )
    publish(EntitlementRevoked(entitlement_id=locked.pk, buyer_id=locked.buyer_id, listing=locked.listing.slug, version=locked.version.number, reason=reason))
    return locked


def new_version_announce(*, version_id: int) -> int:
    """Tell every buyer organization holding a live entitlement to an older version of the
    dataset that ``version_id`` is published, and whether (until when) they claim it free.
    One announcement per organization, for its newest entitlement. Returns how many."""
    version = DatasetVersion.objects.select_related("dataset").filter(pk=version_id, state=VersionState.PUBLISHED).first()
    if version is None:
        return 0
    terms = sales_terms_for(dataset=version.dataset)
    holders = (
        Entitlement.objects.filter(listing__dataset=version.dataset, revoked_at__isnull=True, version__number__lt=version.number)
        .select_related("version")
        .order_by("buyer_id", "-version__number", "-granted_at")
    )
    newest: dict[int, Entitlement] = {}
    for ent in holders:
        newest.setdefault(ent.buyer_id, ent)
    for ent in newest.values():
        until = update_claim_until(entitlement=ent, terms=terms)
        free = until is not None and until >= timezone.now()
        publish(
            NewVersionAvailable(
                buyer_id=ent.buyer_id,
                entitlement_id=ent.pk,
                listing=version.dataset.slug,
                version=version.number,
                held_version=ent.version.number,
                free_until=until.isoformat() if free else "",
            )
        )
    return len(newest)


def download_urls_issue(*, entitlement, user, files: list) -> list[dict[str, Any]]:
    """Presigned (S3) or signed (local) URLs for the given manifest rows, one DownloadLog row each.

    No transaction of its own: the log is one multi-row INSERT (atomic by itself), written
    before the URLs leave the server."""
    storage = get_storage()
    ttl = int(settings.PRESIGNED_URL_TTL_SECONDS)
    expires_at = timezone.now() + timedelta(seconds=ttl)
    out, logs = [], []
    for f in files:
        filename = f.path.rsplit("/", 1)[-1]
        url = storage.download_url(f.storage_key, ttl=ttl, filename=filename, grant=entitlement_grant(entitlement))
        out.append({"file": f, "url": url, "expires_at": expires_at})
        logs.append(DownloadLog(entitlement=entitlement, user=user, path=f.path, storage_key=f.storage_key, ttl_seconds=ttl))
    DownloadLog.objects.bulk_create(logs)
    return out
