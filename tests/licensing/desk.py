"""A moderator's case, built through the real services: a dataset whose first version was
sent back, a second version in review with real quality reports (computed in-process by
``report_compute`` on generated masks and an auditor's reference: figures, plots,
overlays), provenance with a consent record and its document, and the real checks; the
seller's other, published dataset; and another seller's version in review whose terms
conflict and whose checks fail."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

from datasets.models import DatasetFile, DatasetVersion
from datasets.services import version_transition
from datasets.states import VersionState
from licensing.services import checks_run, moderation_decide, provenance_update
from quality.services import report_compute
from tests import factories
from tests.licensing.conftest import move, stats
from tests.licensing.test_provenance import GOOD
from tests.quality.app.data import seed_version

# What the seller declares: complete, with a foundation model whose human review is not
# declared (a failed warning for the moderator to weigh).
DECLARED = {
    **GOOD,
    "sessions": ["s-001", "s-002"],
    "rai:machineAnnotationTools": [{"name": "SAM", "version": "2.1", "proposed_share": 0.8, "reviewed_share": 1.0}, {"name": "GroundingDINO", "version": "1.5"}],
}
DOCUMENT = b"%PDF-1.4\n% consent protocol for recording sessions s-001 and s-002\n%%EOF\n"


@dataclass
class Case:
    version: DatasetVersion  # in review, with reports, checks and provenance
    earlier: DatasetVersion  # the same dataset's first version, changes requested
    other_listing: DatasetVersion  # the seller's other dataset, published
    conflicted: DatasetVersion  # another seller's version in review: terms conflict, failed checks
    document: DatasetFile


def provenance_document(version: DatasetVersion, path: str = "consent/protocol.pdf") -> DatasetFile:
    from marketplace.core.storage import get_storage

    key = f"test-desk/{version.pk}/{hashlib.sha256(DOCUMENT).hexdigest()[:12]}/{path}"
    get_storage().put_bytes(key, DOCUMENT, content_type="application/pdf")
    return DatasetFile.objects.create(
        version=version, role="provenance_docs", path=path, size=len(DOCUMENT), sha256=hashlib.sha256(DOCUMENT).hexdigest(), content_type="application/pdf", storage_key=key
    )


def in_review_with_reports(seller, dataset, *, reports=("intrinsic", "audit", "agreement")) -> tuple[DatasetVersion, DatasetFile]:
    """A version of ``dataset`` in review whose reports and checks were computed for real."""
    version = factories.make_version(seller=seller, dataset=dataset)
    seed_version(version, second_pass=True, images="scene")
    version.statistics = stats(("by-2", 20), categories=[{"id": 1, "name": "mug", "count": 20}, {"id": 2, "name": "gripper", "count": 10}], instances=30)
    version.save(update_fields=["statistics"])
    document = provenance_document(version)
    provenance_update(
        version=version, actor=seller.user, fields=DECLARED,
        consent_records=[{"session_id": "s-001", "consent_id": "C-17", "legal_basis": "consent", "document_file_id": document.pk}],
    )
    version_transition(version=version, to_state=VersionState.SUBMITTED, actor=seller.user)
    version_transition(version=version, to_state=VersionState.PROCESSING, actor=None)
    for kind in reports:
        report_compute(version_id=version.pk, kind=kind, device="cpu")
    checks_run(version_id=version.pk)
    version_transition(version=version, to_state=VersionState.IN_REVIEW, actor=None)
    version.refresh_from_db()
    return version, document


def review_case(*, seller, other_seller, moderator) -> Case:
    dataset = factories.make_dataset(seller=seller, slug="bin-picking-mugs", title="Bin picking: mugs and grippers", annotation_license="CC-BY-4.0")
    earlier = factories.make_version(seller=seller, dataset=dataset)
    earlier.statistics = stats(("by-2", 18))
    earlier.save(update_fields=["statistics"])
    move(earlier, VersionState.IN_REVIEW, seller.user)
    moderation_decide(version=earlier, actor=moderator.user, decision="request_changes", reason="the gripper masks are boxes, not outlines")

    other = factories.make_dataset(seller=seller, slug="drawer-opening", title="Drawer opening, wrist camera")
    other_listing = factories.make_version(seller=seller, dataset=other)
    other_listing.statistics = stats(("by-2", 40))
    other_listing.save(update_fields=["statistics"])
    move(other_listing, VersionState.PUBLISHED, seller.user)

    version, document = in_review_with_reports(seller, dataset)

    conflicted = factories.make_version(
        seller=other_seller, dataset=factories.make_dataset(seller=other_seller, slug="kitchen-clutter", title="Kitchen clutter", annotation_license="CC-BY-4.0")
    )
    conflicted.statistics = stats(("by-2", 30), ("by-nc-2", 12), without=3)
    conflicted.save(update_fields=["statistics"])
    move(conflicted, VersionState.IN_REVIEW, other_seller.user)
    checks_run(version_id=conflicted.pk)
    return Case(version=version, earlier=earlier, other_listing=other_listing, conflicted=conflicted, document=document)
