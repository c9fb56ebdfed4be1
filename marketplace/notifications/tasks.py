"""Celery tasks of notifications (queue ``default``): webhook deliveries and their sweep."""

from __future__ import annotations

from celery import shared_task

from marketplace.notifications.services import deliveries_sweep, delivery_attempt


@shared_task(name="marketplace.notifications.tasks.webhook_deliver", acks_late=True)
def webhook_deliver_task(delivery_id: str) -> float | None:
    """One attempt; when it failed and another is due, the next is scheduled after the
    back-off (the sweeper re-sends it should this message be lost)."""
    delay = delivery_attempt(delivery_id=delivery_id)
    if delay is not None:
        webhook_deliver_task.apply_async(args=[delivery_id], countdown=delay)
    return delay


@shared_task(name="marketplace.notifications.tasks.deliveries_sweep")
def deliveries_sweep_task() -> int:
    """Beat: re-send overdue deliveries."""
    return deliveries_sweep()
