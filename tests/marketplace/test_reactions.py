"""The reactions between the apps: domain events delivered after commit, wired in one
module, and the reconciliation that repairs a listing when a reaction is lost."""

from __future__ import annotations

import importlib
import logging
from dataclasses import dataclass

import pytest
from django.apps import apps
from django.db import transaction
from django.test import override_settings

from datasets.events import VersionStateChanged
from datasets.states import VersionState
from marketplace import reactions
from marketplace.core import events
from marketplace.listings import reactions as listing_reactions
from marketplace.listings.models import Listing
from marketplace.listings.services import listings_reconcile
from tests import factories
from tests.licensing.conftest import make_version, stats


@dataclass(frozen=True, kw_only=True)
class Probe(events.DomainEvent):
    n: int


@pytest.fixture
def probe_handler():
    seen: list[int] = []

    def handler(event: Probe) -> None:
        seen.append(event.n)

    events.subscribe(Probe, handler)
    yield seen
    events._handlers[Probe].clear()


def _declared_events() -> set[type[events.DomainEvent]]:
    """Every event class in any installed app's ``events`` module."""
    found = set()
    for config in apps.get_app_configs():
        try:
            module = importlib.import_module(f"{config.name}.events")
        except ModuleNotFoundError:
            continue
        found |= {v for v in vars(module).values() if isinstance(v, type) and issubclass(v, events.DomainEvent) and v is not events.DomainEvent}
    return found


def test_every_declared_event_has_a_reaction_and_every_reaction_is_connected():
    declared = _declared_events()
    assert declared, "no events module found"
    wired = {event_type for event_type, _ in reactions.REACTIONS}
    assert declared == wired, f"events without a reaction: {declared - wired}; reactions to undeclared events: {wired - declared}"
    for event_type, handler in reactions.REACTIONS:
        assert handler in events.handlers_for(event_type), f"{handler} is not connected to {event_type.__name__}"


@pytest.mark.django_db(transaction=True)
def test_an_event_is_delivered_after_commit_and_never_for_a_rollback(probe_handler):
    with transaction.atomic():
        events.publish(Probe(n=1))
        assert probe_handler == []  # not inside the transaction
    assert probe_handler == [1]
    with pytest.raises(RuntimeError), transaction.atomic():
        events.publish(Probe(n=2))
        raise RuntimeError("roll back")
    assert probe_handler == [1]
    events.publish(Probe(n=3))  # no transaction open: at once
    assert probe_handler == [1, 3]


@pytest.mark.django_db(transaction=True)
def test_a_failing_reaction_is_logged_and_does_not_undo_the_change(caplog):
    def broken(event: Probe) -> None:
        raise ValueError("handler bug")

    events.subscribe(Probe, broken)
    try:
        with override_settings(EVENTS_RAISE_HANDLER_ERRORS=False), caplog.at_level(logging.ERROR):
            events.publish(Probe(n=1))
        assert "handler bug" in caplog.text and "reconciliation" in caplog.text
        with pytest.raises(ValueError, match="handler bug"):  # the test profile: loud
            events.publish(Probe(n=2))
    finally:
        events._handlers[Probe].clear()


@pytest.mark.django_db(transaction=True)
def test_the_listing_follows_the_moderators_decision_through_the_api(seller, moderator):
    version = make_version(seller, statistics=stats(("by-2", 3)), state=VersionState.IN_REVIEW)
    resp = moderator.client.post(f"/api/v1/moderation/versions/{version.pk}/decision/", {"decision": "approve", "reason": "ok"}, format="json")
    assert resp.status_code == 200, resp.content
    listing = Listing.objects.get(dataset=version.dataset)
    assert listing.is_public and listing.version_id == version.pk and listing.frames == 3


@pytest.mark.django_db(transaction=True)
def test_a_lost_reaction_is_repaired_by_the_reconciliation(seller, moderator):
    """Approval with the listing's reaction switched off leaves no listing; the periodic
    reconciliation finds the published version without one and makes it."""
    version = make_version(seller, statistics=stats(("by-2", 5)), state=VersionState.IN_REVIEW)
    with events.suspended(VersionStateChanged, listing_reactions.on_version_state_changed):
        resp = moderator.client.post(f"/api/v1/moderation/versions/{version.pk}/decision/", {"decision": "approve", "reason": "ok"}, format="json")
    assert resp.status_code == 200
    assert not Listing.objects.filter(dataset=version.dataset, is_public=True).exists()

    result = listings_reconcile()
    assert result["resynced"] == 1
    listing = Listing.objects.get(dataset=version.dataset)
    assert listing.is_public and listing.version_id == version.pk and listing.frames == 5

    # Suspended with the reaction off: the listing still shows; the reconciliation hides it.
    with events.suspended(VersionStateChanged, listing_reactions.on_version_state_changed):
        moderator.client.post(f"/api/v1/moderation/versions/{version.pk}/suspend/", {"reason": "takedown"}, format="json")
    assert Listing.objects.get(pk=listing.pk).is_public
    listings_reconcile()
    assert not Listing.objects.get(pk=listing.pk).is_public


@pytest.mark.django_db(transaction=True)
def test_the_reconciliation_repairs_stored_figures_that_disagree_with_their_sources(seller, moderator):
    version = make_version(seller, statistics=stats(("by-2", 4)), state=VersionState.IN_REVIEW)
    moderator.client.post(f"/api/v1/moderation/versions/{version.pk}/decision/", {"decision": "approve", "reason": "ok"}, format="json")
    listing = Listing.objects.get(dataset=version.dataset)
    Listing.objects.filter(pk=listing.pk).update(frames=999, commercial_use=not listing.commercial_use)
    result = listings_reconcile()
    assert result["repaired"] == 1
    repaired = Listing.objects.get(pk=listing.pk)
    assert repaired.frames == 4 and repaired.commercial_use == listing.commercial_use
    assert listings_reconcile()["repaired"] == 0  # nothing left to repair


@pytest.mark.django_db(transaction=True)
def test_a_dataset_edit_reaches_its_listing(seller, moderator):
    version = make_version(seller, statistics=stats(("by-2", 2)), state=VersionState.IN_REVIEW)
    moderator.client.post(f"/api/v1/moderation/versions/{version.pk}/decision/", {"decision": "approve", "reason": "ok"}, format="json")
    resp = seller.client.patch(f"/api/v1/datasets/{version.dataset.slug}/", {"title": "A better title"}, format="json")
    assert resp.status_code == 200
    assert Listing.objects.get(dataset=version.dataset).title == "A better title"


@pytest.mark.django_db(transaction=True)
def test_the_reconcile_task_is_scheduled_and_the_command_runs(seller, capsys):
    from django.conf import settings
    from django.core.management import call_command

    tasks = {entry["task"] for entry in settings.CELERY_BEAT_SCHEDULE.values()}
    assert {"workers.tasks.sweep", "marketplace.listings.tasks.listings_reconcile"} <= tasks
    factories.make_version(seller=seller)
    call_command("listings_reconcile")
    assert "resynced" in capsys.readouterr().out
