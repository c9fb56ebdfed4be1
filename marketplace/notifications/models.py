"""In-app notifications (per user, within an organization) and the organizations' signed
webhooks with their delivery log."""

from __future__ import annotations

import uuid

from django.conf import settings
from django.db import models


class EventKind(models.TextChoices):
    """What a notification or a webhook delivery is about (its ``type``)."""

    VERSION_STATE_CHANGED = "version.state_changed"
    ORDER_STATE_CHANGED = "order.state_changed"
    ORDER_DECIDED = "order.decided"
    ENTITLEMENT_GRANTED = "entitlement.granted"
    ENTITLEMENT_REVOKED = "entitlement.revoked"
    NEW_VERSION_AVAILABLE = "version.new_available"
    CONSENT_REVOKED = "consent.revoked"


class Notification(models.Model):
    """One user's copy of something that happened to their organization (read or not)."""

    organization = models.ForeignKey("accounts.Organization", on_delete=models.CASCADE, related_name="+")
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="notifications")
    event_id = models.UUIDField(help_text="the event it reports; one event reaches several users and webhooks")
    kind = models.CharField(max_length=32, choices=EventKind.choices)
    title = models.CharField(max_length=300)
    payload = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    read_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-pk"]
        indexes = [models.Index(fields=["user", "read_at", "-created_at"], name="notification_inbox")]
        constraints = [models.UniqueConstraint(fields=["user", "organization", "event_id"], name="notification_once_per_user")]


class Webhook(models.Model):
    """An HTTPS endpoint an organization's admin registered. Each delivery is signed with
    ``secret`` (HMAC-SHA256 over ``"{timestamp}.{body}"``). The secret is kept as is, as
    the platform must sign with it; the API shows it only when it is created or rotated."""

    organization = models.ForeignKey("accounts.Organization", on_delete=models.CASCADE, related_name="webhooks")
    url = models.URLField(max_length=2000)
    secret = models.CharField(max_length=64)
    events = models.JSONField(default=list, blank=True, help_text="event kinds delivered; empty: all")
    is_active = models.BooleanField(default=True)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)
    secret_rotated_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["organization_id", "pk"]

    def wants(self, kind: str) -> bool:
        return self.is_active and (not self.events or kind in self.events)


class DeliveryState(models.TextChoices):
    PENDING = "pending"  # waiting for its next attempt
    SUCCEEDED = "succeeded"  # the endpoint answered 2xx
    FAILED = "failed"  # every attempt failed; a re-send starts again


class WebhookDelivery(models.Model):
    """One event sent to one webhook, with every attempt in ``log``."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    webhook = models.ForeignKey(Webhook, on_delete=models.CASCADE, related_name="deliveries")
    event_id = models.UUIDField()
    kind = models.CharField(max_length=32, choices=EventKind.choices)
    payload = models.JSONField(default=dict)
    state = models.CharField(max_length=12, choices=DeliveryState.choices, default=DeliveryState.PENDING)
    attempts = models.PositiveIntegerField(default=0)
    next_attempt_at = models.DateTimeField(null=True, blank=True)
    last_status_code = models.PositiveIntegerField(null=True, blank=True)
    last_error = models.TextField(blank=True)
    # [{"attempt", "at", "status_code", "error", "retry_in"}], oldest first
    log = models.JSONField(default=list, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    delivered_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-pk"]
        indexes = [models.Index(fields=["state", "next_attempt_at"], name="delivery_due")]
        constraints = [
            models.CheckConstraint(condition=models.Q(state__in=DeliveryState.values), name="delivery_state_valid"),
            models.UniqueConstraint(fields=["webhook", "event_id"], name="delivery_once_per_event"),
        ]
