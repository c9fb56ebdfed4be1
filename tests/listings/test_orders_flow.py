"""Orders over time through the API: a listing that needs the seller's approval (approve,
reject with a reason, never an entitlement from a rejection), cancellation while pending,
staff refunds that revoke the entitlement, and free updates claimed under the listing's
update policy when a new version is published."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from datasets.services import version_create, version_transition
from marketplace.audit.models import AuditEvent
from marketplace.listings.models import Entitlement, Order
from marketplace.listings.services import listing_sync
from tests import factories
from tests.members.test_members import published_listing

# Reactions (listing sync, announcements, notifications) run after commit: every request commits.
pytestmark = pytest.mark.django_db(transaction=True)
API = "/api/v1"


def order(actor, slug: str, key: str, **extra):
    body = {"license": "CC-BY-4.0", "version": extra.pop("version", 1), **extra}
    return actor.client.post(f"{API}/listings/{slug}/orders/", body, format="json", HTTP_IDEMPOTENCY_KEY=key)


@pytest.fixture
def market():
    seller = factories.make_seller()
    version = published_listing(seller, slug="restricted-set", price="40.00")
    return {
        "seller": seller,
        "colleague": factories.make_seller(org=seller.org),
        "other_seller": factories.make_seller(),
        "buyer": factories.make_buyer(),
        "other_buyer": factories.make_buyer(),
        "staff": factories.make_actor(is_staff=True),
        "version": version,
    }


def test_approval_reject_cancel_and_refund(market):
    seller, colleague, buyer, other_buyer, staff = (market[k] for k in ("seller", "colleague", "buyer", "other_buyer", "staff"))
    terms_url = f"{API}/datasets/restricted-set/sales-terms/"
    assert seller.client.get(terms_url).json() == {"requires_approval": False, "free_update_months": None, "subset_prices": {}}
    assert market["other_seller"].client.put(terms_url, {"requires_approval": True, "free_update_months": None}, format="json").status_code == 404
    resp = seller.client.put(terms_url, {"requires_approval": True, "free_update_months": None}, format="json")
    assert resp.status_code == 200 and resp.json()["requires_approval"] is True
    assert buyer.client.get(f"{API}/listings/restricted-set/").json()["sales_terms"] == {"requires_approval": True, "free_update_months": None, "subset_prices": {}}

    # The buyer must state an intended use; the order then waits for the seller.
    resp = order(buyer, "restricted-set", "a1")
    assert resp.status_code == 400 and resp.json()["code"] == "intended_use_required"
    assert not Order.objects.exists()
    placed = order(buyer, "restricted-set", "a1", intended_use="grasp-policy research at a university lab").json()
    assert placed["state"] == "awaiting_approval" and placed["entitlement"] is None
    assert placed["intended_use"] == "grasp-policy research at a university lab"
    assert staff.client.post(f"{API}/orders/{placed['id']}/mark-paid/").status_code == 409  # not before approval

    # Seller members see what waits on them; nobody else decides.
    waiting = colleague.client.get(f"{API}/seller/orders/", {"state": "awaiting_approval"}).json()["results"]
    assert [o["id"] for o in waiting] == [placed["id"]]
    assert market["other_seller"].client.get(f"{API}/seller/orders/").json()["results"] == []
    for outsider in (buyer, market["other_seller"], other_buyer):
        assert outsider.client.post(f"{API}/orders/{placed['id']}/approve/", {}, format="json").status_code == 404
    approved = colleague.client.post(f"{API}/orders/{placed['id']}/approve/", {"reason": "academic use fits"}, format="json")
    assert approved.status_code == 200 and approved.json()["state"] == "pending_payment"
    # The buyer sees the decision.
    mine = buyer.client.get(f"{API}/orders/").json()["results"][0]
    assert mine["state"] == "pending_payment" and mine["decided_at"] and mine["decision_reason"] == "academic use fits"
    paid = staff.client.post(f"{API}/orders/{placed['id']}/mark-paid/", {"reason": "invoice 7"}, format="json").json()
    entitlement = paid["entitlement"]
    assert paid["state"] == "paid" and entitlement
    assert buyer.client.get(f"{API}/entitlements/{entitlement}/files/").status_code == 200

    # Rejected, with a reason: no entitlement, ever.
    asked = order(other_buyer, "restricted-set", "b1", intended_use="resale to third parties").json()
    resp = seller.client.post(f"{API}/orders/{asked['id']}/reject/", {}, format="json")
    assert resp.status_code == 400 and resp.json()["code"] == "reason_required"
    rejected = seller.client.post(f"{API}/orders/{asked['id']}/reject/", {"reason": "resale is not allowed"}, format="json")
    assert rejected.status_code == 200 and rejected.json()["state"] == "rejected"
    seen = other_buyer.client.get(f"{API}/orders/").json()["results"][0]
    assert seen["state"] == "rejected" and seen["decision_reason"] == "resale is not allowed" and seen["entitlement"] is None
    for attempt in (
        staff.client.post(f"{API}/orders/{asked['id']}/mark-paid/"),
        seller.client.post(f"{API}/orders/{asked['id']}/approve/", {}, format="json"),
        other_buyer.client.post(f"{API}/orders/{asked['id']}/cancel/", {}, format="json"),
    ):
        assert attempt.status_code == 409 and attempt.json()["code"] == "invalid_order_state"
    assert not Entitlement.objects.filter(order_id=asked["id"]).exists()
    assert other_buyer.client.get(f"{API}/entitlements/").json()["results"] == []

    # Cancelled while pending, by a buyer member only.
    again = order(other_buyer, "restricted-set", "b2", intended_use="internal evaluation").json()
    assert again["state"] == "awaiting_approval"
    assert buyer.client.post(f"{API}/orders/{again['id']}/cancel/", {}, format="json").status_code == 404
    cancelled = other_buyer.client.post(f"{API}/orders/{again['id']}/cancel/", {"reason": "budget cut"}, format="json")
    assert cancelled.status_code == 200 and cancelled.json()["state"] == "cancelled" and cancelled.json()["closed_at"]
    assert buyer.client.post(f"{API}/orders/{placed['id']}/cancel/", {}, format="json").status_code == 409  # paid: refund instead

    # Refund: staff only, with a reason; the entitlement is revoked.
    assert buyer.client.post(f"{API}/orders/{placed['id']}/refund/", {"reason": "x"}, format="json").status_code == 403
    assert staff.client.post(f"{API}/orders/{placed['id']}/refund/", {}, format="json").status_code == 400
    refunded = staff.client.post(f"{API}/orders/{placed['id']}/refund/", {"reason": "chargeback"}, format="json")
    assert refunded.status_code == 200 and refunded.json()["state"] == "refunded"
    assert buyer.client.get(f"{API}/entitlements/{entitlement}/files/").status_code == 404
    assert buyer.client.get(f"{API}/entitlements/").json()["results"][0]["live"] is False

    actions = [e.action for e in AuditEvent.objects.filter(object_type="listings.order").order_by("id")]
    assert actions == ["order.create", "order.approve", "order.paid", "order.create", "order.reject", "order.create", "order.cancel", "order.refund"]
    assert AuditEvent.objects.filter(action="entitlement.revoke", object_id=str(entitlement), reason="order refunded: chargeback").exists()
    # Each side was told: the buyer of the decision, the seller of the order waiting.
    kinds = {n["kind"] for n in buyer.client.get(f"{API}/notifications/").json()["results"]}
    assert {"order.decided", "order.state_changed", "entitlement.granted", "entitlement.revoked"} <= kinds
    decided = [n for n in other_buyer.client.get(f"{API}/notifications/").json()["results"] if n["kind"] == "order.decided"]
    assert [n["payload"]["after"] for n in decided] == ["rejected"] and decided[0]["payload"]["reason"] == "resale is not allowed"


def test_a_free_listing_that_needs_approval_is_granted_on_approval():
    seller = factories.make_seller()
    published_listing(seller, slug="free-restricted")
    seller.client.put(f"{API}/datasets/free-restricted/sales-terms/", {"requires_approval": True, "free_update_months": None}, format="json")
    buyer = factories.make_buyer()
    placed = order(buyer, "free-restricted", "f1", intended_use="benchmarking").json()
    assert placed["state"] == "awaiting_approval" and placed["entitlement"] is None
    approved = seller.client.post(f"{API}/orders/{placed['id']}/approve/", {}, format="json").json()
    assert approved["state"] == "paid" and approved["entitlement"]


def _publish_next(version):
    """The seller's next version is published (the previous one withdrawn)."""
    nxt = version_create(dataset=version.dataset, actor=None)
    for state in ("submitted", "processing", "in_review"):
        version_transition(version=nxt, to_state=state, actor=None)
    version_transition(version=version, to_state="withdrawn", actor=None, reason="superseded")
    version_transition(version=nxt, to_state="published", actor=None)
    listing_sync(dataset=version.dataset)
    return nxt


def test_new_version_is_announced_and_claimed_free_under_the_update_policy(market):
    seller, buyer, other_buyer = market["seller"], market["buyer"], market["other_buyer"]
    seller.client.put(f"{API}/datasets/restricted-set/sales-terms/", {"requires_approval": False, "free_update_months": 12}, format="json")
    for actor, key in ((buyer, "u1"), (other_buyer, "u2")):
        placed = order(actor, "restricted-set", key).json()
        market["staff"].client.post(f"{API}/orders/{placed['id']}/mark-paid/")
    held = buyer.client.get(f"{API}/entitlements/").json()["results"][0]
    assert held["current_version"] == 1 and held["free_updates_until"]
    # The other buyer's window closed long ago.
    Entitlement.objects.filter(buyer=other_buyer.org).update(granted_at=timezone.now() - timedelta(days=400))
    resp = buyer.client.post(f"{API}/entitlements/{held['id']}/claim-update/")
    assert resp.status_code == 409 and resp.json()["code"] == "no_newer_version"

    _publish_next(market["version"])

    news = [n for n in buyer.client.get(f"{API}/notifications/").json()["results"] if n["kind"] == "version.new_available"]
    assert len(news) == 1 and news[0]["payload"]["version"] == 2 and news[0]["payload"]["held_version"] == 1
    assert news[0]["payload"]["claim"] == f"/api/v1/entitlements/{held['id']}/claim-update/"
    late = [n for n in other_buyer.client.get(f"{API}/notifications/").json()["results"] if n["kind"] == "version.new_available"]
    assert len(late) == 1 and late[0]["payload"]["free_until"] is None and late[0]["payload"]["claim"] is None

    claimed = buyer.client.post(f"{API}/entitlements/{held['id']}/claim-update/")
    assert claimed.status_code == 201, claimed.content
    body = claimed.json()
    assert body["state"] == "paid" and body["version"] == 2 and body["price"] == "0.00" and body["claimed_from"] == held["id"]
    assert buyer.client.post(f"{API}/entitlements/{held['id']}/claim-update/").json()["id"] == body["id"]  # once
    versions = sorted(e["version"] for e in buyer.client.get(f"{API}/entitlements/").json()["results"] if e["live"])
    assert versions == [1, 2]  # the old one stays
    assert buyer.client.get(f"{API}/entitlements/{body['entitlement']}/files/").status_code == 200

    other_held = other_buyer.client.get(f"{API}/entitlements/").json()["results"][0]
    resp = other_buyer.client.post(f"{API}/entitlements/{other_held['id']}/claim-update/")
    assert resp.status_code == 409 and resp.json()["code"] == "update_not_free"
    assert buyer.client.post(f"{API}/entitlements/{other_held['id']}/claim-update/").status_code == 404
    assert AuditEvent.objects.filter(action="order.update_claim").count() == 1
