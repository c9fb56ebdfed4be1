"""Writes for notifications and webhooks: the fan-out of an event to its organization's
members and webhooks, the marking of notifications read, webhook registration and secret
rotation, and the delivery attempts the worker makes (signed, retried with exponential
back-off, logged)."""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import secrets
import uuid
from datetime import datetime, timedelta

import urllib3
from django.conf import settings
from django.db import transaction
from django.utils import timezone

from marketplace.accounts.models import Membership, Organization, OrganizationRole
from marketplace.audit.services import audit_event_record
from marketplace.core.errors import InvalidInput, field_error
from marketplace.notifications import ssrf
from marketplace.notifications.errors import NotificationErrorCode
from marketplace.notifications.models import DeliveryState, EventKind, Notification, Webhook, WebhookDelivery

log = logging.getLogger(__name__)

# Event ids are derived from what happened (uuid5), so a reaction delivered twice writes once.
EVENT_NAMESPACE = uuid.UUID("6f1c2b7e-0a53-4f55-9a63-2d1b1f3c9e10")
SIGNATURE_HEADER = "X-Market-Signature"
TIMESTAMP_HEADER = "X-Market-Timestamp"


def event_id_for(kind: str, key: str) -> uuid.UUID:
    return uuid.uuid5(EVENT_NAMESPACE, f"{kind}:{key}")


@transaction.atomic
def notify(*, organization_id: int, kind: str, key: str, title: str, payload: dict, roles: tuple[str, ...]) -> uuid.UUID:
    """Tell an organization that ``kind`` happened: one notification per member holding one
    of ``roles`` (admins always), and one delivery per active webhook that wants ``kind``,
    sent by a worker once this commits. ``key`` names the occurrence; the same ``(kind,
    key)`` notified again adds nothing."""
    if kind not in EventKind.values:
        raise ValueError(f"unknown event kind {kind!r}")
    event_id = event_id_for(kind, key)
    org = Organization.objects.get(pk=organization_id)
    users = set(
        Membership.objects.filter(organization=org, role__in={*roles, OrganizationRole.ADMIN}).values_list("user_id", flat=True)
    )
    Notification.objects.bulk_create(
        [Notification(organization=org, user_id=u, event_id=event_id, kind=kind, title=title[:300], payload=payload) for u in sorted(users)],
        ignore_conflicts=True,
    )
    now = timezone.now()
    hooks = [h for h in Webhook.objects.filter(organization=org, is_active=True) if h.wants(kind)]
    WebhookDelivery.objects.bulk_create(
        [WebhookDelivery(webhook=h, event_id=event_id, kind=kind, payload=payload, next_attempt_at=now) for h in hooks],
        ignore_conflicts=True,
    )
    due = list(
        WebhookDelivery.objects.filter(webhook__in=hooks, event_id=event_id, state=DeliveryState.PENDING, attempts=0).values_list("pk", flat=True)
    )
    _enqueue_on_commit([str(pk) for pk in due])
    return event_id


def _enqueue_on_commit(delivery_ids: list[str], countdown: float = 0) -> None:
    def send() -> None:
        from marketplace.notifications.tasks import webhook_deliver_task

        for delivery_id in delivery_ids:
            webhook_deliver_task.apply_async(args=[delivery_id], countdown=countdown)

    if delivery_ids:
        transaction.on_commit(send)


def notifications_mark_read(*, user, ids: list[int] | None) -> int:
    """Mark the user's notifications read (the given ones, or all); returns how many changed."""
    qs = Notification.objects.filter(user=user, read_at__isnull=True)
    if ids is not None:
        qs = qs.filter(pk__in=ids)
    return qs.update(read_at=timezone.now())


# ---------------------------------------------------------------- webhooks


def _events_clean(events: list[str]) -> list[str]:
    unknown = sorted(set(events) - set(EventKind.values))
    if unknown:
        raise InvalidInput(
            "Unknown event kinds.",
            code=NotificationErrorCode.UNKNOWN_EVENT,
            details=[field_error("events", f"{e!r} is not one of {', '.join(EventKind.values)}", "invalid_choice") for e in unknown],
        )
    return [e for e in EventKind.values if e in set(events)]


def _target_checked(url: str) -> None:
    try:
        ssrf.target_check(url)
    except ssrf.TargetRefused as exc:
        raise InvalidInput(
            "That webhook URL is not allowed.", code=NotificationErrorCode.WEBHOOK_TARGET_REFUSED, details=[field_error("url", exc.reason, "target_refused")]
        ) from None


def _new_secret() -> str:
    return "whsec_" + secrets.token_hex(24)


@transaction.atomic
def webhook_create(*, organization: Organization, actor, url: str, events: list[str]) -> Webhook:
    """Register an endpoint (admins). The URL must be a public HTTPS address (ssrf); the
    returned webhook carries its secret, which the API shows this once."""
    events = _events_clean(events)
    _target_checked(url)
    webhook = Webhook.objects.create(organization=organization, url=url, events=events, secret=_new_secret(), created_by=actor)
    audit_event_record(actor=actor, action="webhook.create", obj=webhook, organization=organization, after={"url": url, "events": events})
    return webhook


@transaction.atomic
def webhook_rotate_secret(*, webhook: Webhook, actor) -> Webhook:
    """A new secret (shown once); deliveries from now on are signed with it."""
    locked = Webhook.objects.select_for_update().get(pk=webhook.pk)
    locked.secret, locked.secret_rotated_at = _new_secret(), timezone.now()
    locked.save(update_fields=["secret", "secret_rotated_at"])
    audit_event_record(actor=actor, action="webhook.rotate_secret", obj=locked, organization=webhook.organization)
    return locked


@transaction.atomic
def webhook_delete(*, webhook: Webhook, actor) -> None:
    """Stop delivering to the endpoint: it is deactivated (its delivery log stays)."""
    locked = Webhook.objects.select_for_update().get(pk=webhook.pk)
    if locked.is_active:
        locked.is_active = False
        locked.save(update_fields=["is_active"])
        WebhookDelivery.objects.filter(webhook=locked, state=DeliveryState.PENDING).update(state=DeliveryState.FAILED, last_error="webhook deleted")
        audit_event_record(actor=actor, action="webhook.delete", obj=locked, organization=webhook.organization, before={"active": True}, after={"active": False})


@transaction.atomic
def delivery_resend(*, delivery: WebhookDelivery, actor) -> WebhookDelivery:
    """Send a delivery again now (a fresh round of attempts), whatever its state."""
    locked = WebhookDelivery.objects.select_for_update().select_related("webhook").get(pk=delivery.pk)
    locked.state, locked.next_attempt_at, locked.attempts = DeliveryState.PENDING, timezone.now(), 0
    locked.save(update_fields=["state", "next_attempt_at", "attempts"])
    audit_event_record(actor=actor, action="webhook.resend", obj=locked.webhook, organization=delivery.webhook.organization, after={"delivery": str(locked.pk)})
    _enqueue_on_commit([str(locked.pk)])
    return locked


def delivery_body(delivery: WebhookDelivery) -> bytes:
    """The request body: the same bytes at every attempt."""
    document = {
        "id": str(delivery.event_id),
        "type": delivery.kind,
        "created_at": delivery.created_at.isoformat(),
        "organization": delivery.webhook.organization.slug,
        "data": delivery.payload,
    }
    return json.dumps(document, sort_keys=True, separators=(",", ":")).encode()


def signature(*, secret: str, timestamp: int, body: bytes) -> str:
    """HMAC-SHA256 of ``"{timestamp}.{body}"`` with the webhook's secret, as hex. A receiver
    recomputes it and compares in constant time, and refuses old timestamps (replays)."""
    return hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()


def retry_delay(attempts: int) -> float:
    """Seconds before attempt ``attempts + 1``: ``base * 2 ** (attempts - 1)``, capped."""
    return float(min(settings.WEBHOOKS_RETRY_BASE_SECONDS * 2 ** (attempts - 1), settings.WEBHOOKS_RETRY_MAX_SECONDS))


def delivery_attempt(*, delivery_id: str, now: datetime | None = None) -> float | None:
    """One attempt of a pending delivery (the worker's step). Returns the seconds until the
    next attempt when a retry is due, else None (delivered, given up, or nothing to do).

    The attempt is claimed under a row lock (a duplicate message finds it claimed or not
    due), the request is made outside any transaction, and its outcome is logged."""
    now = now or timezone.now()
    timeout = float(settings.WEBHOOKS_TIMEOUT_SECONDS)
    with transaction.atomic():
        delivery = (
            WebhookDelivery.objects.select_for_update(skip_locked=True, of=("self",))
            .select_related("webhook__organization")
            .filter(pk=delivery_id)
            .first()
        )
        if delivery is None or delivery.state != DeliveryState.PENDING or not delivery.webhook.is_active:
            return None
        if delivery.next_attempt_at and delivery.next_attempt_at > now + timedelta(seconds=1):
            return None  # not due: an early duplicate; the due message (or the sweeper) sends it
        delivery.attempts += 1
        # A lease: the sweeper leaves it alone while this attempt runs.
        delivery.next_attempt_at = now + timedelta(seconds=2 * timeout + 30)
        delivery.save(update_fields=["attempts", "next_attempt_at"])
    attempt = delivery.attempts
    body = delivery_body(delivery)
    timestamp = int(now.timestamp())
    headers = {
        "Content-Type": "application/json",
        "User-Agent": "segmentation-marketplace-webhooks/1",
        "X-Market-Event": delivery.kind,
        "X-Market-Delivery": str(delivery.pk),
        TIMESTAMP_HEADER: str(timestamp),
        SIGNATURE_HEADER: f"t={timestamp},v1={signature(secret=delivery.webhook.secret, timestamp=timestamp, body=body)}",
    }
    status_code, error = None, ""
    try:
        target = ssrf.target_check(delivery.webhook.url)
        response = ssrf.post(target, body=body, headers=headers, timeout=timeout)
        status_code = response.status
        if response.location:
            try:
                ssrf.target_check(response.location)
                error = f"redirect to {response.location} not followed"
            except ssrf.TargetRefused as exc:
                error = f"redirect to {response.location} refused: {exc.reason}"
        elif not 200 <= status_code < 300:
            error = f"answered {status_code}: {response.excerpt[:200]}"
    except ssrf.TargetRefused as exc:
        error = f"target refused: {exc.reason}"
    except (urllib3.exceptions.HTTPError, OSError) as exc:
        error = f"{type(exc).__name__}: {exc}"[:500]
    return _attempt_record(delivery_id=delivery.pk, attempt=attempt, at=now, status_code=status_code, error=error)


@transaction.atomic
def _attempt_record(*, delivery_id, attempt: int, at: datetime, status_code: int | None, error: str) -> float | None:
    delivery = WebhookDelivery.objects.select_for_update().get(pk=delivery_id)
    entry = {"attempt": attempt, "at": at.isoformat(), "status_code": status_code, "error": error, "retry_in": None}
    delay = None
    delivery.last_status_code, delivery.last_error = status_code, error
    if not error:
        delivery.state, delivery.delivered_at, delivery.next_attempt_at = DeliveryState.SUCCEEDED, timezone.now(), None
    elif delivery.attempts >= settings.WEBHOOKS_MAX_ATTEMPTS:
        delivery.state, delivery.next_attempt_at = DeliveryState.FAILED, None
    else:
        delay = retry_delay(delivery.attempts)
        entry["retry_in"] = delay
        delivery.next_attempt_at = at + timedelta(seconds=delay)
    delivery.log = [*delivery.log, entry][-50:]
    delivery.save(update_fields=["state", "delivered_at", "next_attempt_at", "last_status_code", "last_error", "log"])
    return delay


def deliveries_sweep(*, now: datetime | None = None) -> int:
    """Re-send pending deliveries whose attempt is overdue (a lost message, a dead worker);
    run by beat. Returns how many were re-sent."""
    now = now or timezone.now()
    overdue = list(
        WebhookDelivery.objects.filter(state=DeliveryState.PENDING, next_attempt_at__lte=now - timedelta(seconds=60), webhook__is_active=True)
        .order_by("next_attempt_at")
        .values_list("pk", flat=True)[:500]
    )
    with transaction.atomic():
        _enqueue_on_commit([str(pk) for pk in overdue])
    return len(overdue)
