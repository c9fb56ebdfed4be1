"""Celery tasks of the store front (queue ``default``)."""

from __future__ import annotations

from celery import shared_task

from marketplace.listings.services import listings_reconcile
from marketplace.listings.services.selections import selection_build, version_index_build


@shared_task(name="marketplace.listings.tasks.listings_reconcile")
def listings_reconcile_task(batch: int = 500) -> dict:
    """The periodic repair of listings a lost reaction left wrong (beat, every few minutes)."""
    return listings_reconcile(batch=batch)


@shared_task(name="marketplace.listings.tasks.version_index", acks_late=True)
def version_index_task(version_id: int) -> int:
    """Index a published version's images for its subsets (once; a repeat is a no-op)."""
    return version_index_build(version_id=version_id).pk


@shared_task(name="marketplace.listings.tasks.selection_build", acks_late=True)
def selection_build_task(selection_id: int) -> str:
    """Build a selection's files (once; a repeat returns the built one)."""
    return selection_build(selection_id=selection_id).state
