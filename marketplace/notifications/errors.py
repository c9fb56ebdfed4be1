"""Error codes of notifications and webhooks. Clients key on these values: they never change meaning."""

from enum import StrEnum


class NotificationErrorCode(StrEnum):
    DELIVERY_NOT_FOUND = "delivery_not_found"
    NOTIFICATION_NOT_FOUND = "notification_not_found"
    UNKNOWN_EVENT = "unknown_event"
    WEBHOOK_NOT_FOUND = "webhook_not_found"
    WEBHOOK_TARGET_REFUSED = "webhook_target_refused"
