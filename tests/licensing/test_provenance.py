"""The provenance record: the seller edits values while draft; statuses are the moderators'."""

import pytest

from datasets.states import VersionState
from licensing.models import FieldStatus
from licensing.selectors import provenance_completeness
from marketplace.audit.models import AuditEvent
from tests.licensing.conftest import make_version, move

pytestmark = pytest.mark.django_db

GOOD = {
    "rai:dataCollection": "Teleoperated pick-and-place in two labs",
    "rai:dataCollectionType": "teleoperation",
    "rai:dataCollectionTimeFrame": {"start": "2024-01-01", "end": "2024-03-31"},
    "locations": ["DE", "US"],
    "human_subjects": False,
    "rai:dataAnnotationPlatform": ["CVAT 2.11"],
    "rai:dataAnnotationProtocol": ["two-hour training, guideline v3"],
    "rai:annotationsPerItem": 2,
    "rai:dataAnnotationAnalysis": ["10% double annotation, disagreements adjudicated"],
    "rai:dataUseCases": ["grasp-point segmentation"],
    "rai:dataLimitations": ["indoor only"],
    "rai:machineAnnotationTools": [{"name": "SAM", "version": "2.1", "proposed_share": 0.8, "reviewed_share": 1.0}],
    "declared_agreement": 0.82,
}


def url(v):
    return f"/api/v1/versions/{v.pk}/provenance/"


def test_seller_sets_fields_while_draft_with_rai_names(seller):
    v = make_version(seller)
    resp = seller.client.put(url(v), {"fields": GOOD, "consent_records": [{"session_id": "s1", "legal_basis": "consent"}]}, format="json")
    assert resp.status_code == 200, resp.json()
    body = resp.json()
    assert body["fields"]["rai:dataCollection"] == {**body["fields"]["rai:dataCollection"], "value": GOOD["rai:dataCollection"], "status": "self-declared"}
    assert body["consent_records"] == [
        {
            "session_id": "s1", "consent_id": "", "legal_basis": "consent", "scope": "", "given_on": None,
            "sessions": [], "episodes": [], "videos": [], "files": [], "document_file_id": None, "revoked_at": None,
        }
    ]
    assert 0 < body["completeness"] < 1 and body["verified_share"] == 0
    assert AuditEvent.objects.filter(action="provenance.update", object_id=str(v.pk)).exists()


def test_seller_cannot_set_status(seller):
    v = make_version(seller)
    # A status sent next to the values is refused, and one inside a value does not validate.
    resp = seller.client.put(url(v), {"fields": {"locations": ["DE"]}, "status": {"locations": "verified"}}, format="json")
    assert resp.status_code == 400
    resp = seller.client.put(url(v), {"fields": {"locations": {"value": ["DE"], "status": "verified"}}}, format="json")
    assert resp.status_code == 400
    seller.client.put(url(v), {"fields": {"locations": ["DE"]}}, format="json")
    assert seller.client.get(url(v)).json()["fields"]["locations"]["status"] == "self-declared"
    # Nor through the moderation route.
    resp = seller.client.post(f"/api/v1/moderation/versions/{v.pk}/fields/", {"fields": [{"name": "locations", "status": "verified"}]}, format="json")
    assert resp.status_code == 403
    assert provenance_completeness(version=v)["verified_share"] == 0


def test_invalid_values_are_refused_with_locations(seller):
    v = make_version(seller)
    resp = seller.client.put(url(v), {"fields": {"locations": ["Germany"], "nonsense": 1, "declared_agreement": 1.5}}, format="json")
    assert resp.status_code == 400
    locations = {d["location"] for d in resp.json()["details"]}
    assert {"fields.locations", "fields.nonsense", "fields.declared_agreement"} <= locations


def test_seller_cannot_edit_after_submission_or_others_versions(seller, seller_b):
    v = make_version(seller)
    assert seller_b.client.put(url(v), {"fields": {"locations": ["DE"]}}, format="json").status_code == 404
    assert seller_b.client.get(url(v)).status_code == 404
    move(v, VersionState.SUBMITTED, seller.user)
    resp = seller.client.put(url(v), {"fields": {"locations": ["DE"]}}, format="json")
    assert resp.status_code == 409 and resp.json()["code"] == "version_frozen"


def test_moderator_verifies_and_disputes_fields_with_audit(seller, moderator):
    v = make_version(seller)
    seller.client.put(url(v), {"fields": GOOD}, format="json")
    move(v, VersionState.IN_REVIEW, seller.user)
    resp = moderator.client.post(
        f"/api/v1/moderation/versions/{v.pk}/fields/",
        {"fields": [{"name": "locations", "status": "verified", "note": "matches logs"}, {"name": "declared_agreement", "status": "disputed", "note": "measured 0.70"}]},
        format="json",
    )
    assert resp.status_code == 200, resp.json()
    fields = resp.json()["fields"]
    assert fields["locations"]["status"] == FieldStatus.VERIFIED and fields["declared_agreement"]["status"] == FieldStatus.DISPUTED
    assert fields["declared_agreement"]["note"] == "measured 0.70"
    assert resp.json()["verified_share"] > 0
    assert AuditEvent.objects.filter(action="provenance.field.verified", actor=moderator.user).count() == 1
    assert AuditEvent.objects.filter(action="provenance.field.disputed", reason="measured 0.70").count() == 1
    resp = moderator.client.post(f"/api/v1/moderation/versions/{v.pk}/fields/", {"fields": [{"name": "locations", "status": "disputed"}]}, format="json")
    assert resp.status_code == 400  # a dispute needs a note


def test_consent_records_cover_sessions_episodes_videos_files_or_an_annotation_attribute(seller):
    v = make_version(seller)
    records = [
        {"consent_id": "C-1", "legal_basis": "consent", "scope": "recording and ML training", "given_on": "2026-03-02", "episodes": ["e1", "e2"], "files": ["images/0001.png"]},
        {"consent_id": "C-2", "legal_basis": "contract"},  # the images and videos whose consent_id attribute is C-2
        {"legal_basis": "consent", "sessions": ["s7"], "videos": ["kitchen-03"]},
    ]
    resp = seller.client.put(url(v), {"consent_records": records}, format="json")
    assert resp.status_code == 200, resp.json()
    first = resp.json()["consent_records"][1]
    assert first["consent_id"] == "C-1" and first["given_on"] == "2026-03-02" and first["episodes"] == ["e1", "e2"] and first["files"] == ["images/0001.png"]
    assert first["scope"] == "recording and ML training" and first["revoked_at"] is None

    nothing = seller.client.put(url(v), {"consent_records": [{"legal_basis": "consent"}, {"consent_id": "C-1", "legal_basis": "consent"}, {"consent_id": "C-1", "legal_basis": "consent"}]}, format="json")
    assert nothing.status_code == 400
    assert [(d["location"], d["code"]) for d in nothing.json()["details"]] == [("consent_records[0].session_id", "required"), ("consent_records[2].consent_id", "duplicate")]
    assert len(seller.client.get(url(v)).json()["consent_records"]) == 3  # a refused update changes nothing


def test_consent_document_must_be_a_provenance_doc_of_the_version(seller):
    v = make_version(seller)
    resp = seller.client.put(url(v), {"consent_records": [{"session_id": "s1", "legal_basis": "consent", "document_file_id": 999999}]}, format="json")
    assert resp.status_code == 400
    assert resp.json()["details"][0]["location"] == "consent_records[0].document_file_id"


def test_consent_document_named_by_its_path_among_the_versions_provenance_documents(seller):
    """A record names its document by path (as the dataset card does): resolved to that
    provenance document of the version; a path the version has no provenance document at
    (unknown, an image, another version's document) or one contradicting document_file_id
    is refused at ``consent_records[i].document`` and changes nothing."""
    from tests.datasets.helpers import add_file, png_bytes

    v, other = make_version(seller), make_version(seller)
    form = add_file(v, role="provenance_docs", path="provenance/consent-c17.pdf", data=b"%PDF-1.4 signed form")
    second = add_file(v, role="provenance_docs", path="provenance/consent-c18.pdf", data=b"%PDF-1.4 another form")
    add_file(v, role="images", path="images/0001.png", data=png_bytes())
    add_file(other, role="provenance_docs", path="provenance/elsewhere.pdf", data=b"%PDF-1.4 other version")
    resp = seller.client.put(url(v), {"consent_records": [{"session_id": "s1", "legal_basis": "consent", "document": "provenance/consent-c17.pdf"}]}, format="json")
    assert resp.status_code == 200, resp.json()
    assert [r["document_file_id"] for r in resp.json()["consent_records"]] == [form.pk]
    events = AuditEvent.objects.count()

    for document, extra, code in (
        ("provenance/missing.pdf", {}, "unknown_document"),
        ("images/0001.png", {}, "unknown_document"),
        ("provenance/elsewhere.pdf", {}, "unknown_document"),
        ("provenance/consent-c17.pdf", {"document_file_id": second.pk}, "conflict"),
    ):
        records = [{"session_id": "s2", "legal_basis": "consent"}, {"session_id": "s3", "legal_basis": "consent", "document": document, **extra}]
        refused = seller.client.put(url(v), {"consent_records": records}, format="json")
        assert refused.status_code == 400, (document, refused.json())
        assert [(d["location"], d["code"]) for d in refused.json()["details"]] == [("consent_records[1].document", code)], document
    shown = seller.client.get(url(v)).json()["consent_records"]
    assert [(r["session_id"], r["document_file_id"]) for r in shown] == [("s1", form.pk)]  # nothing changed
    assert AuditEvent.objects.count() == events


def test_public_provenance_summary_shows_values_and_statuses_and_counts_consent_without_naming_anyone(seller, moderator, api_client):
    """What a buyer reads from a listing: every field's value and status, the consent
    records counted by legal basis; no session or consent id, no moderator note."""
    v = make_version(seller)
    consent = [
        {"session_id": "sess-alice-0412", "consent_id": "CONSENT-ALICE-77", "legal_basis": "consent"},
        {"session_id": "sess-bob-0413", "consent_id": "CONSENT-BOB-78", "legal_basis": "consent"},
        {"session_id": "sess-lab-0414", "legal_basis": "legitimate_interests"},
    ]
    fields = {**GOOD, "sessions": ["sess-alice-0412", "sess-bob-0413", "sess-lab-0414"]}
    assert seller.client.put(url(v), {"fields": fields, "consent_records": consent}, format="json").status_code == 200
    summary_url = f"/api/v1/versions/{v.pk}/provenance/summary/"
    assert api_client.get(summary_url).status_code == 404  # a draft is nobody's business but the seller's
    move(v, VersionState.IN_REVIEW, seller.user)
    moderator.client.post(
        f"/api/v1/moderation/versions/{v.pk}/fields/",
        {"fields": [{"name": "locations", "status": "verified", "note": "matches the logs of Alice's lab"}, {"name": "declared_agreement", "status": "disputed", "note": "measured 0.70"}]},
        format="json",
    )
    from datasets.services import version_transition

    version_transition(version=v, to_state=VersionState.PUBLISHED, actor=moderator.user)

    resp = api_client.get(summary_url)  # anonymous: public while published
    assert resp.status_code == 200
    body = resp.json()
    assert body["version_id"] == v.pk
    assert body["fields"]["locations"] == {"label": body["fields"]["locations"]["label"], "status": "verified", "required": True, "value": ["DE", "US"]}
    assert body["fields"]["declared_agreement"]["status"] == "disputed" and body["fields"]["declared_agreement"]["value"] == 0.82
    assert body["fields"]["rai:dataCollection"]["status"] == "self-declared"
    assert body["fields"]["sessions"]["count"] == 3 and "value" not in body["fields"]["sessions"]
    assert body["consent_records"] == {"records": 3, "sessions": 3, "legal_bases": {"consent": 2, "legitimate_interests": 1}, "with_document": 0}
    text = resp.content.decode()
    for secret in ("sess-alice", "sess-bob", "CONSENT-ALICE", "Alice's lab", "measured 0.70", "session_id", "consent_id", "note"):
        assert secret not in text, secret
