"""What blocks publication: failing error-severity checks, and license terms that cannot be
honoured (no-derivatives images under masks, share-alike licenses no one license satisfies)."""

import pytest

from datasets.states import VersionState
from licensing.models import CheckResult
from licensing.services import checks_run, provenance_update
from tests.licensing.conftest import make_version, move, stats
from tests.licensing.test_provenance import GOOD

pytestmark = pytest.mark.django_db


def decide(moderator, version, decision="approve"):
    return moderator.client.post(f"/api/v1/moderation/versions/{version.pk}/decision/", {"decision": decision, "reason": "reviewed"}, format="json")


def test_approval_with_an_error_check_standing_answers_409_naming_the_checks(seller, moderator):
    # People recorded in France without consent records, and most provenance missing: two
    # error-severity checks fail.
    v = make_version(seller, statistics=stats(("by-2", 4)))
    provenance_update(version=v, actor=seller.user, fields={"human_subjects": True, "locations": ["FR"], "sessions": ["s1"]})
    checks_run(version_id=v.pk)
    failing = set(CheckResult.objects.filter(version=v, status="failed", severity="error").values_list("code", flat=True))
    assert failing == {"provenance_missing_fields", "consent_not_covering_sessions"}
    move(v, VersionState.IN_REVIEW, seller.user)
    resp = decide(moderator, v)
    assert resp.status_code == 409, resp.content
    body = resp.json()
    assert body["code"] == "checks_failed"
    assert {d["location"] for d in body["details"]} == failing
    assert all(d["code"] == "check_failed" and d["message"] for d in body["details"])
    v.refresh_from_db()
    assert v.state == VersionState.IN_REVIEW


def test_approval_goes_through_once_the_checks_pass(seller, moderator):
    v = make_version(seller, statistics=stats(("by-2", 4)))
    checks_run(version_id=v.pk)
    assert CheckResult.objects.filter(version=v, code="provenance_missing_fields", status="failed").exists()
    provenance_update(version=v, actor=seller.user, fields=GOOD)
    checks_run(version_id=v.pk)
    assert not CheckResult.objects.filter(version=v, status="failed", severity="error").exists()
    move(v, VersionState.IN_REVIEW, seller.user)
    resp = decide(moderator, v)
    assert resp.status_code == 200 and resp.json()["state"] == "published"


def test_a_failing_warning_check_does_not_block(seller, moderator):
    v = make_version(seller, statistics=stats(("by-2", 4)))
    provenance_update(version=v, actor=seller.user, fields={**GOOD, "rai:machineAnnotationTools": [{"name": "SAM", "proposed_share": 0.9}]})
    checks_run(version_id=v.pk)
    assert CheckResult.objects.get(version=v, code="foundation_model_unreviewed").status == "failed"
    move(v, VersionState.IN_REVIEW, seller.user)
    assert decide(moderator, v).status_code == 200


def test_rejection_is_not_blocked_by_failing_checks(seller, moderator):
    v = make_version(seller, statistics=stats(("by-2", 4)))
    checks_run(version_id=v.pk)
    assert CheckResult.objects.filter(version=v, status="failed", severity="error").exists()
    move(v, VersionState.IN_REVIEW, seller.user)
    assert decide(moderator, v, "reject").json()["state"] == "rejected"


def test_no_derivatives_images_block_approval(seller, moderator):
    v = make_version(seller, license="CC-BY-NC-ND-4.0", statistics=stats(("by-nd-2", 2)), state=VersionState.IN_REVIEW)
    resp = decide(moderator, v)
    assert resp.status_code == 409 and resp.json()["code"] == "derivatives_not_allowed"
    assert [d["location"] for d in resp.json()["details"]] == ["effective_terms.licenses"]
    assert "CC-BY-ND-2.0" in resp.json()["details"][0]["message"]


def test_incompatible_share_alike_blocks_approval(seller, moderator):
    v = make_version(seller, license="ODbL-1.0", statistics=stats(("by-sa-2", 5)), state=VersionState.IN_REVIEW)
    resp = decide(moderator, v)
    assert resp.status_code == 409 and resp.json()["code"] == "incompatible_share_alike"
    v.refresh_from_db()
    assert v.state == VersionState.IN_REVIEW


def test_a_suspended_version_with_a_failing_error_check_is_not_reinstated(seller, moderator):
    v = make_version(seller, statistics=stats(("by-2", 4)))
    provenance_update(version=v, actor=seller.user, fields=GOOD)
    move(v, VersionState.IN_REVIEW, seller.user)
    assert decide(moderator, v).status_code == 200
    moderator.client.post(f"/api/v1/moderation/versions/{v.pk}/suspend/", {"reason": "complaint"}, format="json")
    CheckResult.objects.create(version=v, code="image_personal_metadata", status="failed", severity="error", message="GPS in 1 image")
    resp = moderator.client.post(f"/api/v1/moderation/versions/{v.pk}/reinstate/", {"reason": "fixed?"}, format="json")
    assert resp.status_code == 409 and resp.json()["code"] == "checks_failed"
    assert [d["location"] for d in resp.json()["details"]] == ["image_personal_metadata"]
