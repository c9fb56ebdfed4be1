"""A buyer sees a pending consent revocation before buying: once a seller records one
against the published version (through the API), the listing's detail and its search card
say ``revocation_pending`` with the deadline; before it, and on the other listings, they
say it is not. When the deadline passes the version is suspended and the listing leaves
the store front."""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest
from django.utils import timezone

from licensing.models import ConsentRevocation
from licensing.services import consent_deadlines_enforce
from marketplace.listings.services import listing_sync
from tests.factories import make_dataset
from tests.licensing.test_consent_ledger import published_version

pytestmark = pytest.mark.django_db
API = "/api/v1"


def card(api_client, slug: str) -> dict:
    results = api_client.get(f"{API}/listings/", {"page_size": 100}).json()["results"]
    return next(r for r in results if r["slug"] == slug)


def test_a_pending_revocation_is_on_the_listing_and_its_search_card(seller, api_client, django_capture_on_commit_callbacks):
    revoked = published_version(seller, make_dataset(seller=seller, slug="kitchen-revoked"))
    untouched = published_version(seller, make_dataset(seller=seller, slug="kitchen-untouched"))
    for version in (revoked, untouched):
        listing_sync(dataset=version.dataset)
    for slug in ("kitchen-revoked", "kitchen-untouched"):
        detail = api_client.get(f"{API}/listings/{slug}/").json()
        assert detail["revocation_pending"] is False and detail["revocation_deadline"] is None, detail
        assert card(api_client, slug)["revocation_pending"] is False

    with django_capture_on_commit_callbacks(execute=True):
        resp = seller.client.post(
            f"{API}/versions/{revoked.pk}/consent-revocations/",
            {"requested_on": timezone.localdate().isoformat(), "reason": "a bystander withdrew consent", "records": ["C-tag"]},
            format="json",
        )
    assert resp.status_code == 201, resp.content
    deadline = ConsentRevocation.objects.get(version=revoked).deadline

    detail = api_client.get(f"{API}/listings/kitchen-revoked/").json()
    assert detail["revocation_pending"] is True
    assert detail["revocation_deadline"] is not None and datetime.fromisoformat(detail["revocation_deadline"]) == deadline
    shown = card(api_client, "kitchen-revoked")
    assert shown["revocation_pending"] is True and shown["revocation_deadline"] == detail["revocation_deadline"]
    # The other listing of the same seller is not concerned.
    assert api_client.get(f"{API}/listings/kitchen-untouched/").json()["revocation_pending"] is False
    assert card(api_client, "kitchen-untouched")["revocation_pending"] is False

    # Past the deadline the version is suspended: the listing is no longer offered at all.
    with django_capture_on_commit_callbacks(execute=True):
        assert consent_deadlines_enforce(now=deadline + timedelta(seconds=1))["suspended"] == 1
    assert api_client.get(f"{API}/listings/kitchen-revoked/").status_code == 404
    assert "kitchen-revoked" not in {r["slug"] for r in api_client.get(f"{API}/listings/", {"page_size": 100}).json()["results"]}
