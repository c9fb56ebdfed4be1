"""Concurrent order requests (threads, each with its own database connection) create one order."""

import threading
from decimal import Decimal

import pytest
from django.db import connection

from marketplace.listings.models import Order
from marketplace.listings.services import listing_sync
from tests import factories
from tests.listings.catalogue import publish, statistics


def _listing(price: str):
    seller, moderator = factories.make_seller(), factories.make_moderator()
    dataset = factories.make_dataset(seller=seller, annotation_license="CC-BY-4.0", price=Decimal(price))
    version = factories.make_version(seller=seller, dataset=dataset)
    version.statistics = statistics(frames=10, categories=["mug"], license="CC-BY-4.0")
    version.save(update_fields=["statistics"])
    publish(version, moderator.user)
    return listing_sync(dataset=dataset)


def _race(buyer, slug: str, keys: list[str]) -> list:
    barrier = threading.Barrier(len(keys))
    results: list = [None] * len(keys)

    def run(i: int, key: str) -> None:
        client = factories.APIClient()
        client.credentials(HTTP_AUTHORIZATION=f"Token {buyer.token}")
        try:
            barrier.wait(timeout=10)
            resp = client.post(
                f"/api/v1/listings/{slug}/orders/", {"license": "CC-BY-4.0", "version": 1}, format="json", HTTP_IDEMPOTENCY_KEY=key
            )
            results[i] = (resp.status_code, resp.json().get("id"))
        finally:
            connection.close()  # each thread had its own connection

    threads = [threading.Thread(target=run, args=(i, k)) for i, k in enumerate(keys)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=30)
    return results


@pytest.mark.parametrize("price", ["100", "0"])
def test_concurrent_retries_with_one_key_create_one_order(transactional_db, price):
    listing, buyer = _listing(price), factories.make_buyer()
    results = _race(buyer, listing.slug, ["same-key"] * 6)
    assert {r[0] for r in results} <= {200, 201} and sorted(r[0] for r in results).count(201) == 1, results
    assert len({r[1] for r in results}) == 1
    assert Order.objects.filter(buyer=buyer.org).count() == 1
    if price == "0":
        assert Order.objects.get(buyer=buyer.org).entitlement.is_live


def test_concurrent_orders_with_different_keys_create_one_order(transactional_db):
    listing, buyer = _listing("100"), factories.make_buyer()
    results = _race(buyer, listing.slug, [f"key-{i}" for i in range(6)])
    assert all(r[0] in (200, 201) for r in results), results
    assert len({r[1] for r in results}) == 1
    assert Order.objects.filter(buyer=buyer.org).count() == 1
