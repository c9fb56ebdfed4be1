"""A consent revocation end to end (real worker, through the API): a seller records that
a bystander filmed in some frames of a published video version withdrew consent → those
frames (and the archive holding them) are refused to existing entitlements with
``consent_revoked`` while the rest downloads, the annotation file served without them; the
buyer organization that downloaded them gets a notification and a signed webhook delivery
naming them, and acknowledges the notice; the version is ``revocation_pending`` with a
deadline and is suspended when the deadline passes (time moved, not slept); the next
version holding the same frames is refused at ingest, located. Every step is in the audit
log.

The published version is set up with the project's services and its real pipeline (as
sellers publish, tests/listings/pipeline.py); the revocation, downloads, acknowledgement
and the next upload go through the API."""

from __future__ import annotations

import hashlib
import json
from datetime import timedelta

import pytest
from django.core.management import call_command
from django.utils import timezone

from datasets.services import dataset_create, version_create, version_submit
from datasets.states import VersionState
from licensing.models import ConsentRecord, ConsentRevocation
from licensing.services import consent_deadlines_enforce, provenance_update
from marketplace.audit.models import AuditEvent
from marketplace.demo import DEMO_PROVENANCE, upload_bytes, wait_for
from tests import factories
from tests.datasets.helpers import put_url, sha
from tests.listings.pipeline import WORKER_ENV, png, wait_settled, zipped
from tests.listings.test_subsets import download
from tests.notifications.receiver import Receiver, verify

pytestmark = pytest.mark.worker
API = "/api/v1"
SLUG = "teleop-kitchen"
CLIPS = {"clip_a": "sess-1", "clip_b": "sess-2"}
FRAMES = 4
# The bystander walked through the last two frames of clip_a.
BYSTANDER = ["clip_a/00002.png", "clip_a/00003.png"]


def frame_name(clip: str, i: int) -> str:
    return f"{clip}/{i:05d}.png"


def clip_files() -> dict[str, bytes]:
    return {frame_name(clip, i): png(100 * n + i) for n, clip in enumerate(CLIPS) for i in range(FRAMES)}


def youtube_vis() -> dict:
    videos, anns = [], []
    for vid, (clip, session) in enumerate(CLIPS.items(), start=1):
        videos.append({"id": vid, "name": clip, "session_id": session, "license": 1, "width": 48, "height": 48, "length": FRAMES, "file_names": [frame_name(clip, i) for i in range(FRAMES)]})
        polys = [[[4.0 + i, 4.0, 20.0 + i, 4.0, 20.0 + i, 20.0, 4.0 + i, 20.0]] for i in range(FRAMES)]
        anns.append({
            "id": vid, "video_id": vid, "category_id": 1, "iscrowd": 0, "height": 48, "width": 48, "length": 1,
            "segmentations": polys, "areas": [256.0] * FRAMES, "bboxes": [[4.0 + i, 4.0, 16.0, 16.0] for i in range(FRAMES)],
        })
    return {"videos": videos, "annotations": anns, "categories": [{"id": 1, "name": "mug"}], "licenses": [{"id": 1, "name": "CC BY 4.0", "url": "https://creativecommons.org/licenses/by/4.0/"}]}


CONSENT_RECORDS = [
    {"consent_id": "C-operator", "legal_basis": "consent", "scope": "teleoperation recording, ML training", "given_on": "2026-01-05", "sessions": ["sess-1", "sess-2"]},
    {"consent_id": "C-bystander", "legal_basis": "consent", "scope": "appearing in the background", "given_on": "2026-01-06", "files": BYSTANDER},
]


def publish_video_version(seller, moderator):
    dataset = dataset_create(owner=seller.org, actor=seller.user, slug=SLUG, title="Teleop kitchen", annotation_license="CC-BY-4.0", price="40.00", annotation_kind="video")
    version = version_create(dataset=dataset, actor=seller.user)
    provenance_update(version=version, actor=seller.user, fields=DEMO_PROVENANCE, consent_records=CONSENT_RECORDS)
    upload_bytes(version=version, actor=seller.user, role="images", name="frames.zip", data=zipped(clip_files()))
    upload_bytes(version=version, actor=seller.user, role="video", name="annotations/train.json", data=json.dumps(youtube_vis()).encode())
    version_submit(version=version, actor=seller.user)
    state = wait_settled(version)
    assert state == VersionState.IN_REVIEW, (state, version.__class__.objects.get(pk=version.pk).validation_report)
    resp = moderator.client.post(f"{API}/moderation/versions/{version.pk}/decision/", {"decision": "approve", "reason": "fine"}, format="json")
    assert resp.status_code == 200, resp.content
    version.refresh_from_db()
    return version


def api_upload(actor, version_id: int, *, role: str, name: str, data: bytes) -> None:
    """Upload one file through the API (S3: presigned part URLs; local: parts to the API),
    and wait for the worker to verify it."""
    started = actor.client.post(f"{API}/versions/{version_id}/uploads/", {"role": role, "name": name, "size": len(data), "sha256": sha(data)}, format="json")
    assert started.status_code == 201, started.content
    up = started.json()
    if up["backend"] == "s3":
        (part,) = up["parts"]
        put_url(part["url"], data, part["headers"])
    else:
        resp = actor.client.put(f"{API}/uploads/{up['id']}/parts/1/", data=data, content_type="application/octet-stream")
        assert resp.status_code == 200, resp.content
    assert actor.client.post(f"{API}/uploads/{up['id']}/complete/").status_code in (200, 202)
    wait_for(lambda: actor.client.get(f"{API}/uploads/{up['id']}/").json()["state"] == "complete", timeout=60, what=f"{name} verified")


def files_when_ready(actor, entitlement: int) -> dict:
    def ready():
        body = actor.client.get(f"{API}/entitlements/{entitlement}/files/", {"page_size": 100}).json()
        return None if body["pending"] else body

    return wait_for(ready, timeout=90, what="the entitlement's files")


def test_a_revocation_withdraws_frames_tells_the_buyers_who_downloaded_them_and_suspends_at_the_deadline(worker_factory, settings):
    settings.PIPELINE_AUDIT_REQUIRED = False
    worker_factory(extra_env=WORKER_ENV)
    seller, moderator = factories.make_seller(), factories.make_moderator()
    staff = factories.make_actor(is_staff=True)
    version = publish_video_version(seller, moderator)
    frames = clip_files()

    # Two buyer organizations hold the version; the first downloads everything, the second nothing.
    holder, bystander_org = factories.make_buyer(), factories.make_buyer()
    from marketplace.accounts.services import membership_add

    membership_add(user=holder.user, organization=holder.org, role="admin")
    receiver = Receiver().start()
    try:
        hook = holder.client.post(f"{API}/organizations/{holder.org.slug}/webhooks/", {"url": receiver.url, "events": ["consent.revoked"]}, format="json")
        assert hook.status_code == 201, hook.content
        entitlements = {}
        for n, buyer in enumerate((holder, bystander_org)):
            placed = buyer.client.post(f"{API}/listings/{SLUG}/orders/", {"license": "CC-BY-4.0", "version": 1}, format="json", HTTP_IDEMPOTENCY_KEY=f"o{n}")
            assert placed.status_code == 201, placed.content
            entitlements[buyer.org.slug] = staff.client.post(f"{API}/orders/{placed.json()['id']}/mark-paid/").json()["entitlement"]
        before = files_when_ready(holder, entitlements[holder.org.slug])
        assert before["withdrawn"] == []
        served_before = {f["path"] for f in before["results"]}
        assert set(BYSTANDER) <= served_before and "frames.zip" in served_before
        for f in before["results"]:
            assert hashlib.sha256(download(holder, f["url"])).hexdigest() == f["sha256"]

        # A refused revocation changes nothing.
        bad = seller.client.post(f"{API}/versions/{version.pk}/consent-revocations/", {"requested_on": timezone.localdate().isoformat(), "reason": "withdrawn", "records": ["C-nobody"]}, format="json")
        assert bad.status_code == 400 and bad.json()["code"] == "invalid_revocation"
        assert bad.json()["details"] == [{"location": "records[0]", "message": "no consent record 'C-nobody' in this version", "code": "unknown_consent_record"}]
        assert not ConsentRevocation.objects.exists() and not ConsentRecord.objects.filter(revoked_at__isnull=False).exists()
        # Buyers cannot record one.
        assert holder.client.post(f"{API}/versions/{version.pk}/consent-revocations/", {"requested_on": "2026-11-01", "reason": "x", "records": ["C-bystander"]}, format="json").status_code == 404

        recorded = seller.client.post(
            f"{API}/versions/{version.pk}/consent-revocations/",
            {"requested_on": timezone.localdate().isoformat(), "reason": "the bystander withdrew consent (GDPR art. 7(3))", "records": ["C-bystander"]},
            format="json",
        )
        assert recorded.status_code == 201, recorded.content
        revocation = recorded.json()
        # Listed at once (the reaction runs after commit): the two frames and the archive holding them.
        assert revocation["state"] == "pending" and revocation["records"] == ["C-bystander"]
        assert {f["path"] for f in revocation["files"]} == {*BYSTANDER, "frames.zip"} and revocation["frames"] == 2
        deadline = timezone.datetime.fromisoformat(revocation["deadline"])
        assert abs((deadline - timezone.now()) - timedelta(days=30)) < timedelta(minutes=5)
        detail = seller.client.get(f"{API}/versions/{version.pk}/").json()
        assert detail["state"] == "published" and detail["revocation_pending"] is True
        assert timezone.datetime.fromisoformat(detail["revocation_deadline"]) == deadline
        assert seller.client.get(f"{API}/versions/{version.pk}/consent-revocations/").json()["results"][0]["id"] == revocation["id"]
        # The seller organization is told what was withdrawn and by when a version without it is due.
        (told,) = [n for n in seller.client.get(f"{API}/notifications/").json()["results"] if n["kind"] == "consent.revoked"]
        assert told["payload"]["revocation"] == revocation["id"] and told["payload"]["state"] == "pending"
        assert timezone.datetime.fromisoformat(told["payload"]["deadline"]) == deadline and sorted(told["payload"]["files"]) == sorted([*BYSTANDER, "frames.zip"])

        # Existing entitlements stop serving the withdrawn files; the rest downloads.
        after = files_when_ready(holder, entitlements[holder.org.slug])
        served = {f["path"]: f for f in after["results"]}
        assert {w["path"] for w in after["withdrawn"]} == {*BYSTANDER, "frames.zip"}
        assert all(w["code"] == "consent_revoked" for w in after["withdrawn"])
        assert set(served) == {p for p in frames if p not in BYSTANDER} | {"annotations/train.json"}
        for f in served.values():
            body = download(holder, f["url"])
            assert hashlib.sha256(body).hexdigest() == f["sha256"] and len(body) == f["size"], f["path"]
        doc = json.loads(download(holder, served["annotations/train.json"]["url"]))
        names = [n for v in doc["videos"] for n in v["file_names"]]
        assert set(names) == {p for p in frames if p not in BYSTANDER} and not set(names) & set(BYSTANDER)
        clip_a = next(v for v in doc["videos"] if v["name"] == "clip_a")
        assert clip_a["length"] == 2 and len(next(a for a in doc["annotations"] if a["video_id"] == clip_a["id"])["segmentations"]) == 2
        refused = holder.client.get(f"{API}/entitlements/{entitlements[holder.org.slug]}/files/", {"path": BYSTANDER})
        assert refused.status_code == 410 and refused.json()["code"] == "consent_revoked"
        assert [d["location"] for d in refused.json()["details"]] == ["path", "path"]
        assert [d["message"].split(":")[0] for d in refused.json()["details"]] == BYSTANDER
        one = holder.client.get(f"{API}/entitlements/{entitlements[holder.org.slug]}/files/", {"path": "clip_b/00000.png"}).json()
        assert [f["path"] for f in one["results"]] == ["clip_b/00000.png"] and download(holder, one["results"][0]["url"]) == frames["clip_b/00000.png"]

        # The organization that downloaded them hears which files to delete, in the app and by webhook.
        note = wait_for(lambda: next(iter(holder.client.get(f"{API}/notifications/").json()["results"]), None), timeout=10, what="the notification")
        kinds = [n["kind"] for n in holder.client.get(f"{API}/notifications/").json()["results"]]
        assert "consent.revoked" in kinds
        note = next(n for n in holder.client.get(f"{API}/notifications/").json()["results"] if n["kind"] == "consent.revoked")
        assert note["payload"]["files"] == sorted([*BYSTANDER, "frames.zip"]) and note["payload"]["listing"] == SLUG
        wait_for(lambda: receiver.received, timeout=60, what="the webhook delivery")
        (delivery,) = receiver.received
        assert verify(secret=hook.json()["secret"], headers=delivery.headers, body=delivery.body)
        assert delivery.document["type"] == "consent.revoked" and delivery.document["data"]["files"] == sorted([*BYSTANDER, "frames.zip"])
        # The organization that downloaded nothing gets no notice.
        assert not [n for n in bystander_org.client.get(f"{API}/notifications/").json()["results"] if n["kind"] == "consent.revoked"]
        assert bystander_org.client.get(f"{API}/consent-notices/").json()["results"] == []

        # ... and acknowledges the deletion through the API.
        (notice,) = holder.client.get(f"{API}/consent-notices/", {"acknowledged": "false"}).json()["results"]
        assert notice["listing"] == SLUG and notice["version"] == 1 and [f["path"] for f in notice["files"]] == sorted([*BYSTANDER, "frames.zip"])
        assert bystander_org.client.post(f"{API}/consent-notices/{notice['id']}/acknowledge/").status_code == 404
        acked = holder.client.post(f"{API}/consent-notices/{notice['id']}/acknowledge/")
        assert acked.status_code == 200 and acked.json()["acknowledged_by"] == holder.user.username and acked.json()["acknowledged_at"]
        assert holder.client.get(f"{API}/consent-notices/", {"acknowledged": "false"}).json()["results"] == []
        # The seller sees which buyer organization was told and that it confirmed the deletion.
        (seen,) = seller.client.get(f"{API}/seller/consent-notices/").json()["results"]
        assert seen["organization"] == holder.org.slug and seen["acknowledged_at"] == acked.json()["acknowledged_at"]
        assert seller.client.get(f"{API}/seller/consent-notices/", {"acknowledged": "false"}).json()["results"] == []
        assert holder.client.get(f"{API}/seller/consent-notices/").json()["results"] == []
    finally:
        receiver.stop()

    # The deadline: before it nothing happens (beat's command); once it has passed the version is suspended.
    call_command("consent_deadlines")
    assert consent_deadlines_enforce(now=deadline - timedelta(seconds=1)) == {"resolved": 0, "suspended": 0}
    version.refresh_from_db()
    assert version.state == VersionState.PUBLISHED
    assert consent_deadlines_enforce(now=deadline + timedelta(seconds=1)) == {"resolved": 0, "suspended": 1}
    version.refresh_from_db()
    assert version.state == VersionState.SUSPENDED and version.revocation_deadline is None
    assert ConsentRevocation.objects.get(pk=revocation["id"]).state == "suspended"
    assert holder.client.get(f"{API}/entitlements/{entitlements[holder.org.slug]}/files/").status_code == 404
    assert seller.client.get(f"{API}/versions/{version.pk}/consent-revocations/").json()["results"][0]["state"] == "suspended"

    actions = set(AuditEvent.objects.values_list("action", flat=True))
    assert {"consent.revoke", "version.revocation_pending", "consent.files_withdrawn", "consent.notice", "consent.acknowledge", "consent.suspend", "consent.suspended"} <= actions

    # The next version still holding the bystander's frames is refused at ingest, located.
    created = seller.client.post(f"{API}/datasets/{SLUG}/versions/", {}, format="json")
    assert created.status_code == 201, created.content
    v2 = created.json()["id"]
    assert seller.client.put(f"{API}/versions/{v2}/provenance/", {"fields": DEMO_PROVENANCE, "consent_records": CONSENT_RECORDS[:1]}, format="json").status_code == 200
    api_upload(seller, v2, role="images", name="frames.zip", data=zipped(clip_files()))
    api_upload(seller, v2, role="video", name="annotations/train.json", data=json.dumps(youtube_vis()).encode())
    assert seller.client.post(f"{API}/versions/{v2}/submit/").status_code in (200, 202)
    wait_for(lambda: seller.client.get(f"{API}/versions/{v2}/").json()["state"] not in ("submitted", "processing"), timeout=240, what="v2 to leave the pipeline")
    report = seller.client.get(f"{API}/versions/{v2}/").json()
    assert report["state"] == "failed_validation"
    refused_at_ingest = [e for e in report["validation_report"]["errors"] if e["code"] == "consent_revoked"]
    assert sorted(e["location"] for e in refused_at_ingest) == BYSTANDER
    assert all(e["file"] == "frames.zip" for e in refused_at_ingest)
