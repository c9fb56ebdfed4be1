"""listing_sync and entitlement_active: the contract other apps call."""

import pytest

from datasets.services import version_transition
from datasets.states import VersionState
from marketplace.listings.models import Listing
from marketplace.listings.selectors import entitlement_active, listings_public
from marketplace.listings.services import listing_sync
from tests.factories import make_buyer, make_seller, make_version

pytestmark = pytest.mark.django_db


def _publish(version, actor):
    for state in (VersionState.SUBMITTED, VersionState.PROCESSING, VersionState.IN_REVIEW, VersionState.PUBLISHED):
        version_transition(version=version, to_state=state, actor=actor)


def test_sync_without_published_version_creates_nothing():
    seller = make_seller()
    version = make_version(seller=seller)
    assert listing_sync(dataset=version.dataset) is None
    assert not Listing.objects.exists()


def test_sync_publishes_then_hides_on_suspension():
    seller = make_seller()
    version = make_version(seller=seller)
    version.statistics = {
        "images": 10,
        "frames": 10,
        "instances": 40,
        "categories": [{"id": 1, "name": "mug", "count": 40}],
        "has_tracks": False,
    }
    version.save(update_fields=["statistics"])
    _publish(version, seller.user)
    listing = listing_sync(dataset=version.dataset)
    assert listing.is_public and listing.slug == version.dataset.slug and listing.frames == 10
    assert list(listings_public()) == [listing]
    version_transition(version=version, to_state=VersionState.SUSPENDED, actor=seller.user)
    listing = listing_sync(dataset=version.dataset)
    assert not listing.is_public
    assert not listings_public().exists()


def test_entitlement_active_false_without_entitlement():
    seller, buyer = make_seller(), make_buyer()
    version = make_version(seller=seller)
    assert entitlement_active(user=buyer.user, version=version) is False


def test_listings_sync_command_rebuilds(capsys):
    from django.core.management import call_command

    seller = make_seller()
    version = make_version(seller=seller)
    _publish(version, seller.user)
    call_command("listings_sync")
    assert Listing.objects.get(slug=version.dataset.slug).is_public
    assert "1 public" in capsys.readouterr().out


def test_per_class_ap_is_shown_only_when_the_audit_is_verified():
    """Per class: instances always; AP only from a verified audit (a report computed without
    the auditor's reference gives none), and none for a class the sample did not hold."""
    from quality.models import QualityReport

    seller = make_seller()
    version = make_version(seller=seller)
    version.statistics = {"images": 10, "frames": 10, "instances": 30, "categories": [{"id": 1, "name": "mug", "count": 20}, {"id": 2, "name": "gripper", "count": 10}]}
    version.save(update_fields=["statistics"])
    _publish(version, seller.user)
    summary = {"verified": False, "n_images": 6, "per_class_ap": {"1": 0.61, "2": None}}
    report = QualityReport.objects.create(version=version, kind="audit", engine_version="test", inputs_checksum="1" * 64, summary=summary, artifacts={"plots": {"iou_histogram": "k"}})
    listing = listing_sync(dataset=version.dataset)
    assert listing.per_class == [
        {"category_id": 1, "name": "mug", "instances": 20, "ap": None},
        {"category_id": 2, "name": "gripper", "instances": 10, "ap": None},
    ]
    assert listing.evidence["reports"] == [{"kind": "audit", "id": report.pk, "plots": ["iou_histogram"]}]
    QualityReport.objects.filter(pk=report.pk).update(summary={**summary, "verified": True})
    listing = listing_sync(dataset=version.dataset)
    assert listing.per_class[0]["ap"] == {"value": 0.61, "ci": None, "n": 6, "status": "verified"}
    assert listing.per_class[1]["ap"] is None  # no reference instance of the class in the sample
