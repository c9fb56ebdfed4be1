"""The merged_instances check: thing segments of the seller's panoptic PNGs that cover
disconnected blobs. One case that triggers it, one that does not, one where it does not apply."""

import json

import pytest

from licensing.services import checks_run
from marketplace.demo_panoptic import panoptic_dataset
from quality.services import report_compute
from tests.datasets.helpers import add_file
from tests.licensing.conftest import make_version

pytestmark = pytest.mark.django_db


def _panoptic_version(seller, *, merged_every: int):
    doc, pngs = panoptic_dataset(images=6, seed=11, merged_every=merged_every)["seller"]
    version = make_version(seller)
    add_file(version, role="panoptic", path="panoptic.json", data=json.dumps(doc).encode())
    for name, blob in pngs.items():
        add_file(version, role="panoptic", path=f"pngs/{name}", data=blob)
    report = report_compute(version_id=version.pk, kind="panoptic", device="cpu")
    return version, report


def test_merged_instances_fails_with_examples_when_two_bolts_share_a_segment(seller):
    version, report = _panoptic_version(seller, merged_every=3)
    # no reference yet: the check is measured from the seller's PNGs alone, PQ waits
    assert report.status == "ok" and "pq" not in report.summary
    assert report.summary["merged_instances"] == {"value": 2.0, "ci": None, "n": 16, "status": "measured"}
    check = {r.code: r for r in checks_run(version_id=version.pk)}["merged_instances"]
    assert check.status == "failed" and check.severity == "warning"
    assert [(e["image_id"], e["category_id"], e["blobs"]) for e in check.evidence["examples"]] == [(3, 1, 2), (6, 1, 2)]


def test_merged_instances_passes_when_every_thing_is_one_blob(seller):
    version, report = _panoptic_version(seller, merged_every=0)
    assert report.summary["merged_instances"]["value"] == 0.0
    check = {r.code: r for r in checks_run(version_id=version.pk)}["merged_instances"]
    assert check.status == "passed" and check.evidence["count"]["n"] == 18


def test_merged_instances_does_not_apply_without_panoptic_data(seller):
    assert {r.code: r for r in checks_run(version_id=make_version(seller).pk)}["merged_instances"].status == "not_applicable"
