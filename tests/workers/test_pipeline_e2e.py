"""The pipeline end to end with real worker processes, Redis, PostgreSQL and the S3
endpoint: a generated dataset goes from submit to in_review through ingest, the audit
sample, the auditor's reference, every quality report and the checks."""

from __future__ import annotations

import pytest

from datasets.states import VersionState
from marketplace.demo import DemoSpec, auditor_reference_upload, dataset_submit_generated, sample_drawn, version_state, wait_for

pytestmark = pytest.mark.worker

WORKER_ENV = {"QUALITY_DEVICE": "cpu", "PIPELINE_MAX_RETRIES": "2", "PIPELINE_RETRY_BACKOFF_MAX": "2"}


def test_submit_to_in_review_with_every_report_once_and_jobs_with_progress(worker_factory, seller, auditor, seller_b):
    from quality.models import QualityReport
    from quality.selectors import applicable_report_kinds
    from workers.models import Job, JobState
    from workers.tasks import job_run

    worker_factory(extra_env=WORKER_ENV)
    reference: dict = {}
    spec = DemoSpec("e2e-stars", "E2E stars", "generated", images=20, seed=5, noise=0.1, price="10.00")
    version = dataset_submit_generated(seller_user=seller.user, org=seller.org, spec=spec, ref_out=reference)

    wait_for(lambda: sample_drawn(version.pk) or version_state(version.pk) != VersionState.PROCESSING and version_state(version.pk) != VersionState.SUBMITTED, timeout=120, what="ingest and the audit sample")
    version.refresh_from_db()
    assert version.state == VersionState.PROCESSING, version.validation_report
    jobs = seller.client.get(f"/api/v1/versions/{version.pk}/jobs/").json()
    by_step = {j["step"]: j for j in jobs["jobs"]}
    assert jobs["state"] == VersionState.PROCESSING  # the audit waits for its reference
    assert by_step["ingest"]["state"] == "succeeded" and by_step["ingest"]["progress"] == 100 and by_step["ingest"]["attempts"] == 1
    assert by_step["ingest"]["worker"]
    assert by_step["quality_audit"]["state"] == "waiting"

    auditor_reference_upload(version=version, auditor_user=auditor.user, reference=reference)
    wait_for(lambda: version_state(version.pk) not in (VersionState.SUBMITTED, VersionState.PROCESSING), timeout=180, what="quality and checks")
    assert version_state(version.pk) == VersionState.IN_REVIEW

    version.refresh_from_db()
    kinds = applicable_report_kinds(version=version)
    assert {"intrinsic", "audit"} <= set(kinds)
    for kind in kinds:
        assert QualityReport.objects.filter(version=version, kind=kind).count() == 1, kind
    audit = QualityReport.objects.get(version=version, kind="audit")
    assert audit.status == "ok" and 0 < audit.summary["mask_iou"]["value"] < 1  # computed from the noisy masks

    body = seller.client.get(f"/api/v1/versions/{version.pk}/jobs/").json()
    steps = {j["step"]: j for j in body["jobs"]}
    assert body["state"] == VersionState.IN_REVIEW
    assert set(steps) >= {"ingest", "audit_sample", "quality_intrinsic", "quality_audit", "checks"}
    assert all(j["state"] == "succeeded" and j["progress"] == 100 for j in body["jobs"]), body["jobs"]
    assert steps["quality_audit"]["device"] == "cpu" and steps["quality_audit"]["engine_version"]
    assert seller_b.client.get(f"/api/v1/versions/{version.pk}/jobs/").status_code == 404

    # A redelivered message finds its job final and writes nothing.
    job = Job.objects.get(version=version, step="quality_audit", state=JobState.SUCCEEDED)
    assert job_run.apply(args=[job.pk]).get()["skipped"] == "already final"
    assert QualityReport.objects.filter(version=version).count() == len(kinds)


def test_poison_input_ends_failed_after_the_configured_tries_with_the_error_visible(worker_factory, seller):
    import json

    from datasets.models import DatasetFile
    from datasets.services import version_create, version_submit
    from marketplace.core.storage import get_storage
    from marketplace.demo import images_zip, star_dataset, upload_bytes
    from tests.factories import make_dataset

    worker_factory(extra_env=WORKER_ENV)
    _, coco, pngs = star_dataset(images=4, seed=9, noise=0.1)
    dataset = make_dataset(seller=seller, slug="poison")
    version = version_create(dataset=dataset, actor=seller.user)
    upload_bytes(version=version, actor=seller.user, role="images", name="images.zip", data=images_zip(pngs))
    upload_bytes(version=version, actor=seller.user, role="annotations", name="annotations.json", data=json.dumps(coco).encode())
    # The stored object vanishes under its row: every ingest attempt fails the same way.
    annotations = DatasetFile.objects.get(version=version, role="annotations")
    get_storage().delete(annotations.storage_key)
    version_submit(version=version, actor=seller.user)

    wait_for(lambda: version_state(version.pk) not in (VersionState.SUBMITTED, VersionState.PROCESSING), timeout=120, what="the poison to fail")
    assert version_state(version.pk) == VersionState.FAILED
    body = seller.client.get(f"/api/v1/versions/{version.pk}/jobs/").json()
    (ingest,) = [j for j in body["jobs"] if j["step"] == "ingest"]
    assert ingest["state"] == "failed"
    assert ingest["attempts"] == 3  # the first try and PIPELINE_MAX_RETRIES=2 retries, then no more
    assert "failed after 3 tries" in ingest["message"]
    # The seller reads a code, a message and a location; the exception stays with staff.
    assert ingest["error"]["code"] == "step_failed" and ingest["error"]["location"] == "jobs.ingest"
    assert "failed after 3 tries" in ingest["error"]["message"]
    raw = seller.client.get(f"/api/v1/versions/{version.pk}/jobs/").content.decode()
    assert "Traceback" not in raw and annotations.storage_key not in raw and "Error:" not in raw
    # cleanup the row left without its object (the test made that inconsistency on purpose)
    annotations.delete()
