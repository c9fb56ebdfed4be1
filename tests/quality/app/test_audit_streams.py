"""The audit report reads the seller's annotations of the audit sample only, streamed from
the files: the same figures as the engine on the whole file, and memory that grows with the
sample, not with the file."""

from __future__ import annotations

import json
import tracemalloc

import pytest

from datasets.models import AuditSample
from quality.engine.audit import audit_compare
from quality.kinds import ADAPTERS
from tests import factories
from tests.quality.app.data import put_file, set_state
from tests.workers.synthetic import coco_pair

pytestmark = pytest.mark.django_db
MB = 1024 * 1024


def test_the_audit_reads_the_samples_annotations_streamed_with_the_whole_files_figures(seller):
    reference_all, seller_coco, _dets = coco_pair(images=3000, seed=5)
    version = factories.make_version(seller=seller)
    annotations = put_file(version=version, role="annotations", path="annotations.json", data=seller_coco)
    sample = list(range(7, 3000, 150))  # 20 images
    AuditSample.objects.create(version=version, seed=version.pk, size=len(sample), image_ids=sample)
    wanted = set(sample)
    reference = {
        "images": [i for i in reference_all["images"] if i["id"] in wanted],
        "annotations": [a for a in reference_all["annotations"] if a["image_id"] in wanted],
        "categories": reference_all["categories"],
    }
    put_file(version=version, role="reference", path="reference.json", data=reference, origin="audit")
    set_state(version, "processing")

    adapter = ADAPTERS["audit"]
    tracemalloc.start()
    try:
        inputs = adapter.gather(version=version)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert inputs.missing is None
    got = inputs.data["annotations"]
    assert sorted(i["id"] for i in got["images"]) == sorted(sample)
    assert {a["image_id"] for a in got["annotations"]} == wanted
    assert got["annotations"] == [a for a in seller_coco["annotations"] if a["image_id"] in wanted]
    # the figures are those of the whole file
    whole = audit_compare(reference, seller_coco, seed=version.pk, n_boot=50, n_boot_ap=5, image_ids=sorted(sample))
    part = audit_compare(reference, got, seed=version.pk, n_boot=50, n_boot_ap=5, image_ids=sorted(sample))
    assert json.dumps(part.to_dict(), sort_keys=True, default=str) == json.dumps(whole.to_dict(), sort_keys=True, default=str)
    # the inputs' key is the files' checksums, as before: the stored report stays the same
    assert inputs.digests["annotations"]
    assert annotations.size > 2 * MB
    assert peak < annotations.size / 2, f"peak {peak / MB:.1f} MB for a {annotations.size / MB:.1f} MB file"
