"""Effective terms on mixed inputs, and the publish block on over-permissive declarations."""

import pytest

from datasets.states import VersionState
from licensing.selectors import version_effective_terms
from licensing.services import moderation_decide, version_publish_check
from marketplace.core.errors import Conflict
from tests.licensing.conftest import make_version, stats

pytestmark = pytest.mark.django_db


def test_all_permissive_inputs(seller):
    v = make_version(seller, license="CC-BY-4.0", statistics=stats(("by-2", 30)))
    t = version_effective_terms(version=v)
    assert (t["commercial_use"], t["derivatives"], t["redistribution"]) == (True, True, True)
    assert t["attribution"] is True and t["share_alike"] is False
    assert t["licenses"] == [{"spdx": "CC-BY-2.0", "images": 30}]
    assert t["commercial_images"] == 30 and t["unknown"] == [] and t["conflicts"] == []
    assert version_publish_check(version=v)["annotation_license"] == "CC-BY-4.0"


def test_one_non_commercial_image_removes_commercial_use(seller):
    v = make_version(seller, license="CC-BY-NC-4.0", statistics=stats(("by-2", 9), ("by-nc-2", 1)))
    t = version_effective_terms(version=v)
    assert t["commercial_use"] is False and t["derivatives"] is True
    assert t["licenses"] == [{"spdx": "CC-BY-2.0", "images": 9}, {"spdx": "CC-BY-NC-2.0", "images": 1}]
    # The annotations themselves are NC, so no image is commercially usable with them.
    assert t["commercial_images"] == 0


def test_commercial_subset_counts_images_with_commercial_licenses(seller):
    v = make_version(seller, license="CC0-1.0", statistics=stats(("by-2", 7), ("by-nc-sa-2", 3)))
    t = version_effective_terms(version=v)
    assert t["commercial_images"] == 7 and t["commercial_use"] is False


def test_share_alike_propagates(seller):
    v = make_version(seller, license="CC-BY-SA-4.0", statistics=stats(("by-2", 5), ("by-sa-2", 5)))
    t = version_effective_terms(version=v)
    assert t["share_alike"] is True and t["commercial_use"] is True and t["conflicts"] == []


def test_incompatible_share_alike_is_a_conflict(seller):
    v = make_version(seller, license="ODbL-1.0", statistics=stats(("by-sa-2", 5)))
    codes = [c["code"] for c in version_effective_terms(version=v)["conflicts"]]
    assert "incompatible_share_alike" in codes


def test_no_derivatives_images_conflict_with_masks(seller):
    v = make_version(seller, license="CC-BY-NC-ND-4.0", statistics=stats(("by-nd-2", 2)))
    t = version_effective_terms(version=v)
    assert t["derivatives"] is False
    assert [c["code"] for c in t["conflicts"]] == ["derivatives_not_allowed"]


def test_unknown_license_grants_nothing_and_is_reported(seller):
    v = make_version(seller, license="CC-BY-4.0", statistics=stats(("by-2", 5), ("Our Lab Terms", 2)))
    t = version_effective_terms(version=v)
    assert t["commercial_use"] is False and t["derivatives"] is False and t["redistribution"] is False
    assert t["unknown"] == [{"input": "image_license", "id": 99, "name": "Our Lab Terms", "url": "", "images": 2}]


def test_images_without_license_grant_nothing(seller):
    v = make_version(seller, license="CC-BY-4.0", statistics=stats(("by-2", 5), without=1))
    t = version_effective_terms(version=v)
    assert t["commercial_use"] is False and t["images_without_license"] == 1


def test_effective_terms_endpoint_visibility(seller, seller_b):
    v = make_version(seller, license="CC-BY-4.0", statistics=stats(("by-2", 3)))
    resp = seller.client.get(f"/api/v1/versions/{v.pk}/effective-terms/")
    assert resp.status_code == 200 and resp.json()["commercial_images"] == 3
    assert seller_b.client.get(f"/api/v1/versions/{v.pk}/effective-terms/").status_code == 404


def test_publish_blocked_when_declared_more_permissive(seller, moderator):
    v = make_version(seller, license="CC-BY-4.0", statistics=stats(("by-nc-sa-2", 10)), state=VersionState.IN_REVIEW)
    with pytest.raises(Conflict) as exc:
        version_publish_check(version=v)
    assert exc.value.code == "terms_too_permissive"
    locations = {d["location"] for d in exc.value.details}
    assert {"effective_terms.commercial_use", "effective_terms.share_alike"} <= locations
    with pytest.raises(Conflict):
        moderation_decide(version=v, actor=moderator.user, decision="approve")
    v.refresh_from_db()
    assert v.state == VersionState.IN_REVIEW
    resp = moderator.client.post(f"/api/v1/moderation/versions/{v.pk}/decision/", {"decision": "approve"}, format="json")
    assert resp.status_code == 409 and resp.json()["code"] == "terms_too_permissive"


def test_split_licensed_version_may_declare_commercial_annotations(seller, moderator):
    """Commercial annotations over images of which only some allow commercial use: the whole
    grants no commercial use, the commercially usable subset does (sold on its own)."""
    v = make_version(seller, license="CC-BY-4.0", statistics=stats(("by-2", 7), ("by-nc-2", 3)), state=VersionState.IN_REVIEW)
    t = version_effective_terms(version=v)
    assert t["commercial_use"] is False and t["commercial_images"] == 7 and t["conflicts"] == []
    assert moderation_decide(version=v, actor=moderator.user, decision="approve").state == VersionState.PUBLISHED
    # Still too permissive where nothing supports it: share-alike inputs under a declaration without it.
    w = make_version(seller, license="CC-BY-4.0", statistics=stats(("by-2", 7), ("by-nc-sa-2", 3)))
    (conflict,) = version_effective_terms(version=w)["conflicts"]
    assert conflict["code"] == "declared_terms_too_permissive" and conflict["terms"] == ["share_alike"]


def test_publish_allowed_when_declared_matches_inputs(seller, moderator):
    v = make_version(seller, license="CC-BY-NC-SA-4.0", statistics=stats(("by-2", 5), ("by-nc-sa-2", 5)), state=VersionState.IN_REVIEW)
    assert moderation_decide(version=v, actor=moderator.user, decision="approve").state == VersionState.PUBLISHED


def test_publish_blocked_for_unknown_declared_license(seller):
    v = make_version(seller, license="Made-Up-1.0", statistics=stats(("by-2", 1)))
    with pytest.raises(Conflict) as exc:
        version_publish_check(version=v)
    assert exc.value.code == "unknown_license"
