"""Report endpoints with security.md's object-level rules: seller org + staff always; everyone
else only while the version is published; hidden looks like missing (404)."""

from __future__ import annotations

import pytest
from rest_framework.test import APIClient

from quality import services
from tests import factories
from tests.quality.app.data import seed_version, set_state

pytestmark = pytest.mark.django_db


@pytest.fixture
def version(seller):
    v = factories.make_version(seller=seller)
    seed_version(v)
    services.report_compute(version_id=v.pk, kind="intrinsic")
    return v


def roles(seller, seller_b, buyer, moderator, auditor):
    return {"seller": seller.client, "seller_b": seller_b.client, "buyer": buyer.client, "anonymous": APIClient(), "moderator": moderator.client, "auditor": auditor.client}


@pytest.mark.parametrize(
    ("state", "allowed"),
    [
        ("draft", {"seller", "moderator", "auditor"}),
        ("in_review", {"seller", "moderator", "auditor"}),
        ("published", {"seller", "seller_b", "buyer", "anonymous", "moderator", "auditor"}),
        ("suspended", {"seller", "moderator", "auditor"}),
    ],
)
def test_report_permissions_matrix(version, seller, seller_b, buyer, moderator, auditor, state, allowed):
    set_state(version, state)
    for role, client in roles(seller, seller_b, buyer, moderator, auditor).items():
        listing = client.get(f"/api/v1/versions/{version.pk}/quality/")
        detail = client.get(f"/api/v1/versions/{version.pk}/quality/intrinsic/")
        if role in allowed:
            assert listing.status_code == 200, (role, listing.content)
            assert [r["kind"] for r in listing.json()["results"]] == ["intrinsic"]
            assert detail.status_code == 200, (role, detail.content)
        else:
            assert listing.status_code == 404, (role, state)
            assert detail.status_code == 404, (role, state)
            assert listing.json()["code"] == "version_not_found"


def test_detail_has_short_lived_artifact_links_and_no_storage_keys(version, seller):
    body = seller.client.get(f"/api/v1/versions/{version.pk}/quality/intrinsic/").json()
    assert body["kind"] == "intrinsic" and body["status"] == "ok"
    assert body["report_url"].startswith("http") and "X-Amz-Expires=" in body["report_url"]
    assert body["plots"] and all(url.startswith("http") for url in body["plots"].values())
    assert "artifacts" not in body and f"versions/{version.pk}/quality/" not in str(body["summary"])
    listing = seller.client.get(f"/api/v1/versions/{version.pk}/quality/").json()["results"][0]
    assert "artifacts" not in listing and "plots" not in listing


def test_missing_kind_and_version_are_404(version, seller, moderator):
    assert seller.client.get(f"/api/v1/versions/{version.pk}/quality/audit/").status_code == 404
    assert seller.client.get(f"/api/v1/versions/{version.pk}/quality/bogus/").status_code == 404
    assert moderator.client.get("/api/v1/versions/999999/quality/").status_code == 404
