"""POST /api/v1/dataset-cards/check/: the whole dataset card checked before anything is
written, every error located by card key; it writes nothing, valid or not."""

import pytest

from datasets.models import Dataset, DatasetVersion
from licensing.models import ConsentRecord, ProvenanceField
from marketplace.audit.models import AuditEvent
from tests.factories import make_dataset

pytestmark = pytest.mark.django_db
URL = "/api/v1/dataset-cards/check/"


def _check(actor, card, slug="card-set", **extra):
    return actor.client.post(URL, {"slug": slug, "card": card, **extra}, format="json")


def _nothing_written(before: int) -> None:
    assert not Dataset.objects.filter(slug="card-set").exists()
    assert not DatasetVersion.objects.exists() and not ProvenanceField.objects.exists() and not ConsentRecord.objects.exists()
    assert AuditEvent.objects.count() == before


def test_a_valid_card_is_accepted_and_nothing_is_written(seller):
    before = AuditEvent.objects.count()
    card = {
        "title": "Shelves",
        "annotation_license": "CC-BY-4.0",
        "price": "10.00",
        "sensors": ["rgb", "depth"],
        "splits": ["train", "val"],
        "provenance": {"locations": ["DE"], "human_subjects": False},
        "consent_records": [{"session_id": "s1", "legal_basis": "contract"}],
    }
    r = _check(seller, card)
    assert r.status_code == 200, r.content
    assert r.json() == {"valid": True, "exists": False}
    _nothing_written(before)


def test_every_error_is_located_by_card_key(seller):
    before = AuditEvent.objects.count()
    card = {
        "title": "",
        "annotation_license": "cc by 4.0",
        "price": "-1",
        "colour": "blue",
        "modality": "images",
        "sensors": ["rgb", "sonar"],
        "splits": ["train", "train", "a/b"],
        "provenance": {"rai:dataCollectionType": "by hand", "locations": ["Germany"], "no_such_field": 1},
        "consent_records": [{"session_id": "s1", "legal_basis": "consent", "extra": 1}, {"session_id": "s1", "legal_basis": "whim"}],
    }
    r = _check(seller, card)
    assert r.status_code == 400 and r.json()["code"] == "invalid_card"
    located = {(d["location"], d["code"]) for d in r.json()["details"]}
    assert located == {
        ("title", "blank"),
        ("annotation_license", "unknown_license"),
        ("price", "min_value"),
        ("colour", "unknown_field"),
        ("modality", "renamed"),
        ("sensors[1]", "invalid_choice"),
        ("splits[1]", "duplicate"),
        ("splits[2]", "invalid"),
        ("provenance.rai:dataCollectionType", "invalid"),
        ("provenance.locations", "invalid"),
        ("provenance.no_such_field", "unknown_field"),
        ("consent_records[0].extra", "unknown_field"),
        ("consent_records[1].session_id", "duplicate"),
        ("consent_records[1].legal_basis", "invalid_choice"),
    }
    hint = next(d for d in r.json()["details"] if d["location"] == "annotation_license")["message"]
    assert "did you mean 'CC-BY-4.0'" in hint
    _nothing_written(before)


def test_submit_requires_what_a_submission_needs(seller):
    r = _check(seller, {"title": "Shelves", "annotation_license": "CC-BY-4.0", "provenance": {"locations": ["DE"]}}, submit=True)
    assert r.status_code == 400
    missing = {d["location"] for d in r.json()["details"] if d["code"] == "required"}
    assert "provenance.rai:dataUseCases" in missing and "provenance.locations" not in missing


def test_the_slug_of_another_organization_is_refused_and_ones_own_is_updated(seller, seller_b):
    make_dataset(seller=seller_b, slug="theirs")
    r = _check(seller, {"title": "Mine", "annotation_license": "CC-BY-4.0"}, slug="theirs")
    assert r.status_code == 400 and [(d["location"], d["code"]) for d in r.json()["details"]] == [("dataset", "slug_taken")]
    make_dataset(seller=seller, slug="mine")
    r = _check(seller, {"title": "Mine", "annotation_license": "CC-BY-4.0"}, slug="mine")
    assert r.status_code == 200 and r.json()["exists"] is True


def test_only_sellers_check_cards(buyer, api_client):
    assert _check(buyer, {"title": "x", "annotation_license": "CC-BY-4.0"}).status_code == 403
    assert api_client.post(URL, {"slug": "x", "card": {}}, format="json").status_code == 401
