"""Celery tasks of the store front (queue ``default``)."""

from __future__ import annotations

from celery import shared_task

from marketplace.listings.services import listings_reconcile


@shared_task(name="marketplace.listings.tasks.listings_reconcile")
def listings_reconcile_task(batch: int = 500) -> dict:
    """The periodic repair of listings a lost reaction left wrong (beat, every few minutes)."""
    return listings_reconcile(batch=batch)
