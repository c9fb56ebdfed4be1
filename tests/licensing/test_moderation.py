"""Moderation through the API end to end, route protection, and the audit log."""

import pytest
from django.db import connection, transaction

from datasets.states import VersionState
from marketplace.audit.models import AppendOnlyError, AuditEvent
from tests.licensing.conftest import make_version, stats

pytestmark = pytest.mark.django_db
METHODS = ("get", "post", "put", "patch", "delete")


def routes(vid):
    base = f"/api/v1/moderation/versions/{vid}/"
    return ["/api/v1/moderation/queue/", base, base + "fields/", base + "decision/", base + "suspend/", base + "reinstate/"]


def test_moderator_works_the_queue_end_to_end(seller, moderator, django_capture_on_commit_callbacks):
    """The listing follows each decision (its re-sync is a reaction delivered after commit)."""
    from marketplace.listings.models import Listing

    v = make_version(seller, license="CC-BY-4.0", statistics=stats(("by-2", 3)), state=VersionState.IN_REVIEW)
    c = moderator.client
    queue = c.get("/api/v1/moderation/queue/").json()
    assert [row["id"] for row in queue["results"]] == [v.pk]
    detail = c.get(f"/api/v1/moderation/versions/{v.pk}/").json()
    assert {"checks", "effective_terms", "quality_summary", "provenance"} <= set(detail)
    assert detail["effective_terms"]["commercial_use"] is True
    resp = c.post(f"/api/v1/moderation/versions/{v.pk}/fields/", {"fields": [{"name": "locations", "status": "disputed", "note": "no evidence"}]}, format="json")
    assert resp.status_code == 200
    with django_capture_on_commit_callbacks(execute=True):
        resp = c.post(f"/api/v1/moderation/versions/{v.pk}/decision/", {"decision": "approve", "reason": "looks right"}, format="json")
    assert resp.status_code == 200 and resp.json()["state"] == "published"
    assert Listing.objects.get(dataset=v.dataset).is_public
    assert c.get("/api/v1/moderation/queue/").json()["results"] == []
    assert c.post(f"/api/v1/moderation/versions/{v.pk}/suspend/", {"reason": ""}, format="json").status_code == 400
    with django_capture_on_commit_callbacks(execute=True):
        resp = c.post(f"/api/v1/moderation/versions/{v.pk}/suspend/", {"reason": "DMCA notice"}, format="json")
    assert resp.json()["state"] == "suspended" and not Listing.objects.get(dataset=v.dataset).is_public
    with django_capture_on_commit_callbacks(execute=True):
        resp = c.post(f"/api/v1/moderation/versions/{v.pk}/reinstate/", {"reason": "notice withdrawn"}, format="json")
    assert resp.json()["state"] == "published" and Listing.objects.get(dataset=v.dataset).is_public
    actions = set(AuditEvent.objects.filter(actor=moderator.user).values_list("action", flat=True))
    assert {"provenance.field.disputed", "moderation.approve", "moderation.suspend", "moderation.reinstate"} <= actions
    assert AuditEvent.objects.get(action="moderation.suspend").reason == "DMCA notice"


@pytest.mark.parametrize(("decision", "state"), [("reject", "rejected"), ("request_changes", "changes_requested")])
def test_reject_and_request_changes_need_a_reason(seller, moderator, decision, state):
    v = make_version(seller, statistics=stats(("by-2", 1)), state=VersionState.IN_REVIEW)
    url = f"/api/v1/moderation/versions/{v.pk}/decision/"
    assert moderator.client.post(url, {"decision": decision}, format="json").status_code == 400
    resp = moderator.client.post(url, {"decision": decision, "reason": "masks are boxes"}, format="json")
    assert resp.json()["state"] == state
    assert AuditEvent.objects.filter(action=f"moderation.{decision}", reason="masks are boxes").exists()
    assert moderator.client.post(url, {"decision": "approve"}, format="json").status_code == 409


def test_approving_a_new_version_withdraws_the_previous_one(seller, moderator):
    from datasets.services import version_transition
    from tests import factories

    v1 = make_version(seller, statistics=stats(("by-2", 1)), state=VersionState.IN_REVIEW)
    moderator.client.post(f"/api/v1/moderation/versions/{v1.pk}/decision/", {"decision": "approve"}, format="json")
    v2 = factories.make_version(seller=seller, dataset=v1.dataset)
    v2.statistics = stats(("by-2", 2))
    v2.save()
    for s in (VersionState.SUBMITTED, VersionState.PROCESSING, VersionState.IN_REVIEW):
        version_transition(version=v2, to_state=s, actor=None)
    resp = moderator.client.post(f"/api/v1/moderation/versions/{v2.pk}/decision/", {"decision": "approve"}, format="json")
    assert resp.status_code == 200
    v1.refresh_from_db()
    assert v1.state == VersionState.WITHDRAWN


@pytest.mark.parametrize("who", ["seller", "buyer", "auditor", "anonymous"])
def test_non_moderators_refused_on_every_moderation_route_and_method(who, seller, buyer, auditor, api_client):
    v = make_version(seller, statistics=stats(("by-2", 1)), state=VersionState.IN_REVIEW)
    client = {"seller": seller.client, "buyer": buyer.client, "auditor": auditor.client, "anonymous": api_client}[who]
    for url in routes(v.pk):
        for method in METHODS:
            resp = getattr(client, method)(url, {"decision": "approve", "fields": [{"name": "locations", "status": "verified"}]}, format="json")
            assert resp.status_code in (401, 403, 404), f"{who} {method} {url} -> {resp.status_code}"
    v.refresh_from_db()
    assert v.state == VersionState.IN_REVIEW


def test_audit_events_for_staff_with_filters_and_for_sellers_their_own(seller, seller_b, moderator, buyer):
    va = make_version(seller)
    vb = make_version(seller_b)
    staff = moderator.client.get("/api/v1/audit-events/", {"object_type": "datasets.datasetversion", "object_id": str(va.pk)}).json()["results"]
    assert staff and all(e["object_id"] == str(va.pk) for e in staff)
    assert set(staff[0]) == {"id", "actor", "action", "object_type", "object_id", "organization", "before", "after", "reason", "created_at"}
    mine = seller.client.get("/api/v1/audit-events/").json()["results"]
    assert mine and {e["organization"] for e in mine} == {seller.org.slug}
    assert str(vb.pk) not in {e["object_id"] for e in mine if e["object_type"] == "datasets.datasetversion"}
    assert buyer.client.get("/api/v1/audit-events/").json()["results"] == []
    by_action = moderator.client.get("/api/v1/audit-events/", {"action": "version.create", "organization": seller_b.org.slug}).json()["results"]
    assert [e["object_id"] for e in by_action] == [str(vb.pk)]


def test_audit_events_cannot_be_changed_or_deleted(seller):
    make_version(seller)
    event = AuditEvent.objects.first()
    event.reason = "tampered"
    with pytest.raises(AppendOnlyError):
        event.save()
    with pytest.raises(AppendOnlyError):
        event.delete()
    with pytest.raises(AppendOnlyError):
        AuditEvent.objects.filter(pk=event.pk).update(reason="tampered")
    with pytest.raises(AppendOnlyError):
        AuditEvent.objects.all().delete()
    for sql in ("UPDATE audit_auditevent SET reason = 'tampered' WHERE id = %s", "DELETE FROM audit_auditevent WHERE id = %s"):
        with pytest.raises(Exception, match="append-only"), transaction.atomic(), connection.cursor() as cur:
            cur.execute(sql, [event.pk])
    event.refresh_from_db()
    assert event.reason == ""


def test_moderator_sees_agreement_and_inconsistent_labeling(seller, moderator):
    from licensing.services import checks_run
    from tests.licensing.test_checks import _with_second_pass

    v = _with_second_pass(seller, jitter=4)
    checks_run(version_id=v.pk)
    detail = moderator.client.get(f"/api/v1/moderation/versions/{v.pk}/").json()
    assert detail["inconsistent_labeling"] is True
    agreement = detail["quality_summary"]["agreement"]
    assert agreement["status"] == "measured" and agreement["value"] < 0.85 and agreement["ci"][0] <= agreement["value"]
    check = next(c for c in detail["checks"] if c["code"] == "inconsistent_labeling")
    assert check["status"] == "failed" and check["severity"] == "warning"
    assert check["evidence"]["threshold"] == 0.85 and check["evidence"]["agreement"]["value"] == agreement["value"]


def test_moderator_sees_declared_figures_as_self_declared(seller, moderator):
    from licensing.services import provenance_update

    v = make_version(seller, statistics=stats(("by-2", 1)))
    provenance_update(version=v, actor=seller.user, fields={"declared_mask_iou": 0.93})
    detail = moderator.client.get(f"/api/v1/moderation/versions/{v.pk}/").json()
    assert detail["quality_summary"]["mask_iou"] == {"value": 0.93, "ci": None, "n": None, "status": "self-declared"}
    assert detail["inconsistent_labeling"] is None
