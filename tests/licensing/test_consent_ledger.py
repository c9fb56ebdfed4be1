"""The consent ledger's rules in process (real PostgreSQL and S3 endpoint): records cover
sessions by the annotations' attributes and images by a ``consent_id`` attribute; a
revocation lists exactly their frames, is refused (changing nothing) for an unknown or
already revoked record, a missing reason or a version that is not published; a later
version's ingest refuses the revoked subjects and bytes, located; a revocation whose
version was replaced is resolved, not suspended. The end-to-end flow through the API is
tests/listings/test_consent_revocation.py."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from datasets.ingest import version_ingest
from datasets.models import WithdrawnContent
from datasets.services import version_transition
from datasets.states import VersionState
from licensing.models import ConsentRecord, ConsentRevocation
from licensing.services import consent_deadlines_enforce, consent_revocation_record, provenance_update
from marketplace.audit.models import AuditEvent
from marketplace.core.errors import Conflict, InvalidInput
from tests.datasets.helpers import add_file, json_bytes, png_bytes
from tests.factories import make_dataset, make_version

pytestmark = pytest.mark.django_db
# Image i: its session, and the consent id some images carry in the annotations.
IMAGES = {1: ("s1", ""), 2: ("s1", ""), 3: ("s2", "C-tag"), 4: ("s2", "")}


def coco(images: dict[int, tuple[str, str]], colour: int = 0) -> dict:
    rows, anns = [], []
    for i, (session, consent) in images.items():
        row = {"id": i, "file_name": f"images/{i:04d}.png", "width": 32, "height": 24, "license": 1, "session_id": session}
        if consent:
            row["consent_id"] = consent
        rows.append(row)
        anns.append({"id": i, "image_id": i, "category_id": 1, "segmentation": [[2, 2, 12, 2, 12, 12, 2, 12]], "area": 100.0, "bbox": [2, 2, 10, 10], "iscrowd": 0})
    return {
        "licenses": [{"id": 1, "name": "CC BY 4.0", "url": "https://creativecommons.org/licenses/by/4.0/"}],
        "images": rows, "annotations": anns, "categories": [{"id": 1, "name": "mug"}],
    }


def add_version_files(version, images, colour: int = 0) -> None:
    add_file(version, role="annotations", path="annotations/train.json", data=json_bytes(coco(images)))
    for i in images:
        add_file(version, role="images", path=f"images/{i:04d}.png", data=png_bytes(color=(i * 40 + colour, 10, 10)))


def move(version, *states, actor) -> None:
    for state in states:
        version_transition(version=version, to_state=state, actor=actor)
    version.refresh_from_db()


def published_version(seller, dataset):
    version = make_version(seller=seller, dataset=dataset)
    provenance_update(version=version, actor=seller.user, fields={}, consent_records=[
        {"consent_id": "C-operator", "legal_basis": "consent", "sessions": ["s1"]},
        {"consent_id": "C-tag", "legal_basis": "consent", "scope": "background appearances"},
        {"consent_id": "C-other", "legal_basis": "contract", "sessions": ["s2"]},
    ])
    add_version_files(version, IMAGES)
    move(version, VersionState.SUBMITTED, VersionState.PROCESSING, actor=seller.user)
    assert version_ingest(version_id=version.pk) == "ok"
    move(version, VersionState.IN_REVIEW, VersionState.PUBLISHED, actor=seller.user)
    return version


@pytest.fixture
def published(seller):
    return published_version(seller, make_dataset(seller=seller))


def revoke(version, seller, records, reason="the subject asked", on=None):
    return consent_revocation_record(version=version, actor=seller.user, requested_on=on or timezone.localdate(), reason=reason, consent_ids=records)


def test_a_revocation_lists_the_frames_of_its_sessions_and_consent_id_and_later_versions_refuse_them(seller, django_capture_on_commit_callbacks):
    dataset = make_dataset(seller=seller, slug="ledger-set")
    v1 = published_version(seller, dataset)

    with django_capture_on_commit_callbacks(execute=True):
        revocation = revoke(v1, seller, ["C-operator", "C-tag"])
    revocation.refresh_from_db()
    # Session s1 (images 1, 2) by the sessions the record names; image 3 by its consent_id attribute.
    assert sorted(f["path"] for f in revocation.files) == ["images/0001.png", "images/0002.png", "images/0003.png"]
    assert revocation.frames == 3 and revocation.state == "pending" and revocation.files_listed_at is not None
    assert set(ConsentRecord.objects.filter(version=v1, revoked_at__isnull=False).values_list("consent_id", flat=True)) == {"C-operator", "C-tag"}
    v1.refresh_from_db()
    assert v1.revocation_pending and v1.revocation_deadline == revocation.deadline
    remembered = set(WithdrawnContent.objects.filter(dataset=dataset).values_list("kind", "value"))
    assert {("session_id", "s1"), ("consent_id", "C-tag"), ("consent_id", "C-operator")} <= remembered
    assert len([k for k, _v in remembered if k == "sha256"]) == 3

    # The next version: image 1's bytes again, and a new image of session s1.
    v2 = make_version(seller=seller, dataset=dataset)
    add_file(v2, role="annotations", path="annotations/train.json", data=json_bytes(coco({1: ("s9", ""), 5: ("s1", ""), 6: ("s2", "")})))
    add_file(v2, role="images", path="images/0001.png", data=png_bytes(color=(40, 10, 10)))  # the withdrawn bytes
    add_file(v2, role="images", path="images/0005.png", data=png_bytes(color=(1, 2, 3)))
    add_file(v2, role="images", path="images/0006.png", data=png_bytes(color=(4, 5, 6)))
    move(v2, VersionState.SUBMITTED, VersionState.PROCESSING, actor=seller.user)
    assert version_ingest(version_id=v2.pk) == "invalid"
    v2.refresh_from_db()
    refused = sorted((e["location"], e["file"]) for e in v2.validation_report["errors"] if e["code"] == "consent_revoked")
    assert refused == [("images/0001.png", "images/0001.png"), ("images[1].session_id", "annotations/train.json")]
    assert v2.state == VersionState.FAILED_VALIDATION


def test_refused_revocations_change_nothing(published, seller):
    with pytest.raises(InvalidInput) as unknown:
        revoke(published, seller, ["C-nobody", "C-operator"])
    assert unknown.value.code == "invalid_revocation"
    assert [(d["location"], d["code"]) for d in unknown.value.details] == [("records[0]", "unknown_consent_record")]
    with pytest.raises(InvalidInput) as no_reason:
        revoke(published, seller, ["C-operator"], reason="  ")
    assert [d["location"] for d in no_reason.value.details] == ["reason"]
    with pytest.raises(InvalidInput) as future:
        revoke(published, seller, ["C-operator"], on=timezone.localdate() + timedelta(days=2))
    assert [d["location"] for d in future.value.details] == ["requested_on"]
    assert not ConsentRevocation.objects.exists() and not ConsentRecord.objects.filter(revoked_at__isnull=False).exists()
    published.refresh_from_db()
    assert not published.revocation_pending and not AuditEvent.objects.filter(action="consent.revoke").exists()

    revoke(published, seller, ["C-operator"])
    with pytest.raises(InvalidInput) as again:
        revoke(published, seller, ["C-other", "C-operator"])
    assert [(d["location"], d["code"]) for d in again.value.details] == [("records[1]", "consent_already_revoked")]
    assert ConsentRevocation.objects.count() == 1
    assert ConsentRecord.objects.get(version=published, consent_id="C-other").revoked_at is None

    draft = make_version(seller=seller, dataset=published.dataset)
    provenance_update(version=draft, actor=seller.user, fields={}, consent_records=[{"consent_id": "C-other", "legal_basis": "contract"}])
    with pytest.raises(Conflict) as never_published:
        revoke(draft, seller, ["C-other"])
    assert never_published.value.code == "version_never_published"
    assert not ConsentRecord.objects.filter(version=draft, revoked_at__isnull=False).exists()


def test_a_version_no_longer_published_has_its_files_withdrawn_without_a_deadline(published, seller, django_capture_on_commit_callbacks):
    move(published, VersionState.WITHDRAWN, actor=seller.user)  # superseded; its buyers still download it
    with django_capture_on_commit_callbacks(execute=True):
        revocation = revoke(published, seller, ["C-tag"])
    revocation.refresh_from_db()
    published.refresh_from_db()
    assert revocation.state == "resolved" and revocation.closed_at is not None
    assert [f["path"] for f in revocation.files] == ["images/0003.png"]
    assert published.revocation_deadline is None and not published.revocation_pending
    assert consent_deadlines_enforce(now=timezone.now() + timedelta(days=365)) == {"resolved": 0, "suspended": 0}


def test_a_revocation_whose_version_was_replaced_is_resolved_not_suspended(published, seller):
    revocation = revoke(published, seller, ["C-other"])
    assert consent_deadlines_enforce(now=revocation.deadline - timedelta(days=1)) == {"resolved": 0, "suspended": 0}
    move(published, VersionState.WITHDRAWN, actor=seller.user)  # a newer version superseded it
    assert consent_deadlines_enforce(now=revocation.deadline + timedelta(days=1)) == {"resolved": 1, "suspended": 0}
    revocation.refresh_from_db()
    published.refresh_from_db()
    assert revocation.state == "resolved" and published.state == VersionState.WITHDRAWN and published.revocation_deadline is None
    assert AuditEvent.objects.filter(action="consent.resolved").count() == 1
    assert consent_deadlines_enforce(now=revocation.deadline + timedelta(days=2)) == {"resolved": 0, "suspended": 0}  # idempotent


def test_a_revocation_whose_reaction_was_lost_is_applied_by_the_reconciliation(published, seller, django_capture_on_commit_callbacks):
    from licensing.events import ConsentRevoked
    from marketplace import reactions
    from marketplace.core.events import suspended
    from marketplace.listings import reactions as listings_reactions
    from marketplace.listings.services import listings_reconcile

    handler = listings_reactions.on_consent_revoked
    assert (ConsentRevoked, handler) in reactions.REACTIONS
    with suspended(ConsentRevoked, handler), django_capture_on_commit_callbacks(execute=True):
        revocation = revoke(published, seller, ["C-other"])
    revocation.refresh_from_db()
    assert revocation.files_listed_at is None and revocation.files == []
    assert listings_reconcile()["revocations_applied"] == 0  # within its grace period: the reaction may still be running
    ConsentRevocation.objects.filter(pk=revocation.pk).update(recorded_at=timezone.now() - timedelta(minutes=5))
    with django_capture_on_commit_callbacks(execute=True):
        assert listings_reconcile()["revocations_applied"] == 1
    revocation.refresh_from_db()
    assert sorted(f["path"] for f in revocation.files) == ["images/0003.png", "images/0004.png"] and revocation.frames == 2
    assert listings_reconcile()["revocations_applied"] == 0


def test_entitlements_to_a_subset_are_served_without_the_withdrawn_files(published, seller, django_capture_on_commit_callbacks):
    from marketplace.listings.models import Selection
    from marketplace.listings.services import (
        entitlement_serving,
        listing_sync,
        order_create,
        order_mark_paid,
        selection_build,
        version_index_build,
    )
    from marketplace.listings.subsets import Subset
    from tests.factories import make_actor, make_buyer

    listing_sync(dataset=published.dataset)
    version_index_build(version_id=published.pk)
    buyer, staff = make_buyer(), make_actor(is_staff=True)
    with django_capture_on_commit_callbacks(execute=True):
        order, _ = order_create(
            listing=published.dataset.listing, buyer=buyer.org, user=buyer.user, license="CC-BY-4.0", version_number=published.number,
            idempotency_key="mugs", subset=Subset(kind="categories", categories=("mug",)),
        )
        order_mark_paid(order=order, actor=staff.user)
    entitlement = order.entitlement
    with django_capture_on_commit_callbacks(execute=True):
        revoke(published, seller, ["C-tag"])
    # The revocation requested the subset's selection without image 3; a worker builds it.
    (selection,) = [s for s in Selection.objects.filter(version=published) if s.withheld_file_ids]
    assert selection.subset == {"kind": "categories", "categories": ["mug"]}
    selection_build(selection_id=selection.pk)
    files, pending = entitlement_serving(entitlement=entitlement)
    assert not pending
    assert sorted(f.path for f in files if f.role == "images") == ["images/0001.png", "images/0002.png", "images/0004.png"]
