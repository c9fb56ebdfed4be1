"""Webhooks: deliveries are signed (the receiver verifies them), retried with exponential
back-off by a real worker after failures, logged, re-sent by hand; the secret rotates; and
under production settings private, loopback, link-local and redirecting targets are
refused, at registration and at delivery."""

from __future__ import annotations

from datetime import datetime

import pytest
from django.test import override_settings

from marketplace.demo import wait_for
from marketplace.notifications.models import Webhook, WebhookDelivery
from marketplace.notifications.services import delivery_attempt, notify
from tests import factories
from tests.members.test_members import published_listing
from tests.notifications.receiver import Receiver, verify

API = "/api/v1"


@pytest.fixture
def receiver():
    r = Receiver().start()
    yield r
    r.stop()


def admin_buyer():
    buyer = factories.make_buyer()
    from marketplace.accounts.services import membership_add

    membership_add(user=buyer.user, organization=buyer.org, role="admin")
    return buyer


@pytest.mark.worker
def test_deliveries_are_signed_retried_with_backoff_logged_and_resent(celery_worker, receiver):
    seller = factories.make_seller()
    published_listing(seller, slug="hooked-set")
    buyer = admin_buyer()
    receiver.answers = [500, 503]  # the first two attempts fail

    created = buyer.client.post(f"{API}/organizations/{buyer.org.slug}/webhooks/", {"url": receiver.url, "events": ["entitlement.granted"]}, format="json")
    assert created.status_code == 201, created.content
    hook = created.json()
    secret = hook["secret"]
    assert secret.startswith("whsec_") and hook["events"] == ["entitlement.granted"]
    listed = buyer.client.get(f"{API}/organizations/{buyer.org.slug}/webhooks/").json()["results"]
    assert [h["id"] for h in listed] == [hook["id"]] and "secret" not in listed[0]  # shown once

    order = buyer.client.post(f"{API}/listings/hooked-set/orders/", {"license": "CC-BY-4.0", "version": 1}, format="json", HTTP_IDEMPOTENCY_KEY="hook-1")
    assert order.json()["state"] == "paid"

    wait_for(lambda: len(receiver.received) >= 3, timeout=60, what="three attempts at the receiver")
    deliveries = buyer.client.get(f"{API}/webhooks/{hook['id']}/deliveries/").json()["results"]
    (delivery,) = deliveries
    wait_for(lambda: WebhookDelivery.objects.get(pk=delivery["id"]).state == "succeeded", timeout=30, what="the delivery to succeed")
    delivery = buyer.client.get(f"{API}/webhooks/{hook['id']}/deliveries/").json()["results"][0]
    assert delivery["state"] == "succeeded" and delivery["attempts"] == 3 and delivery["last_status_code"] == 200
    log = delivery["log"]
    assert [e["status_code"] for e in log] == [500, 503, 200]
    # Exponential back-off: 1 s, then 2 s (WEBHOOKS_RETRY_BASE_SECONDS=1 in the test profile).
    assert [e["retry_in"] for e in log] == [1.0, 2.0, None]
    at = [datetime.fromisoformat(e["at"]) for e in log]
    assert (at[1] - at[0]).total_seconds() >= 0.9 and (at[2] - at[1]).total_seconds() >= 1.9

    # Every attempt carried the same signed body; the receiver verifies each signature.
    assert len(receiver.received) == 3 and len({r.body for r in receiver.received}) == 1
    for r in receiver.received:
        assert verify(secret=secret, headers=r.headers, body=r.body)
        assert not verify(secret=secret + "x", headers=r.headers, body=r.body)
        assert r.headers["X-Market-Event"] == "entitlement.granted" and r.headers["X-Market-Delivery"] == delivery["id"]
    document = receiver.received[0].document
    assert document["type"] == "entitlement.granted" and document["organization"] == buyer.org.slug
    assert document["data"] == {"entitlement": order.json()["entitlement"], "listing": "hooked-set", "version": 1, "subset": None}
    assert document["id"] == delivery["event_id"]

    # The secret rotates: the next delivery verifies with the new one only.
    rotated = buyer.client.post(f"{API}/webhooks/{hook['id']}/rotate-secret/").json()
    assert rotated["secret"] != secret
    resent = buyer.client.post(f"{API}/webhook-deliveries/{delivery['id']}/resend/")
    assert resent.status_code == 202
    wait_for(lambda: len(receiver.received) == 4, timeout=30, what="the re-sent delivery")
    again = receiver.received[3]
    assert again.body == receiver.received[0].body  # the same event
    assert verify(secret=rotated["secret"], headers=again.headers, body=again.body)
    assert not verify(secret=secret, headers=again.headers, body=again.body)
    wait_for(lambda: WebhookDelivery.objects.get(pk=delivery["id"]).state == "succeeded", timeout=30, what="the re-sent delivery's log")
    assert [e["status_code"] for e in WebhookDelivery.objects.get(pk=delivery["id"]).log] == [500, 503, 200, 200]

    # Another organization's admin sees none of it.
    other = admin_buyer()
    assert other.client.get(f"{API}/webhooks/{hook['id']}/deliveries/").status_code == 404
    assert other.client.post(f"{API}/webhook-deliveries/{delivery['id']}/resend/").status_code == 404


@pytest.mark.django_db
def test_production_settings_refuse_private_loopback_link_local_and_redirecting_targets(receiver):
    buyer = admin_buyer()
    url = f"{API}/organizations/{buyer.org.slug}/webhooks/"
    refused = [
        "https://127.0.0.1/hook",
        "https://localhost/hook",  # a name that resolves to loopback
        "https://[::1]/hook",
        "https://[::ffff:127.0.0.1]/hook",  # IPv4-mapped IPv6
        "https://10.1.2.3/hook",
        "https://192.168.0.10/hook",
        "https://172.16.5.4/hook",
        "https://169.254.169.254/latest/meta-data/",  # the cloud metadata address
        "https://[fe80::1]/hook",
        "https://100.64.0.1/hook",  # carrier-grade NAT
        "https://0.0.0.0/hook",
        "http://93.184.215.14/hook",  # public, but not https
        "https://user:pw@93.184.215.14/hook",
        "ftp://93.184.215.14/hook",
        receiver.url,
    ]
    with override_settings(WEBHOOKS_ALLOWED_PRIVATE_TARGETS=[]):
        for target in refused:
            resp = buyer.client.post(url, {"url": target}, format="json")
            assert resp.status_code == 400, (target, resp.content)
            body = resp.json()
            assert body["code"] == "webhook_target_refused" and body["details"][0]["location"] == "url", (target, body)
    assert not Webhook.objects.exists()

    # At delivery, the rule is applied again, after resolving the name (it may resolve
    # elsewhere by then): a webhook stored earlier is refused under production settings.
    webhook = Webhook.objects.create(organization=buyer.org, url=f"https://localhost:{receiver.port}/hook", secret="whsec_test", events=[])
    notify(organization_id=buyer.org.pk, kind="order.state_changed", key="ssrf-1", title="t", payload={}, roles=("buyer",))
    delivery = WebhookDelivery.objects.get(webhook=webhook)
    with override_settings(WEBHOOKS_ALLOWED_PRIVATE_TARGETS=[]):
        assert delivery_attempt(delivery_id=delivery.pk) == 1.0
    delivery.refresh_from_db()
    assert delivery.log[0]["status_code"] is None and "localhost resolves to" in delivery.log[0]["error"] and "loopback" in delivery.log[0]["error"]
    assert receiver.received == []

    # A redirect is never followed: the receiver (its exact address allowed) answers 302
    # towards the metadata address, then towards another loopback receiver.
    second = Receiver().start()
    try:
        for location, why in (("https://169.254.169.254/latest/meta-data/", "link-local"), (second.url, "only https")):
            receiver.redirect_to = location
            Webhook.objects.filter(pk=webhook.pk).update(url=receiver.url)
            WebhookDelivery.objects.filter(pk=delivery.pk).update(state="pending", next_attempt_at=None)
            with override_settings(WEBHOOKS_ALLOWED_PRIVATE_TARGETS=[f"127.0.0.1:{receiver.port}"]):
                delivery_attempt(delivery_id=delivery.pk)
            delivery.refresh_from_db()
            entry = delivery.log[-1]
            assert entry["status_code"] == 302 and "refused" in entry["error"] and why in entry["error"], entry
        assert second.received == []  # never followed
        assert delivery.state == "pending" and delivery.attempts == 3
    finally:
        second.stop()
