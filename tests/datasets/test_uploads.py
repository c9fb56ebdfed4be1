"""Multipart uploads against the S3 test endpoint (moto): parts go straight to the store
through presigned URLs; complete checks parts; a worker-side service re-hashes."""

import os
import tracemalloc
from datetime import timedelta

import pytest
from django.utils import timezone

from datasets.models import DatasetFile, UploadSession, UploadState
from datasets.services import upload_verify, uploads_expire_abandoned
from marketplace.core.storage import get_storage
from tests.datasets.helpers import MB, put_url, sha
from tests.factories import make_version

pytestmark = pytest.mark.django_db
PART = 5 * MB


def _start(client, version, data: bytes, *, part_sha: bool = True, sha256: str | None = None, name: str = "images.zip"):
    parts = [data[i : i + PART] for i in range(0, len(data), PART)]
    body = {"role": "images", "name": name, "size": len(data), "sha256": sha256 or sha(data), "part_size": PART}
    if part_sha:
        body["part_sha256"] = [sha(p) for p in parts]
    r = client.post(f"/api/v1/versions/{version.pk}/uploads/", body, format="json")
    assert r.status_code == 201, r.content
    return r.json(), parts


def _state(version):
    version.refresh_from_db()
    return version.state, DatasetFile.objects.filter(version=version).count()


def test_interrupted_upload_resumes_and_verifies_with_flat_memory(seller):
    version = make_version(seller=seller)
    data = os.urandom(3 * PART - 12345)
    up, parts = _start(seller.client, version, data)
    assert up["backend"] == "s3" and up["part_count"] == 3 and all(p["url"] for p in up["parts"])
    put_url(up["parts"][0]["url"], parts[0], up["parts"][0]["headers"])  # ... and the client dies here
    status = seller.client.get(f"/api/v1/uploads/{up['id']}/").json()
    arrived = {p["number"]: p["arrived"] for p in status["parts"]}
    assert arrived == {1: True, 2: False, 3: False}
    for p in status["parts"]:
        if not p["arrived"]:
            put_url(p["url"], parts[p["number"] - 1], p["headers"])  # fresh URLs from the status call
    r = seller.client.post(f"/api/v1/uploads/{up['id']}/complete/")
    assert r.status_code == 202 and r.json()["state"] == "verifying"
    tracemalloc.start()
    try:
        result = upload_verify(upload_id=up["id"])
        _current, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert result.state == UploadState.COMPLETE, result.error
    assert peak < 6 * MB, f"verify held {peak} bytes for a {len(data)}-byte object"  # chunked: not the file
    f = DatasetFile.objects.get(version=version, path="images.zip")
    assert f.sha256 == sha(data) and f.size == len(data)
    assert get_storage().size(f.storage_key) == len(data)
    assert seller.client.post(f"/api/v1/uploads/{up['id']}/complete/").json()["state"] == "complete"  # idempotent


def test_corrupted_part_is_rejected_and_version_unchanged(seller):
    version = make_version(seller=seller)
    data = os.urandom(2 * PART + 100)
    up, parts = _start(seller.client, version, data)
    bad = bytearray(parts[1])
    bad[1000] ^= 0xFF  # one flipped byte
    for p, body in zip(up["parts"], [parts[0], bytes(bad), parts[2]], strict=True):
        put_url(p["url"], body, p["headers"])
    assert seller.client.post(f"/api/v1/uploads/{up['id']}/complete/").status_code == 202
    result = upload_verify(upload_id=up["id"])
    assert result.state == UploadState.REJECTED
    assert result.error["code"] == "part_sha256_mismatch" and result.error["details"][0]["location"] == "parts[2]"
    assert _state(version) == ("draft", 0)
    assert not get_storage().exists(result.storage_key)
    body = seller.client.get(f"/api/v1/uploads/{up['id']}/").json()
    assert body["state"] == "rejected" and body["error"]["code"] == "part_sha256_mismatch"


def test_missing_part_is_refused(seller):
    version = make_version(seller=seller)
    data = os.urandom(2 * PART + 7)
    up, parts = _start(seller.client, version, data)
    put_url(up["parts"][0]["url"], parts[0], up["parts"][0]["headers"])
    put_url(up["parts"][1]["url"], parts[1], up["parts"][1]["headers"])
    r = seller.client.post(f"/api/v1/uploads/{up['id']}/complete/")
    assert r.status_code == 409 and r.json()["code"] == "upload_incomplete"
    assert r.json()["details"] == [{"location": "parts[3]", "message": "missing", "code": "missing_part"}]
    assert UploadSession.objects.get(pk=up["id"]).state == UploadState.OPEN
    assert _state(version) == ("draft", 0)


def test_wrong_sha256_is_rejected(seller):
    version = make_version(seller=seller)
    data = os.urandom(PART + 10)
    up, parts = _start(seller.client, version, data, part_sha=False, sha256="0" * 64)
    for p, body in zip(up["parts"], parts, strict=True):
        put_url(p["url"], body, p["headers"])
    seller.client.post(f"/api/v1/uploads/{up['id']}/complete/")
    result = upload_verify(upload_id=up["id"])
    assert result.state == UploadState.REJECTED and result.error["code"] == "sha256_mismatch"
    assert _state(version) == ("draft", 0)


def test_limits_give_clear_errors(seller, settings):
    version = make_version(seller=seller)
    settings.DATASETS_LIMITS = {"max_file_size": 100 * MB, "max_parts": 4, "org_quota": 150 * MB}
    url = f"/api/v1/versions/{version.pk}/uploads/"
    base = {"role": "images", "name": "a.zip", "sha256": "a" * 64}
    r = seller.client.post(url, {**base, "size": 101 * MB}, format="json")
    assert r.status_code == 413 and r.json()["code"] == "file_too_large"
    r = seller.client.post(url, {**base, "size": 30 * MB, "part_size": 5 * MB}, format="json")
    assert r.status_code == 413 and r.json()["code"] == "too_many_parts"
    assert seller.client.post(url, {**base, "size": 90 * MB}, format="json").status_code == 201
    r = seller.client.post(url, {**base, "name": "b.zip", "size": 90 * MB}, format="json")
    assert r.status_code == 413 and r.json()["code"] == "quota_exceeded"
    r = seller.client.post(url, {**base, "name": "../etc/passwd", "size": 1}, format="json")
    assert r.status_code == 400 and r.json()["code"] == "invalid_name"


def test_other_seller_cannot_touch_upload(seller, seller_b):
    version = make_version(seller=seller)
    up, _ = _start(seller.client, version, b"x" * 100)
    for method, path in (("get", ""), ("post", "complete/"), ("post", "abort/")):
        assert getattr(seller_b.client, method)(f"/api/v1/uploads/{up['id']}/{path}").status_code == 404
    assert (
        seller_b.client.post(
            f"/api/v1/versions/{version.pk}/uploads/", {"role": "images", "name": "x", "size": 1, "sha256": "a" * 64}, format="json"
        ).status_code
        == 404
    )


def test_abort_and_expiry(seller):
    version = make_version(seller=seller)
    up, _ = _start(seller.client, version, b"x" * 100)
    assert seller.client.post(f"/api/v1/uploads/{up['id']}/abort/").json()["state"] == "aborted"
    up2, parts = _start(seller.client, version, b"y" * 100, name="other.zip")
    put_url(up2["parts"][0]["url"], parts[0], up2["parts"][0]["headers"])
    UploadSession.objects.filter(pk=up2["id"]).update(expires_at=timezone.now() - timedelta(minutes=1))
    assert uploads_expire_abandoned() == 1
    upload = UploadSession.objects.get(pk=up2["id"])
    assert upload.state == UploadState.EXPIRED
    assert get_storage().multipart_parts  # the store's multipart upload is gone:
    with pytest.raises(Exception):  # noqa: B017,PT011
        get_storage().multipart_parts(upload.storage_key, upload.multipart_id)
