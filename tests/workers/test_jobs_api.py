"""The jobs endpoint (who sees what), the staff re-run, and the sweeper's decisions."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from datasets.states import VersionState
from marketplace.core.errors import InvalidInput, field_error
from quality.engine.errors import EngineInputError
from tests import factories
from workers.jobs import failure_of
from workers.models import Job, JobState, JobStep

pytestmark = pytest.mark.django_db


def _version_in(seller, state=VersionState.PROCESSING):
    version = factories.make_version(seller=seller)
    type(version).objects.filter(pk=version.pk).update(state=state)
    version.refresh_from_db()
    return version


def test_seller_members_and_staff_see_the_jobs_others_get_404(seller, seller_b, buyer, moderator, api_client):
    version = _version_in(seller)
    Job.objects.create(version=version, step=JobStep.INGEST, state=JobState.RUNNING, progress=40, message="20/50")
    url = f"/api/v1/versions/{version.pk}/jobs/"

    body = seller.client.get(url).json()
    assert body["state"] == VersionState.PROCESSING
    assert [(j["step"], j["state"], j["progress"]) for j in body["jobs"]] == [("ingest", "running", 40)]
    assert moderator.client.get(url).status_code == 200
    assert seller_b.client.get(url).status_code == 404
    assert buyer.client.get(url).status_code == 404
    assert api_client.get(url).status_code == 401
    assert seller.client.get("/api/v1/versions/999999/jobs/").status_code == 404


def test_rerun_is_staff_only_and_returns_the_existing_job_for_the_same_key(seller, moderator, django_capture_on_commit_callbacks):
    version = _version_in(seller, VersionState.IN_REVIEW)
    url = f"/api/v1/versions/{version.pk}/jobs/checks/rerun/"
    assert seller.client.post(url).status_code == 403

    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        first = moderator.client.post(url)
    assert first.status_code == 202 and first.json()["enqueued"] is True
    assert len(callbacks) == 1  # the task is sent only once the row is committed
    Job.objects.filter(pk=first.json()["id"]).update(state=JobState.SUCCEEDED)

    again = moderator.client.post(url)
    assert again.status_code == 200
    assert again.json()["id"] == first.json()["id"] and again.json()["enqueued"] is False
    assert Job.objects.filter(version=version, step="checks").count() == 1
    assert moderator.client.post(f"/api/v1/versions/{version.pk}/jobs/nonsense/rerun/").status_code == 400


def test_rerun_with_a_new_engine_version_makes_a_new_job(seller, moderator, monkeypatch, django_capture_on_commit_callbacks):
    version = _version_in(seller, VersionState.IN_REVIEW)
    url = f"/api/v1/versions/{version.pk}/jobs/quality_intrinsic/rerun/"
    with django_capture_on_commit_callbacks(execute=False):
        old = moderator.client.post(url).json()
    Job.objects.filter(pk=old["id"]).update(state=JobState.SUCCEEDED)
    # An engine upgrade changes the job key (the report key changes the same way).
    monkeypatch.setattr("workers.jobs.engine_version_for", lambda step: "99.0-upgrade")
    with django_capture_on_commit_callbacks(execute=False):
        new = moderator.client.post(url)
    assert new.status_code == 202 and new.json()["id"] != old["id"]
    assert new.json()["engine_version"] == "99.0-upgrade"


def test_sweeper_resends_stuck_jobs_and_gives_up_on_jobs_that_keep_dying(seller, settings, django_capture_on_commit_callbacks):
    from workers.sweeper import pipeline_sweep

    settings.PIPELINE_MAX_RETRIES = 2
    version = _version_in(seller)
    past = timezone.now() - timedelta(seconds=5)
    stuck = Job.objects.create(version=version, step=JobStep.INGEST, state=JobState.RUNNING, attempts=1, deadline=past)
    poison = Job.objects.create(version=version, step=JobStep.AUDIT_SAMPLE, state=JobState.RUNNING, attempts=3, deadline=past, error="killed")
    fresh = Job.objects.create(version=version, step=JobStep.CHECKS, state=JobState.QUEUED, deadline=timezone.now() + timedelta(hours=1))

    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        outcome = pipeline_sweep()
    assert outcome["requeued"] == 1 and outcome["given_up"] == 1
    stuck.refresh_from_db(), poison.refresh_from_db(), fresh.refresh_from_db()
    assert stuck.state == JobState.QUEUED and stuck.deadline > timezone.now()
    assert poison.state == JobState.FAILED and poison.result["code"] == "worker_lost"
    assert "any of its 3 attempts" in poison.message and poison.result["location"] == "jobs.audit_sample"
    assert fresh.state == JobState.QUEUED
    assert callbacks  # re-sends and nudges go out on commit


def test_beat_runs_the_sweeper():
    from workers.celery import app

    assert any(entry["task"] == "workers.tasks.sweep" for entry in app.conf.beat_schedule.values())


def _traceback_of(exc: BaseException) -> str:
    import traceback

    try:
        raise exc
    except type(exc):
        return traceback.format_exc()


def test_a_failed_job_shows_its_seller_a_code_message_and_location_never_a_traceback(seller, moderator, db):
    from django.contrib.auth import get_user_model
    from django.test import Client

    from quality.engine.errors import EngineInputError
    from workers.jobs import failure_of

    version = _version_in(seller, VersionState.FAILED)
    infra = RuntimeError("could not connect to server at 10.1.2.3:5432; key market/objects/v1/x.json; /srv/app/workers/steps.py")
    crashed = Job.objects.create(
        version=version, step=JobStep.INGEST, state=JobState.FAILED, attempts=3, message="failed after 3 tries", error=_traceback_of(infra)
    )
    bad = EngineInputError("rle_sum_mismatch", "the runs sum to 1000, not 100", location="annotations[3].segmentation.counts")
    refused = Job.objects.create(
        version=version, step=JobStep.QUALITY_AUDIT, state=JobState.FAILED_VALIDATION, message=failure_of(bad)["message"],
        result={"error": failure_of(bad)}, error=_traceback_of(bad),
    )
    Job.objects.create(version=version, step=JobStep.CHECKS, state=JobState.QUEUED, error=_traceback_of(infra), message="transient error; retrying in 4s")

    body = seller.client.get(f"/api/v1/versions/{version.pk}/jobs/")
    assert body.status_code == 200
    text = body.content.decode()
    for secret in ("Traceback", "File \"", "10.1.2.3", "market/objects", "/srv/app", "RuntimeError", "EngineInputError"):
        assert secret not in text, secret
    jobs = {j["step"]: j for j in body.json()["jobs"]}
    assert jobs["ingest"]["error"] == {
        "code": "step_failed",
        "message": "The step 'Ingest' failed (failed after 3 tries); the platform's staff have the details.",
        "location": "jobs.ingest",
    }
    assert jobs["quality_audit"]["error"] == {"code": "rle_sum_mismatch", "message": "the runs sum to 1000, not 100", "location": "annotations[3].segmentation.counts"}
    assert jobs["checks"]["error"] is None
    # A step stopped by its time limit (job_fail) shows the code it was given.
    from workers.jobs import job_fail

    limited = Job.objects.create(version=version, step=JobStep.QUALITY_INTRINSIC, state=JobState.RUNNING)
    job_fail(job_id=limited.pk, code="step_time_limit", message="the step ran past its 1 s limit")
    jobs = {j["step"]: j for j in seller.client.get(f"/api/v1/versions/{version.pk}/jobs/").json()["jobs"]}
    assert jobs["quality_intrinsic"]["error"] == {"code": "step_time_limit", "message": "the step ran past its 1 s limit", "location": "jobs.quality_intrinsic"}
    # Staff get no more through the API; the details are in the admin.
    assert "Traceback" not in moderator.client.get(f"/api/v1/versions/{version.pk}/jobs/").content.decode()
    admin_user = get_user_model().objects.create_superuser("ops", "ops@example.test", "ops-password-123")
    browser = Client()
    browser.force_login(admin_user)
    for job in (crashed, refused):
        page = browser.get(f"/admin/workers/job/{job.pk}/change/").content.decode()
        assert "Traceback" in page
    assert "10.1.2.3:5432" in browser.get(f"/admin/workers/job/{crashed.pk}/change/").content.decode()


def test_a_version_failed_by_a_crashed_step_records_no_exception_text_in_its_history(seller, django_capture_on_commit_callbacks):
    from workers.jobs import job_for_step
    from workers.pipeline import pipeline_advance

    version = _version_in(seller)
    job, _created = job_for_step(version=version, step=JobStep.INGEST)
    Job.objects.filter(pk=job.pk).update(
        state=JobState.FAILED, attempts=3, message="failed after 3 tries",
        error=_traceback_of(OSError("/var/lib/market/storage/abc: permission denied")),
    )
    with django_capture_on_commit_callbacks(execute=False):
        pipeline_advance(version_id=version.pk)
    version.refresh_from_db()
    assert version.state == VersionState.FAILED
    from marketplace.audit.models import AuditEvent

    history = " ".join(str(e.__dict__) for e in AuditEvent.objects.filter(object_id=str(version.pk)))
    assert "step_failed" in history
    assert "/var/lib/market" not in history and "Traceback" not in history and "OSError" not in history



BAD_INPUTS = [
    (
        EngineInputError("invalid_json", "unexpected end of data at /tmp/market-ingest-k2j/annotations.json", location="/tmp/market-ingest-k2j/annotations.json"),
        {"code": "invalid_json", "message": "unexpected end of data at annotations.json", "location": "annotations.json"},
    ),
    (
        EngineInputError("rle_truncated", "a value is cut off", location="annotations[3].segmentation.counts"),
        {"code": "rle_truncated", "message": "a value is cut off", "location": "annotations[3].segmentation.counts"},
    ),
    (
        InvalidInput("The file is refused.", code="image_size_mismatch", details=[field_error("images/0001.png", "declared 640x480, header 64x48")]),
        {"code": "image_size_mismatch", "message": "The file is refused.", "location": "images/0001.png"},
    ),
    (RuntimeError("boom at /srv/app/workers/steps.py"), {"code": "step_failed", "message": "The step failed.", "location": ""}),
]


@pytest.mark.parametrize(("exc", "expected"), BAD_INPUTS, ids=["engine-path", "engine-json-path", "domain", "other"])
def test_a_bad_input_failure_reads_without_the_workers_paths(exc, expected):
    assert failure_of(exc) == expected
