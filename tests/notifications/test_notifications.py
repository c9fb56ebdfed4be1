"""In-app notifications: each member hears what concerns their role in the organization,
reads them (read/unread), per organization; a former member no longer sees them."""

from __future__ import annotations

import pytest

from datasets.services import version_create, version_transition
from marketplace.accounts.services import membership_add
from tests import factories
from tests.members.test_members import published_listing

# Reactions run after commit: every request here commits, as in production.
pytestmark = pytest.mark.django_db(transaction=True)
API = "/api/v1"


def kinds(actor, **params) -> list[str]:
    return [n["kind"] for n in actor.client.get(f"{API}/notifications/", params).json()["results"]]


def test_members_hear_what_concerns_their_role_and_mark_it_read():
    seller = factories.make_seller()
    seller_admin = factories.make_actor(role="admin", org=seller.org)
    version = published_listing(seller, slug="told-set")
    buyer = factories.make_buyer()
    colleague = factories.make_buyer(org=buyer.org)
    outsider = factories.make_buyer()

    order = buyer.client.post(f"{API}/listings/told-set/orders/", {"license": "CC-BY-4.0", "version": 1}, format="json", HTTP_IDEMPOTENCY_KEY="n1").json()
    # Both buyer members hear of the order and the entitlement, newest first.
    for actor in (buyer, colleague):
        assert kinds(actor) == ["entitlement.granted", "order.state_changed", "order.state_changed"]
    first = buyer.client.get(f"{API}/notifications/").json()["results"]
    assert first[0]["payload"] == {"entitlement": order["entitlement"], "listing": "told-set", "version": 1, "subset": None}
    assert first[0]["organization"] == buyer.org.slug and first[0]["read"] is False
    # The seller organization's sellers and admins hear of the order too, and of its versions.
    assert kinds(seller)[:2] == ["order.state_changed", "order.state_changed"]
    assert "version.state_changed" in kinds(seller_admin)
    assert kinds(outsider) == []

    # Read one, then the rest; the colleague's copies stay unread.
    assert buyer.client.post(f"{API}/notifications/read/", {"ids": [first[0]["id"]]}, format="json").json() == {"marked": 1}
    assert kinds(buyer, unread="true") == ["order.state_changed", "order.state_changed"]
    assert kinds(buyer, unread="false") == ["entitlement.granted"]
    assert buyer.client.post(f"{API}/notifications/read/", {}, format="json").json() == {"marked": 2}
    assert kinds(buyer, unread="true") == [] and len(kinds(colleague, unread="true")) == 3
    # Someone else's ids are not theirs to mark.
    assert outsider.client.post(f"{API}/notifications/read/", {"ids": [first[1]["id"]]}, format="json").json() == {"marked": 0}

    # A member of two organizations narrows the list with X-Organization.
    membership_add(user=buyer.user, organization=seller.org, role="seller")
    draft = version_create(dataset=version.dataset, actor=seller.user)
    version_transition(version=draft, to_state="submitted", actor=seller.user)
    # Joined after: only what happened since (the new version's moves), nothing older.
    seen = buyer.client.get(f"{API}/notifications/", HTTP_X_ORGANIZATION=seller.org.slug).json()["results"]
    assert seen and {(n["kind"], n["payload"]["version"]) for n in seen} == {("version.state_changed", 2)}
    resp = buyer.client.get(f"{API}/notifications/", HTTP_X_ORGANIZATION=buyer.org.slug).json()["results"]
    assert {n["organization"] for n in resp} == {buyer.org.slug}
