"""A moderator who belongs to the seller's organization reads its version but decides
nothing on it: every decision and provenance review is 403 ``own_organization`` in the
API and in the moderators' desk, which shows a banner instead of the forms; another
moderator decides as usual."""

from __future__ import annotations

import pytest

from datasets.states import VersionState
from licensing.models import FieldStatus, ProvenanceField
from licensing.services import moderation_decide
from marketplace.accounts import services as account_services
from marketplace.audit.models import AuditEvent
from tests.licensing.test_moderation_desk import QUEUE, in_review, signed_in, text

pytestmark = pytest.mark.django_db


@pytest.fixture
def insider(seller, moderator):
    """The moderator, also a member (buyer role, not even seller) of the seller's organization."""
    account_services.membership_add(user=moderator.user, organization=seller.org, role="buyer")
    return moderator


def _refused(resp):
    assert resp.status_code == 403, resp.content
    body = resp.json()
    assert body["code"] == "own_organization" and body["details"][0]["code"] == "own_organization"
    return body


API_ACTIONS = [
    ("in_review", "decision/", {"decision": "approve"}),
    ("in_review", "decision/", {"decision": "reject", "reason": "no"}),
    ("in_review", "decision/", {"decision": "request_changes", "reason": "no"}),
    ("in_review", "fields/", {"fields": [{"name": "locations", "status": "verified", "note": ""}]}),
    ("in_review", "fields/", {"fields": [{"name": "locations", "status": "disputed", "note": "mine"}]}),
    ("published", "suspend/", {"reason": "mine"}),
    ("suspended", "reinstate/", {"reason": "mine"}),
]


def _in_state(seller, outsider, state):
    v = in_review(seller)
    if state in ("published", "suspended"):
        moderation_decide(version=v, actor=outsider.user, decision="approve")
    if state == "suspended":
        from licensing.services import version_suspend

        version_suspend(version=v, actor=outsider.user, reason="setup")
    v.refresh_from_db()
    assert v.state == state
    return v


@pytest.mark.parametrize(("state", "path", "body"), API_ACTIONS)
def test_api_refuses_every_decision_on_an_own_organization_version(state, path, body, seller, insider, db):
    from tests import factories

    outsider = factories.make_moderator(username="moderator-outside")
    v = _in_state(seller, outsider, state)
    events = AuditEvent.objects.count()
    fields_before = list(ProvenanceField.objects.filter(record__version=v).values_list("name", "status", "note"))

    _refused(insider.client.post(f"/api/v1/moderation/versions/{v.pk}/{path}", body, format="json"))
    v.refresh_from_db()
    assert v.state == state  # nothing changed
    assert AuditEvent.objects.count() == events
    assert list(ProvenanceField.objects.filter(record__version=v).values_list("name", "status", "note")) == fields_before
    # The insider may still read it; another moderator decides.
    assert insider.client.get(f"/api/v1/moderation/versions/{v.pk}/").status_code == 200
    assert outsider.client.post(f"/api/v1/moderation/versions/{v.pk}/{path}", body, format="json").status_code == 200


def test_desk_shows_a_banner_and_no_decision_or_review_form_and_refuses_posts(seller, seller_b, insider):
    own, other = in_review(seller), in_review(seller_b)
    browser = signed_in(insider)

    page = browser.get(f"{QUEUE}{own.pk}/change/")
    assert page.status_code == 200
    html, words = page.content.decode(), text(page)
    assert "mod-own-organization" in html and "own_organization" in words
    assert f"You are a member of {seller.org.name}" in words
    assert "mod-decision-form" not in html and "mod-field-form" not in html
    assert "Record decision" not in words and "Verify" not in words

    # The other seller's version: the usual forms, no banner.
    page = browser.get(f"{QUEUE}{other.pk}/change/")
    assert "mod-own-organization" not in page.content.decode() and "mod-decision-form" in page.content.decode()

    # Posting anyway is the API's refusal, shown on the page, with nothing changed.
    events = AuditEvent.objects.count()
    resp = browser.post(f"{QUEUE}{own.pk}/decision/", {"decision": "approve", "reason": ""})
    assert resp.status_code == 403 and "own_organization" in text(resp)
    resp = browser.post(f"{QUEUE}{own.pk}/fields/", {"name": "locations", "status": FieldStatus.VERIFIED, "note": ""})
    assert resp.status_code == 403 and "own_organization" in text(resp)
    own.refresh_from_db()
    assert own.state == VersionState.IN_REVIEW and AuditEvent.objects.count() == events
    assert not ProvenanceField.objects.filter(record__version=own, name="locations", status=FieldStatus.VERIFIED).exists()
