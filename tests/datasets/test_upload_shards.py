"""Shard uploads: a tar of many small files sent through the ordinary multipart path; the
worker-side verification re-hashes it, unpacks it with the archive rules of ingest and
records every member as its own file of the version (with its sha256), all or nothing."""

import io
import tarfile

import pytest

from datasets.models import DatasetFile, UploadSession, UploadState
from datasets.services import upload_verify
from marketplace.core.storage import get_storage
from tests.datasets.helpers import MB, png_bytes, put_url, sha
from tests.factories import make_version

pytestmark = pytest.mark.django_db
PART = 5 * MB


def _tar(members: list[tuple[str, bytes]], *, links: list[tuple[str, str, bytes]] = ()) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tf:
        for name, data in members:
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tf.addfile(info, io.BytesIO(data))
        for name, target, kind in links:
            info = tarfile.TarInfo(name)
            info.type, info.linkname = kind, target
            tf.addfile(info)
    return buf.getvalue()


def _send_shard(client, version, data: bytes, *, name: str = "_shards/00000.tar", sent: bytes | None = None, role: str = "images"):
    """Start a shard upload declaring ``data``; send ``sent`` (default: the same bytes); complete."""
    body = {"role": role, "name": name, "size": len(data), "sha256": sha(data), "part_size": PART, "shard": True}
    r = client.post(f"/api/v1/versions/{version.pk}/uploads/", body, format="json")
    assert r.status_code == 201, r.content
    up = r.json()
    assert up["shard"] is True and up["members"] == 0
    sent = data if sent is None else sent
    for p in up["parts"]:
        put_url(p["url"], sent[(p["number"] - 1) * PART : p["number"] * PART], {"Content-Type": "application/octet-stream"})
    r = client.post(f"/api/v1/uploads/{up['id']}/complete/")
    assert r.status_code == 202, r.content
    return upload_verify(upload_id=up["id"])  # the worker task's body


def _nothing_recorded(version, result) -> None:
    assert result.state == UploadState.REJECTED
    assert not DatasetFile.objects.filter(version=version).exists()
    assert list(get_storage().list_keys(f"versions/{version.pk}/uploads/{result.pk.hex}/")) == []


def test_shard_members_become_files_with_their_sha256(seller):
    version = make_version(seller=seller)
    frames = [(f"episode_1/frame_{i:04d}.png", png_bytes(color=(i, 20, 30))) for i in range(5)]
    result = _send_shard(seller.client, version, _tar(frames))
    assert result.state == UploadState.COMPLETE, result.error
    assert result.members == 5 and result.file is None
    rows = {f.path: f for f in DatasetFile.objects.filter(version=version)}
    assert set(rows) == {n for n, _d in frames}
    storage = get_storage()
    for name, data in frames:
        assert rows[name].sha256 == sha(data) and rows[name].size == len(data) and rows[name].role == "images"
        assert rows[name].content_type == "image/png"
        assert storage.read_bytes(rows[name].storage_key) == data
    assert not storage.exists(result.storage_key)  # the shard itself is not kept
    manifest = seller.client.get(f"/api/v1/versions/{version.pk}/").json()["manifest"]
    assert {(f["path"], f["sha256"]) for f in manifest} == {(n, sha(d)) for n, d in frames}  # per file, as before
    assert upload_verify(upload_id=str(result.pk)).state == UploadState.COMPLETE  # at-least-once delivery is harmless
    assert DatasetFile.objects.filter(version=version).count() == 5


def test_shard_corrupted_in_transit_is_rejected(seller):
    version = make_version(seller=seller)
    data = _tar([("a.png", png_bytes()), ("b.png", png_bytes(color=(1, 2, 3)))])
    bad = bytearray(data)
    bad[700] ^= 0xFF  # a flipped byte in the first member's content
    result = _send_shard(seller.client, version, data, sent=bytes(bad))
    assert result.error["code"] == "sha256_mismatch", result.error
    _nothing_recorded(version, result)


def test_shard_that_is_not_a_whole_tar_is_refused_located(seller):
    version = make_version(seller=seller)
    whole = _tar([("a.png", png_bytes()), ("b.png", b"x" * 5000)])
    truncated = whole[:1800]  # declared as is: the bytes arrive intact but the archive is cut
    result = _send_shard(seller.client, version, truncated)
    assert result.error["code"] == "invalid_archive", result.error
    assert result.error["details"][0]["location"] == "shard"
    _nothing_recorded(version, result)


@pytest.mark.parametrize(
    ("members", "links", "code", "location"),
    [
        ([("ok.png", b"1"), ("../evil.png", b"2")], [], "path_escape", "../evil.png"),
        ([("ok.png", b"1"), ("/etc/evil.png", b"2")], [], "absolute_path", "/etc/evil.png"),
        ([("ok.png", b"1")], [("link.png", "/etc/passwd", tarfile.SYMTYPE)], "symlink", "link.png"),
        ([("ok.png", b"1")], [("hard.png", "ok.png", tarfile.LNKTYPE)], "hardlink", "hard.png"),
        ([("dup/a.png", b"1"), ("dup/b.png", b"2"), ("dup/a.png", b"3")], [], "duplicate_path", "dup/a.png"),
        ([("ok.png", b"1"), ("inner.tar", _tar([("x.png", b"x")]))], [], "nested_archive", "inner.tar"),
    ],
)
def test_shard_with_a_forbidden_member_is_refused_located(seller, members, links, code, location):
    version = make_version(seller=seller)
    result = _send_shard(seller.client, version, _tar(members, links=links))
    assert result.error["code"] == code, result.error
    assert [d["location"] for d in result.error["details"]] == [location]
    _nothing_recorded(version, result)
    body = seller.client.get(f"/api/v1/uploads/{result.pk}/").json()
    assert body["state"] == "rejected" and body["error"]["details"][0]["location"] == location


def test_shard_member_named_like_a_file_of_the_version_is_refused_whole(seller):
    version = make_version(seller=seller)
    first = _send_shard(seller.client, version, _tar([("a.png", b"first"), ("b.png", b"b")]), name="_shards/00000.tar")
    assert first.state == UploadState.COMPLETE, first.error
    second = _send_shard(seller.client, version, _tar([("c.png", b"c"), ("a.png", b"second")]), name="_shards/00001.tar")
    assert second.state == UploadState.REJECTED
    assert second.error["code"] == "name_taken" and [d["location"] for d in second.error["details"]] == ["a.png"]
    files = {f.path: f.sha256 for f in DatasetFile.objects.filter(version=version)}
    assert files == {"a.png": sha(b"first"), "b.png": sha(b"b")}  # c.png was not half-recorded
    assert list(get_storage().list_keys(f"versions/{version.pk}/uploads/{second.pk.hex}/")) == []


def test_shard_start_is_refused_for_other_roles_and_names(seller):
    version = make_version(seller=seller)
    body = {"role": "annotations", "name": "_shards/0.tar", "size": 10240, "sha256": "0" * 64, "shard": True}
    r = seller.client.post(f"/api/v1/versions/{version.pk}/uploads/", body, format="json")
    assert r.status_code == 400 and r.json()["code"] == "invalid_role" and r.json()["details"][0]["location"] == "role"
    r = seller.client.post(f"/api/v1/versions/{version.pk}/uploads/", {**body, "role": "images", "name": "_shards/0.zip"}, format="json")
    assert r.status_code == 400 and r.json()["code"] == "invalid_name" and r.json()["details"][0]["location"] == "name"
    assert not UploadSession.objects.filter(version=version).exists()


def test_shard_member_larger_than_the_in_memory_size_is_streamed_and_recorded(seller, monkeypatch):
    from datasets.services import uploads

    monkeypatch.setattr(uploads, "SHARD_MEMBER_IN_MEMORY", 4096)  # this shard's big member goes through a temporary file
    version = make_version(seller=seller)
    big = bytes(range(256)) * 4000  # 1 MB
    members = [("a.png", b"small"), ("clips/big.bin", big), ("z.png", b"last")]
    result = _send_shard(seller.client, version, _tar(members))
    assert result.state == UploadState.COMPLETE, result.error
    files = {f.path: (f.sha256, f.size) for f in DatasetFile.objects.filter(version=version)}
    assert files == {n: (sha(d), len(d)) for n, d in members}
    assert get_storage().read_bytes(DatasetFile.objects.get(version=version, path="clips/big.bin").storage_key) == big


def test_shard_sent_again_records_only_what_is_new(seller):
    version = make_version(seller=seller)
    first = _send_shard(seller.client, version, _tar([("a.png", b"a"), ("b.png", b"b")]), name="_shards/00000.tar")
    assert first.state == UploadState.COMPLETE and first.members == 2
    rows_before = {f.path: (f.pk, f.storage_key) for f in DatasetFile.objects.filter(version=version)}
    # a client that lost its resume state sends the same frames again, with one new frame
    again = _send_shard(seller.client, version, _tar([("a.png", b"a"), ("b.png", b"b"), ("c.png", b"c")]), name="_shards/00000-again.tar")
    assert again.state == UploadState.COMPLETE, again.error
    assert again.members == 1
    files = {f.path: f for f in DatasetFile.objects.filter(version=version)}
    assert {p: f.sha256 for p, f in files.items()} == {"a.png": sha(b"a"), "b.png": sha(b"b"), "c.png": sha(b"c")}
    assert {p: (files[p].pk, files[p].storage_key) for p in rows_before} == rows_before  # the recorded rows are untouched
    storage = get_storage()
    assert sorted(storage.list_keys(f"versions/{version.pk}/uploads/{again.pk.hex}/")) == [files["c.png"].storage_key]
