"""Object storage: S3 (or any S3-compatible store) through boto3, or local files.

Both backends offer the same operations, multipart uploads included, so the upload
contract (resumable, checksummed part by part, bytes never held whole in the API's
memory) is the same with and without S3. Keys are ``/``-separated relative paths.

* S3: clients send parts straight to the store with presigned part URLs.
* Local: clients send parts to the API (``PUT uploads/{id}/parts/{n}/``), which streams
  them to ``<root>/.multipart/<upload id>/``; downloads are signed, expiring links
  served by :mod:`marketplace.core.files`.
"""

from __future__ import annotations

import base64
import hashlib
import shutil
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import BinaryIO

from django.conf import settings
from django.core import signing

CHUNK = 1024 * 1024
DOWNLOAD_SALT = "marketplace.storage.download"


class StorageError(Exception):
    """The store refused an operation or an object is missing."""


@dataclass(frozen=True, kw_only=True)
class StoredPart:
    number: int
    size: int
    etag: str
    sha256: str | None  # hex digest when the store reports one


def validate_key(key: str) -> str:
    parts = key.split("/")
    if not key or key.startswith("/") or any(p in ("", ".", "..") for p in parts) or "\\" in key or "\x00" in key:
        raise StorageError(f"invalid storage key {key!r}")
    return key


def _b64_to_hex(value: str | None) -> str | None:
    return base64.b64decode(value).hex() if value else None


class S3Storage:
    backend = "s3"

    def __init__(self, *, bucket: str, endpoint_url: str | None, region: str, access_key_id: str | None, secret_access_key: str | None) -> None:
        import boto3
        from botocore.config import Config as BotoConfig

        self.bucket = bucket
        self.client = boto3.client(
            "s3",
            endpoint_url=endpoint_url,
            region_name=region,
            aws_access_key_id=access_key_id,
            aws_secret_access_key=secret_access_key,
            config=BotoConfig(signature_version="s3v4", retries={"max_attempts": 5, "mode": "standard"}, s3={"addressing_style": "path"}),
        )

    def _err(self, exc: Exception, key: str) -> StorageError:
        return StorageError(f"{key}: {exc}")

    def put_bytes(self, key: str, data: bytes, *, content_type: str = "application/octet-stream") -> None:
        self.client.put_object(Bucket=self.bucket, Key=validate_key(key), Body=data, ContentType=content_type)

    def put_file(self, key: str, path: Path | str, *, content_type: str = "application/octet-stream") -> None:
        self.client.upload_file(str(path), self.bucket, validate_key(key), ExtraArgs={"ContentType": content_type})

    def open(self, key: str) -> BinaryIO:
        try:
            return self.client.get_object(Bucket=self.bucket, Key=validate_key(key))["Body"]
        except self.client.exceptions.NoSuchKey as exc:
            raise self._err(exc, key) from exc

    def read_bytes(self, key: str) -> bytes:
        with self.open(key) as body:
            return body.read()

    def exists(self, key: str) -> bool:
        try:
            self.client.head_object(Bucket=self.bucket, Key=validate_key(key))
            return True
        except self.client.exceptions.ClientError:
            return False

    def size(self, key: str) -> int:
        try:
            return int(self.client.head_object(Bucket=self.bucket, Key=validate_key(key))["ContentLength"])
        except self.client.exceptions.ClientError as exc:
            raise self._err(exc, key) from exc

    def delete(self, key: str) -> None:
        self.client.delete_object(Bucket=self.bucket, Key=validate_key(key))

    def list_keys(self, prefix: str = "") -> Iterator[str]:
        paginator = self.client.get_paginator("list_objects_v2")
        for page in paginator.paginate(Bucket=self.bucket, Prefix=prefix):
            for obj in page.get("Contents", []):
                yield obj["Key"]

    def download_url(self, key: str, *, ttl: int, filename: str | None = None, grant: str | None = None) -> str:
        """A presigned GET. ``grant`` is ignored: S3 cannot take back a presigned URL, which
        therefore stays usable for its ``ttl`` (``PRESIGNED_URL_TTL_SECONDS``) after a revocation."""
        params = {"Bucket": self.bucket, "Key": validate_key(key)}
        if filename:
            params["ResponseContentDisposition"] = f'attachment; filename="{filename}"'
        return self.client.generate_presigned_url("get_object", Params=params, ExpiresIn=ttl, HttpMethod="GET")

    # multipart ---------------------------------------------------------------------
    def multipart_start(self, key: str) -> str:
        resp = self.client.create_multipart_upload(Bucket=self.bucket, Key=validate_key(key), ChecksumAlgorithm="SHA256")
        return resp["UploadId"]

    def multipart_part_url(self, key: str, upload_id: str, part_number: int, *, ttl: int, sha256_hex: str | None = None) -> str:
        params = {"Bucket": self.bucket, "Key": validate_key(key), "UploadId": upload_id, "PartNumber": part_number}
        if sha256_hex:
            # Signed into the URL: the store rejects a part whose bytes do not hash to it.
            params["ChecksumSHA256"] = base64.b64encode(bytes.fromhex(sha256_hex)).decode()
        return self.client.generate_presigned_url("upload_part", Params=params, ExpiresIn=ttl, HttpMethod="PUT")

    def multipart_put_part(self, key: str, upload_id: str, part_number: int, data: bytes, *, sha256_hex: str | None = None) -> StoredPart:
        kwargs = {}
        if sha256_hex:
            kwargs["ChecksumSHA256"] = base64.b64encode(bytes.fromhex(sha256_hex)).decode()
        resp = self.client.upload_part(Bucket=self.bucket, Key=validate_key(key), UploadId=upload_id, PartNumber=part_number, Body=data, **kwargs)
        return StoredPart(number=part_number, size=len(data), etag=resp["ETag"], sha256=_b64_to_hex(resp.get("ChecksumSHA256")))

    def multipart_parts(self, key: str, upload_id: str) -> list[StoredPart]:
        parts: list[StoredPart] = []
        kwargs = {"Bucket": self.bucket, "Key": validate_key(key), "UploadId": upload_id}
        while True:
            resp = self.client.list_parts(**kwargs)
            for p in resp.get("Parts", []):
                parts.append(StoredPart(number=p["PartNumber"], size=p["Size"], etag=p["ETag"], sha256=_b64_to_hex(p.get("ChecksumSHA256"))))
            if not resp.get("IsTruncated"):
                return parts
            kwargs["PartNumberMarker"] = resp["NextPartNumberMarker"]

    def multipart_complete(self, key: str, upload_id: str, parts: list[StoredPart]) -> None:
        payload = {"Parts": [{"PartNumber": p.number, "ETag": p.etag, **({"ChecksumSHA256": base64.b64encode(bytes.fromhex(p.sha256)).decode()} if p.sha256 else {})} for p in sorted(parts, key=lambda p: p.number)]}
        self.client.complete_multipart_upload(Bucket=self.bucket, Key=validate_key(key), UploadId=upload_id, MultipartUpload=payload)

    def multipart_abort(self, key: str, upload_id: str) -> None:
        try:
            self.client.abort_multipart_upload(Bucket=self.bucket, Key=validate_key(key), UploadId=upload_id)
        except self.client.exceptions.ClientError as exc:
            if "NoSuchUpload" not in str(exc):
                raise

    def check(self) -> None:
        self.client.head_bucket(Bucket=self.bucket)

    def ensure_bucket(self) -> None:
        try:
            self.client.head_bucket(Bucket=self.bucket)
        except self.client.exceptions.ClientError:
            self.client.create_bucket(Bucket=self.bucket)


class LocalStorage:
    backend = "local"

    def __init__(self, *, root: str | Path) -> None:
        self.root = Path(root)
        self.root.mkdir(parents=True, exist_ok=True)
        self.multipart_root = self.root / ".multipart"

    def path(self, key: str) -> Path:
        return self.root / validate_key(key)

    def put_bytes(self, key: str, data: bytes, *, content_type: str = "application/octet-stream") -> None:
        path = self.path(key)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex}.tmp")
        tmp.write_bytes(data)
        tmp.replace(path)  # atomic: readers never see half an object

    def put_file(self, key: str, path: Path | str, *, content_type: str = "application/octet-stream") -> None:
        dest = self.path(key)
        dest.parent.mkdir(parents=True, exist_ok=True)
        tmp = dest.with_name(f".{dest.name}.{uuid.uuid4().hex}.tmp")
        shutil.copyfile(path, tmp)
        tmp.replace(dest)

    def open(self, key: str) -> BinaryIO:
        try:
            return self.path(key).open("rb")
        except FileNotFoundError as exc:
            raise StorageError(f"{key}: no such object") from exc

    def read_bytes(self, key: str) -> bytes:
        with self.open(key) as fh:
            return fh.read()

    def exists(self, key: str) -> bool:
        return self.path(key).is_file()

    def size(self, key: str) -> int:
        try:
            return self.path(key).stat().st_size
        except FileNotFoundError as exc:
            raise StorageError(f"{key}: no such object") from exc

    def delete(self, key: str) -> None:
        self.path(key).unlink(missing_ok=True)

    def list_keys(self, prefix: str = "") -> Iterator[str]:
        for path in sorted(self.root.rglob("*")):
            if path.is_file() and not path.name.startswith(".") and ".multipart" not in path.parts:
                key = path.relative_to(self.root).as_posix()
                if key.startswith(prefix):
                    yield key

    def download_url(self, key: str, *, ttl: int, filename: str | None = None, grant: str | None = None) -> str:
        """A signed ``/files/<token>`` link. ``grant`` names what the link was issued under
        (``entitlement:<id>``): the link works only while that grant is live, checked on
        every request (``marketplace.core.files``)."""
        claims = {"k": validate_key(key), "f": filename, "ttl": ttl}
        if grant:
            claims["g"] = grant
        token = signing.dumps(claims, salt=DOWNLOAD_SALT, compress=True)
        return f"/files/{token}"

    @staticmethod
    def resolve_download_token(token: str) -> tuple[str, str | None, str | None]:
        """The key, file name and grant behind a signed download link; raises on a bad or
        expired one."""
        unsigned = signing.loads(token, salt=DOWNLOAD_SALT, max_age=None)
        signing.loads(token, salt=DOWNLOAD_SALT, max_age=int(unsigned["ttl"]))
        return unsigned["k"], unsigned["f"], unsigned.get("g")

    # multipart ---------------------------------------------------------------------
    def _upload_dir(self, upload_id: str) -> Path:
        if not upload_id.isalnum():
            raise StorageError("invalid upload id")
        return self.multipart_root / upload_id

    def multipart_start(self, key: str) -> str:
        validate_key(key)
        upload_id = uuid.uuid4().hex
        self._upload_dir(upload_id).mkdir(parents=True)
        return upload_id

    def multipart_part_url(self, key: str, upload_id: str, part_number: int, *, ttl: int, sha256_hex: str | None = None) -> None:
        return None  # parts go through the API with local storage

    def multipart_put_part(self, key: str, upload_id: str, part_number: int, data: bytes | BinaryIO, *, sha256_hex: str | None = None) -> StoredPart:
        directory = self._upload_dir(upload_id)
        if not directory.is_dir():
            raise StorageError("no such upload")
        digest = hashlib.sha256()
        tmp = directory / f".{part_number}.{uuid.uuid4().hex}.tmp"
        size = 0
        with tmp.open("wb") as out:
            chunks = [data] if isinstance(data, (bytes, bytearray)) else iter(lambda: data.read(CHUNK), b"")
            for chunk in chunks:
                digest.update(chunk)
                size += len(chunk)
                out.write(chunk)
        hex_digest = digest.hexdigest()
        if sha256_hex and sha256_hex != hex_digest:
            tmp.unlink()
            raise StorageError(f"part {part_number}: sha256 mismatch")
        tmp.replace(directory / f"{part_number:05d}")
        (directory / f"{part_number:05d}.sha256").write_text(hex_digest)
        return StoredPart(number=part_number, size=size, etag=hex_digest, sha256=hex_digest)

    def multipart_parts(self, key: str, upload_id: str) -> list[StoredPart]:
        directory = self._upload_dir(upload_id)
        if not directory.is_dir():
            raise StorageError("no such upload")
        parts = []
        for path in sorted(directory.glob("[0-9]" * 5)):
            sha = (directory / f"{path.name}.sha256").read_text()
            parts.append(StoredPart(number=int(path.name), size=path.stat().st_size, etag=sha, sha256=sha))
        return parts

    def multipart_complete(self, key: str, upload_id: str, parts: list[StoredPart]) -> None:
        directory = self._upload_dir(upload_id)
        stored = {p.number: p for p in self.multipart_parts(key, upload_id)}
        for part in parts:
            if part.number not in stored or stored[part.number].etag != part.etag:
                raise StorageError(f"part {part.number} is missing or differs")
        dest = self.path(key)
        dest.parent.mkdir(parents=True, exist_ok=True)
        tmp = dest.with_name(f".{dest.name}.{uuid.uuid4().hex}.tmp")
        with tmp.open("wb") as out:
            for part in sorted(parts, key=lambda p: p.number):
                with (directory / f"{part.number:05d}").open("rb") as src:
                    shutil.copyfileobj(src, out, CHUNK)
        tmp.replace(dest)
        shutil.rmtree(directory, ignore_errors=True)

    def multipart_abort(self, key: str, upload_id: str) -> None:
        shutil.rmtree(self._upload_dir(upload_id), ignore_errors=True)

    def check(self) -> None:
        probe = self.root / f".probe-{uuid.uuid4().hex}"
        probe.write_bytes(b"")
        probe.unlink()


ObjectStorage = S3Storage | LocalStorage


def build_storage(options: dict) -> ObjectStorage:
    if options["backend"] == "s3":
        return S3Storage(
            bucket=options["bucket"],
            endpoint_url=options.get("endpoint_url"),
            region=options.get("region") or "us-east-1",
            access_key_id=options.get("access_key_id"),
            secret_access_key=options.get("secret_access_key"),
        )
    return LocalStorage(root=options["root"])


@lru_cache(maxsize=4)
def _cached(frozen: tuple) -> ObjectStorage:
    return build_storage(dict(frozen))


def get_storage() -> ObjectStorage:
    """The configured object store (one client per process and configuration)."""
    return _cached(tuple(sorted(settings.OBJECT_STORAGE.items())))
