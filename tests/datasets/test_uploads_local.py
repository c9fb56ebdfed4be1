"""The resumable upload contract with LOCAL storage: parts go through the API
(``PUT uploads/{id}/parts/{n}/`` with ``Content-Range``), re-sendable, with a status query
of what arrived, complete (a worker-side service re-hashes), and abort. The suite's store
is S3 (moto); these tests switch it to local files through the settings."""

import os
from pathlib import Path

import pytest

from datasets.models import DatasetFile, UploadSession, UploadState
from datasets.services import upload_verify
from marketplace.core.storage import get_storage
from tests.datasets.helpers import MB, sha
from tests.factories import make_version

pytestmark = pytest.mark.django_db
PART = 5 * MB


@pytest.fixture
def local_store(settings, tmp_path) -> Path:
    root = tmp_path / "objects"
    settings.OBJECT_STORAGE = {"backend": "local", "root": str(root)}
    assert get_storage().backend == "local"
    return root


def _start(client, version, data: bytes, *, part_sha: bool = True, sha256: str | None = None, name: str = "images.zip"):
    parts = [data[i : i + PART] for i in range(0, len(data), PART)]
    body = {"role": "images", "name": name, "size": len(data), "sha256": sha256 or sha(data), "part_size": PART}
    if part_sha:
        body["part_sha256"] = [sha(p) for p in parts]
    r = client.post(f"/api/v1/versions/{version.pk}/uploads/", body, format="json")
    assert r.status_code == 201, r.content
    up = r.json()
    assert up["backend"] == "local" and up["part_count"] == len(parts)
    assert all(p["url"] is None for p in up["parts"])  # no presigned URLs: parts go to the API
    return up, parts


def _put(client, up: dict, n: int, body: bytes, *, content_range: str | None = "auto"):
    if content_range == "auto":
        start = (n - 1) * up["part_size"]
        content_range = f"bytes {start}-{start + len(body) - 1}/{up['size']}"
    extra = {"HTTP_CONTENT_RANGE": content_range} if content_range is not None else {}
    return client.put(f"/api/v1/uploads/{up['id']}/parts/{n}/", data=body, content_type="application/octet-stream", **extra)


def _arrived(client, up: dict) -> dict[int, bool]:
    r = client.get(f"/api/v1/uploads/{up['id']}/")
    assert r.status_code == 200
    return {p["number"]: p["arrived"] for p in r.json()["parts"]}


def _state(version):
    version.refresh_from_db()
    return version.state, DatasetFile.objects.filter(version=version).count()


def _parts_dir(root: Path, up: dict) -> Path:
    return root / ".multipart" / UploadSession.objects.get(pk=up["id"]).multipart_id


def test_upload_in_parts_interrupted_resumed_and_verified(seller, local_store):
    version = make_version(seller=seller)
    data = os.urandom(3 * PART - 4321)
    up, parts = _start(seller.client, version, data)
    assert _arrived(seller.client, up) == {1: False, 2: False, 3: False}

    r = _put(seller.client, up, 1, parts[0])
    assert r.status_code == 200 and r.json() == {"number": 1, "size": PART}
    # Re-sending a part is harmless (idempotent): it replaces the same bytes.
    assert _put(seller.client, up, 1, parts[0]).status_code == 200
    # ... the client dies in the middle of part 3 (half its bytes, so it is not stored)
    r = _put(seller.client, up, 3, parts[2][: len(parts[2]) // 2], content_range=f"bytes {2 * PART}-{len(data) - 1}/{len(data)}")
    assert r.status_code == 400 and r.json()["code"] == "part_size_mismatch"
    # Resume: the status says what arrived; the client sends only the rest.
    status = seller.client.get(f"/api/v1/uploads/{up['id']}/").json()
    assert status["state"] == "open"
    assert {p["number"]: p["arrived"] for p in status["parts"]} == {1: True, 2: False, 3: False}
    assert [p["size"] for p in status["parts"]] == [len(p) for p in parts]
    for p in status["parts"]:
        if not p["arrived"]:
            assert _put(seller.client, up, p["number"], parts[p["number"] - 1]).status_code == 200
    assert _arrived(seller.client, up) == {1: True, 2: True, 3: True}

    r = seller.client.post(f"/api/v1/uploads/{up['id']}/complete/")
    assert r.status_code == 202 and r.json()["state"] == "verifying"
    assert _state(version) == ("draft", 0)  # nothing recorded before the worker re-hashes
    result = upload_verify(upload_id=up["id"])  # the worker task's body (enqueued on commit)
    assert result.state == UploadState.COMPLETE, result.error
    f = DatasetFile.objects.get(version=version, path="images.zip")
    assert f.sha256 == sha(data) and f.size == len(data)
    assert get_storage().read_bytes(f.storage_key) == data
    assert (local_store / f.storage_key).is_file()
    assert not _parts_dir(local_store, up).exists()  # parts assembled and removed
    assert seller.client.post(f"/api/v1/uploads/{up['id']}/complete/").json()["state"] == "complete"  # idempotent
    r = _put(seller.client, up, 1, parts[0])
    assert r.status_code == 409 and r.json()["code"] == "upload_closed"


def test_part_with_wrong_declared_sha256_is_refused_on_arrival(seller, local_store):
    version = make_version(seller=seller)
    data = os.urandom(2 * PART + 100)
    up, parts = _start(seller.client, version, data)
    bad = bytearray(parts[1])
    bad[1000] ^= 0xFF
    r = _put(seller.client, up, 2, bytes(bad))
    assert r.status_code == 400 and r.json()["code"] == "part_sha256_mismatch"
    assert r.json()["details"][0]["location"] == "parts[2]"
    assert _arrived(seller.client, up) == {1: False, 2: False, 3: False}
    assert not any(_parts_dir(local_store, up).iterdir())  # the temporary file is gone too
    assert _state(version) == ("draft", 0)


def test_part_corrupted_after_arrival_is_rejected_by_the_worker(seller, local_store):
    version = make_version(seller=seller)
    data = os.urandom(2 * PART + 100)
    up, parts = _start(seller.client, version, data)
    for n, body in enumerate(parts, start=1):
        assert _put(seller.client, up, n, body).status_code == 200
    stored = _parts_dir(local_store, up) / "00002"
    raw = bytearray(stored.read_bytes())
    raw[1000] ^= 0xFF  # bit rot on disk, size unchanged: only a re-hash can see it
    stored.write_bytes(bytes(raw))
    assert seller.client.post(f"/api/v1/uploads/{up['id']}/complete/").status_code == 202
    result = upload_verify(upload_id=up["id"])
    assert result.state == UploadState.REJECTED
    assert result.error["code"] == "part_sha256_mismatch" and result.error["details"][0]["location"] == "parts[2]"
    assert _state(version) == ("draft", 0)
    assert not get_storage().exists(result.storage_key)
    assert not _parts_dir(local_store, up).exists()
    body = seller.client.get(f"/api/v1/uploads/{up['id']}/").json()
    assert body["state"] == "rejected" and body["error"]["code"] == "part_sha256_mismatch"


def test_missing_part_is_refused(seller, local_store):
    version = make_version(seller=seller)
    data = os.urandom(2 * PART + 7)
    up, parts = _start(seller.client, version, data)
    assert _put(seller.client, up, 1, parts[0]).status_code == 200
    assert _put(seller.client, up, 3, parts[2]).status_code == 200
    r = seller.client.post(f"/api/v1/uploads/{up['id']}/complete/")
    assert r.status_code == 409 and r.json()["code"] == "upload_incomplete"
    assert r.json()["details"] == [{"location": "parts[2]", "message": "missing", "code": "missing_part"}]
    assert UploadSession.objects.get(pk=up["id"]).state == UploadState.OPEN
    assert _state(version) == ("draft", 0)
    # still resumable: send the missing part and finish
    assert _put(seller.client, up, 2, parts[1]).status_code == 200
    assert seller.client.post(f"/api/v1/uploads/{up['id']}/complete/").status_code == 202
    assert upload_verify(upload_id=up["id"]).state == UploadState.COMPLETE


def test_wrong_whole_file_sha256_is_rejected(seller, local_store):
    version = make_version(seller=seller)
    data = os.urandom(PART + 10)
    up, parts = _start(seller.client, version, data, part_sha=False, sha256="0" * 64)
    for n, body in enumerate(parts, start=1):
        assert _put(seller.client, up, n, body).status_code == 200
    assert seller.client.post(f"/api/v1/uploads/{up['id']}/complete/").status_code == 202
    result = upload_verify(upload_id=up["id"])
    assert result.state == UploadState.REJECTED and result.error["code"] == "sha256_mismatch"
    assert result.error["details"][0]["message"] == f"computed {sha(data)}"
    assert _state(version) == ("draft", 0)
    assert not get_storage().exists(result.storage_key)
    assert not _parts_dir(local_store, up).exists()


@pytest.mark.parametrize(
    ("n", "content_range", "body", "status", "code"),
    [
        (1, None, "part", 400, "invalid_content_range"),  # header missing
        (1, "bytes=0-99", "part", 400, "invalid_content_range"),  # malformed (a Range, not a Content-Range)
        (1, "bytes 0-5242879/*", "part", 400, "invalid_content_range"),  # total must be the declared size
        (2, "bytes 0-5242879/10485860", "part", 400, "invalid_content_range"),  # range of part 1 sent as part 2
        (1, "bytes 0-5242879/10485860", "too_large", 400, "part_size_mismatch"),  # body larger than the part
        (4, "bytes 15728640-15728649/10485860", "part", 400, "invalid_part_number"),  # beyond the part count
    ],
)
def test_content_range_errors_are_clear(seller, local_store, n, content_range, body, status, code):
    version = make_version(seller=seller)
    data = os.urandom(2 * PART + 100)
    assert len(data) == 10485860
    up, parts = _start(seller.client, version, data, part_sha=False)
    payload = parts[0] + b"extra" if body == "too_large" else parts[0]
    r = _put(seller.client, up, n, payload, content_range=content_range)
    assert r.status_code == status, r.content
    err = r.json()
    assert err["code"] == code and err["message"] and err["details"]
    assert _arrived(seller.client, up) == {1: False, 2: False, 3: False}  # nothing stored
    assert _state(version) == ("draft", 0)


def test_parts_endpoint_refused_with_s3_storage(seller):
    version = make_version(seller=seller)
    r = seller.client.post(
        f"/api/v1/versions/{version.pk}/uploads/", {"role": "images", "name": "a.zip", "size": 10, "sha256": "a" * 64}, format="json"
    )
    up = r.json()
    assert up["backend"] == "s3"
    r = _put(seller.client, up, 1, b"x" * 10)
    assert r.status_code == 409 and r.json()["code"] == "use_presigned_url"


def test_abort_removes_the_parts_folder(seller, seller_b, local_store):
    version = make_version(seller=seller)
    data = os.urandom(PART + 10)
    up, parts = _start(seller.client, version, data)
    assert _put(seller.client, up, 1, parts[0]).status_code == 200
    folder = _parts_dir(local_store, up)
    assert (folder / "00001").is_file()
    # another organization can neither send parts nor abort
    assert _put(seller_b.client, up, 2, parts[1]).status_code == 404
    assert seller_b.client.post(f"/api/v1/uploads/{up['id']}/abort/").status_code == 404
    r = seller.client.post(f"/api/v1/uploads/{up['id']}/abort/")
    assert r.status_code == 200 and r.json()["state"] == "aborted"
    assert not folder.exists()
    r = _put(seller.client, up, 2, parts[1])
    assert r.status_code == 409 and r.json()["code"] == "upload_closed"
    r = seller.client.post(f"/api/v1/uploads/{up['id']}/complete/")
    assert r.status_code == 409 and r.json()["code"] == "upload_closed"
    assert _state(version) == ("draft", 0)


def test_part_without_content_length_does_not_replace_an_arrived_part(seller, local_store):
    version = make_version(seller=seller)
    data = os.urandom(PART + 10)
    up, parts = _start(seller.client, version, data, part_sha=False)
    assert _put(seller.client, up, 1, parts[0]).status_code == 200
    # A chunked (no Content-Length) re-send: the WSGI body reads as empty.
    r = seller.client.put(
        f"/api/v1/uploads/{up['id']}/parts/1/",
        data=parts[0],
        content_type="application/octet-stream",
        CONTENT_LENGTH="",
        HTTP_CONTENT_RANGE=f"bytes 0-{PART - 1}/{len(data)}",
    )
    assert r.status_code == 400 and r.json()["code"] == "length_required"
    assert _arrived(seller.client, up) == {1: True, 2: False}
    assert (_parts_dir(local_store, up) / "00001").stat().st_size == PART
