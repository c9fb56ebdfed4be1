"""Reads for notifications and webhooks. A user sees their own notifications (within one
organization when the request names it); an organization's admins see its webhooks and
their deliveries. Anyone else gets NotFound."""

from __future__ import annotations

from django.db.models import QuerySet

from marketplace.accounts.models import Organization, OrganizationRole
from marketplace.core.errors import NotFound
from marketplace.notifications.errors import NotificationErrorCode
from marketplace.notifications.models import Notification, Webhook, WebhookDelivery


def notifications_for(*, user, slug: str | None = None, unread: bool | None = None) -> QuerySet[Notification]:
    qs = Notification.objects.filter(user=user, organization__memberships__user=user).distinct().select_related("organization")
    if slug:
        qs = qs.filter(organization__slug=slug)
    if unread is not None:
        qs = qs.filter(read_at__isnull=unread)
    return qs


def _admin_organizations(user) -> QuerySet[Organization]:
    return Organization.objects.filter(memberships__user=user, memberships__role=OrganizationRole.ADMIN)


def webhooks_for_admin(*, user) -> QuerySet[Webhook]:
    return Webhook.objects.filter(organization__in=_admin_organizations(user)).select_related("organization")


def webhook_for_admin(*, user, webhook_id: int) -> Webhook:
    webhook = webhooks_for_admin(user=user).filter(pk=webhook_id).first()
    if webhook is None:
        raise NotFound("No such webhook.", code=NotificationErrorCode.WEBHOOK_NOT_FOUND)
    return webhook


def webhook_deliveries(*, webhook: Webhook) -> QuerySet[WebhookDelivery]:
    return WebhookDelivery.objects.filter(webhook=webhook).select_related("webhook")


def delivery_for_admin(*, user, delivery_id) -> WebhookDelivery:
    delivery = (
        WebhookDelivery.objects.select_related("webhook__organization")
        .filter(pk=delivery_id, webhook__organization__in=_admin_organizations(user))
        .first()
    )
    if delivery is None:
        raise NotFound("No such delivery.", code=NotificationErrorCode.DELIVERY_NOT_FOUND)
    return delivery
