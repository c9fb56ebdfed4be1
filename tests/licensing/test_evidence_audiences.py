"""What each role reads of a published version's checks and provenance: staff everything;
the seller's members their own files and records but nothing of another organization;
a buyer counts and summaries, never another organization's listing or files, a file path,
a session or a consent record id."""

from __future__ import annotations

import io
import json

import pytest
from PIL import Image

from datasets.states import VersionState
from licensing.models import ConsentRecord
from licensing.services import checks_run
from tests.licensing.conftest import make_version, move
from tests.licensing.test_checks import _published_with_images, add_image, noise_jpeg, with_fields

pytestmark = pytest.mark.django_db


@pytest.fixture
def resold(seller, seller_b):
    """seller_b publishes 'original-listing'; seller publishes a version re-encoding two of
    its pictures, one image with GPS and an artist's name, people filmed in France with
    consent for one session of three."""
    _published_with_images(seller_b, [10, 11, 12], "original-listing")
    v = make_version(seller, license="CC0-1.0", slug="resold-set")
    for s in (10, 11):
        buf = io.BytesIO()
        Image.open(io.BytesIO(noise_jpeg(s))).save(buf, "JPEG", quality=70)
        add_image(v, f"mine/{s}.jpg", buf.getvalue())
    add_image(v, "mine/field-trip.jpg", noise_jpeg(7, {0x8825: {1: "N", 2: (48.0, 8.0, 0.0)}, 0x013B: "Jane Doe"}))
    with_fields(
        seller, v, human_subjects=True, locations=["FR"], sessions=["sess-alpha", "sess-beta", "sess-gamma"],
        anonymisation_method="faces blurred", **{"rai:personalSensitiveInformation": "faces"},
    )
    ConsentRecord.objects.create(version=v, session_id="sess-alpha", consent_id="CONSENT-7781-XY", legal_basis="consent")
    results = {r.code: r for r in checks_run(version_id=v.pk)}
    assert results["near_duplicate_listing"].status == "failed"
    assert results["image_personal_metadata"].status == "failed"
    assert results["consent_not_covering_sessions"].status == "failed"
    return move(v, VersionState.PUBLISHED, seller.user)


OTHER_ORGANIZATION = ("original-listing", "img/10.jpg", "img/11.jpg")
OWN_FILES = ("mine/10.jpg", "mine/11.jpg", "mine/field-trip.jpg")
IDS = ("CONSENT-7781-XY", "sess-alpha", "sess-beta", "sess-gamma")


def _checks(actor, version):
    resp = actor.client.get(f"/api/v1/versions/{version.pk}/checks/")
    assert resp.status_code == 200
    return resp.content.decode(), {c["code"]: c for c in resp.json()}


def test_buyer_reads_counts_and_summaries_only(resold, buyer, seller_b):
    raw, checks = _checks(buyer, resold)
    for secret in OTHER_ORGANIZATION + OWN_FILES + IDS + (seller_b.org.slug, seller_b.org.name):
        assert secret not in raw, secret
    assert checks["near_duplicate_listing"]["status"] == "failed"
    assert checks["near_duplicate_listing"]["evidence"] == {"listings": 1, "images": 2, "share": pytest.approx(2 / 3, abs=1e-4), "max_bits": 3}
    assert checks["image_personal_metadata"]["evidence"] == {"count": 1, "inspected": 3, "tags": {"Artist": 1, "GPSInfo": 1}}
    assert checks["consent_not_covering_sessions"]["evidence"] == {"locations": ["FR"], "sessions": 3, "uncovered": 2}

    resp = buyer.client.get(f"/api/v1/versions/{resold.pk}/provenance/")
    assert resp.status_code == 200
    body = resp.json()
    assert "consent_records" not in body
    assert body["consent_summary"] == {"records": 1, "sessions": 1, "legal_bases": {"consent": 1}, "with_document": 0}
    for secret in IDS:
        assert secret not in resp.content.decode(), secret
    assert body["fields"]["sessions"]["count"] == 3 and "value" not in body["fields"]["sessions"]
    # Verified flags and shares stay: they are the summary a buyer decides on.
    assert body["fields"]["locations"]["value"] == ["FR"] and body["fields"]["locations"]["status"]
    assert 0 < body["completeness"] <= 1 and "verified_share" in body


def test_seller_reads_its_own_files_but_nothing_of_the_other_organization(resold, seller, seller_b):
    raw, checks = _checks(seller, resold)
    for secret in OTHER_ORGANIZATION + (seller_b.org.slug, seller_b.org.name):
        assert secret not in raw, secret
    assert sorted(checks["near_duplicate_listing"]["evidence"]["examples"]) == ["mine/10.jpg", "mine/11.jpg"]
    assert checks["image_personal_metadata"]["evidence"]["images"] == [{"path": "mine/field-trip.jpg", "tags": ["GPSInfo", "Artist"]}]
    assert checks["consent_not_covering_sessions"]["evidence"]["uncovered"] == ["sess-beta", "sess-gamma"]
    body = seller.client.get(f"/api/v1/versions/{resold.pk}/provenance/").json()
    assert body["consent_records"][0]["consent_id"] == "CONSENT-7781-XY"
    assert body["fields"]["sessions"]["value"] == ["sess-alpha", "sess-beta", "sess-gamma"]


def test_staff_read_the_whole_evidence(resold, moderator):
    raw, checks = _checks(moderator, resold)
    listings = checks["near_duplicate_listing"]["evidence"]["listings"]
    assert listings[0]["listing"] == "original-listing"
    assert {e["matches"] for e in listings[0]["examples"]} == {"img/10.jpg", "img/11.jpg"}
    body = moderator.client.get(f"/api/v1/versions/{resold.pk}/provenance/").json()
    assert body["consent_records"][0]["consent_id"] == "CONSENT-7781-XY"
    detail = moderator.client.get(f"/api/v1/moderation/versions/{resold.pk}/").json()
    assert "original-listing" in json.dumps(detail["checks"])
