"""Writes for uploads: resumable, checksummed, straight to object storage (presigned
multipart on S3, parts through the API on local storage), verified by a worker before a
file joins the version."""

from __future__ import annotations

import base64
import hashlib
import logging
import math
import mimetypes
import re
import shutil
import tarfile
import tempfile
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from pathlib import Path
from typing import Any, BinaryIO

from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import Sum
from django.utils import timezone

from datasets.errors import DatasetErrorCode
from datasets.ingest.archive import ARCHIVE_SUFFIXES, ArchiveError, is_archive, tar_stream_members
from datasets.limits import limits
from datasets.models import SELLER_ROLES, DatasetFile, DatasetVersion, FileOrigin, FileRole, UploadSession, UploadState
from datasets.states import VersionState
from marketplace.audit.services import audit_event_record
from marketplace.core.errors import Conflict, InvalidInput, LimitExceeded, field_error
from marketplace.core.storage import CHUNK, StorageError, get_storage

log = logging.getLogger(__name__)

_SHA256 = re.compile(r"^[0-9a-f]{64}$")
SHARD_ROLES = (FileRole.IMAGES, FileRole.PANOPTIC)
SHARD_MEMBER_IN_MEMORY = 8 * 1024 * 1024  # a shard's member up to this size is read whole
SHARD_STORE_THREADS = 4


def validate_file_path(name: str, location: str = "name") -> str:
    """A relative POSIX path without traversal, control characters or backslashes."""
    parts = name.split("/")
    if (
        not name
        or len(name) > 512
        or name.startswith("/")
        or "\\" in name
        or any(ord(c) < 32 for c in name)
        or any(p in ("", ".", "..") for p in parts)
    ):
        raise InvalidInput(
            "The file name must be a relative path without '..', '\\' or control characters.",
            code=DatasetErrorCode.INVALID_NAME,
            details=[field_error(location, "invalid path", "invalid_name")],
        )
    return name


def _require_accepting(version: DatasetVersion, role: str) -> None:
    """Sellers upload into a draft; the auditor's reference arrives while the version is
    processing or in review."""
    from datasets.services.audit import AUDIT_REFERENCE_STATES

    if role != FileRole.REFERENCE:
        return _require_draft(version)
    if version.state not in AUDIT_REFERENCE_STATES:
        raise Conflict(f"References are taken while a version is processing or in review; it is {version.state}.", code=DatasetErrorCode.INVALID_STATE)
    return None


def _require_draft(version: DatasetVersion) -> None:
    if version.state != VersionState.DRAFT:
        raise Conflict(f"Files can only change while the version is a draft; it is {version.state}.", code=DatasetErrorCode.VERSION_FROZEN)


def _org_usage(org) -> int:
    files = DatasetFile.objects.filter(version__dataset__owner=org).aggregate(n=Sum("size"))["n"] or 0
    pending = (
        UploadSession.objects.filter(organization=org, state__in=[UploadState.OPEN, UploadState.VERIFYING]).aggregate(n=Sum("size"))["n"]
        or 0
    )
    return int(files) + int(pending)


def upload_plan(*, size: int, part_size: int | None) -> tuple[int, int]:
    lim = limits()
    if part_size is None:
        part_size = max(lim.default_part_size, math.ceil(size / lim.max_parts)) if size else lim.default_part_size
    if part_size < lim.min_part_size or part_size > lim.max_part_size:
        raise InvalidInput(
            f"part_size must be between {lim.min_part_size} and {lim.max_part_size} bytes.",
            code=DatasetErrorCode.INVALID_PART_SIZE,
            details=[field_error("part_size", "out of range", "invalid_part_size")],
        )
    count = max(1, math.ceil(size / part_size))
    if count > lim.max_parts:
        raise LimitExceeded(
            f"{count} parts exceed the maximum of {lim.max_parts}; use larger parts.",
            code=DatasetErrorCode.TOO_MANY_PARTS,
            details=[field_error("part_size", "too many parts", "too_many_parts")],
        )
    return part_size, count


def upload_part_size(upload: UploadSession, number: int) -> int:
    if number < upload.part_count:
        return upload.part_size
    return upload.size - upload.part_size * (upload.part_count - 1)


@transaction.atomic
def upload_start(
    *,
    version: DatasetVersion,
    actor,
    role: str,
    name: str,
    size: int,
    sha256: str,
    part_size: int | None = None,
    part_sha256: list[str] | None = None,
    shard: bool = False,
) -> UploadSession:
    """One file, or (``shard``) a tar of many small files of role images or panoptic whose
    members join the manifest one by one when the shard is verified."""
    lim = limits()
    locked = DatasetVersion.objects.select_for_update().select_related("dataset__owner").get(pk=version.pk)
    _require_accepting(locked, role)
    if role not in SELLER_ROLES and role != FileRole.REFERENCE:
        raise InvalidInput(
            f"role must be one of {', '.join(SELLER_ROLES)}.",
            code=DatasetErrorCode.INVALID_ROLE,
            details=[field_error("role", "not an upload role", "invalid_role")],
        )
    if role == FileRole.REFERENCE and not name.lower().endswith((".json", *ARCHIVE_SUFFIXES)):
        raise InvalidInput(
            "A reference is a COCO JSON file, or an archive of a panoptic JSON and its PNGs.",
            code=DatasetErrorCode.INVALID_NAME,
            details=[field_error("name", "a reference's name ends with .json, .zip or a tar suffix", "invalid_name")],
        )
    if shard and role not in SHARD_ROLES:
        raise InvalidInput(
            f"A shard holds files of role {' or '.join(SHARD_ROLES)}.",
            code=DatasetErrorCode.INVALID_ROLE,
            details=[field_error("role", "not a shard role", "invalid_role")],
        )
    validate_file_path(name)
    if shard and not name.lower().endswith(".tar"):
        raise InvalidInput(
            "A shard is an uncompressed tar archive named *.tar.",
            code=DatasetErrorCode.INVALID_NAME,
            details=[field_error("name", "a shard's name ends with .tar", "invalid_name")],
        )
    sha256 = sha256.lower()
    if not _SHA256.match(sha256):
        raise InvalidInput(
            "sha256 must be 64 hex digits.",
            code=DatasetErrorCode.INVALID_SHA256,
            details=[field_error("sha256", "not a sha256 hex digest", "invalid_sha256")],
        )
    if size < 0:
        raise InvalidInput("size must not be negative.", code=DatasetErrorCode.INVALID_SIZE, details=[field_error("size", "negative", "invalid_size")])
    if size > lim.max_file_size:
        raise LimitExceeded(
            f"The file is larger than the maximum of {lim.max_file_size} bytes.",
            code=DatasetErrorCode.FILE_TOO_LARGE,
            details=[field_error("size", "too large", "file_too_large")],
        )
    part_size, part_count = upload_plan(size=size, part_size=part_size)
    if part_sha256:
        if len(part_sha256) != part_count or not all(isinstance(h, str) and _SHA256.match(h.lower()) for h in part_sha256):
            raise InvalidInput(
                f"part_sha256 must list {part_count} sha256 hex digests.",
                code=DatasetErrorCode.INVALID_PART_SHA256,
                details=[field_error("part_sha256", "wrong count or format", "invalid_part_sha256")],
            )
        part_sha256 = [h.lower() for h in part_sha256]
    org = locked.dataset.owner
    # the auditor's reference is the platform's, not the seller's storage
    if role != FileRole.REFERENCE and _org_usage(org) + size > lim.org_quota:
        raise LimitExceeded(
            "This upload would exceed your organization's storage quota.",
            code=DatasetErrorCode.QUOTA_EXCEEDED,
            details=[field_error("size", f"quota is {lim.org_quota} bytes", "quota_exceeded")],
        )
    if (
        locked.files.filter(path=name).exists()
        or locked.uploads.filter(name=name, state__in=[UploadState.OPEN, UploadState.VERIFYING]).exists()
    ):
        raise Conflict(
            "The version already has a file or an open upload by that name.",
            code=DatasetErrorCode.NAME_TAKEN,
            details=[field_error("name", "taken", "name_taken")],
        )
    upload = UploadSession(
        version=locked,
        organization=org,
        role=role,
        name=name,
        size=size,
        sha256=sha256,
        part_size=part_size,
        part_count=part_count,
        part_sha256=part_sha256 or [],
        shard=shard,
        created_by=actor,
        expires_at=timezone.now() + timedelta(hours=lim.upload_ttl_hours),
    )
    upload.storage_key = f"versions/{locked.pk}/uploads/{upload.id.hex}/{name}"
    upload.multipart_id = get_storage().multipart_start(upload.storage_key)
    upload.save()
    audit_event_record(
        actor=actor,
        action="upload.start",
        obj=locked,
        organization=org,
        after={"upload": str(upload.id), "role": role, "name": name, "size": size, "shard": shard},
    )
    return upload


def upload_put_part(*, upload: UploadSession, number: int, content_range: str | None, stream: BinaryIO, length: int | None) -> dict:
    """Store one part sent through the API (local storage). Re-sending a part replaces it."""
    storage = get_storage()
    if storage.backend != "local":
        raise Conflict("With S3 storage, send parts to their presigned URLs.", code=DatasetErrorCode.USE_PRESIGNED_URL)
    if upload.state != UploadState.OPEN:
        raise Conflict(f"This upload is {upload.state}.", code=DatasetErrorCode.UPLOAD_CLOSED)
    _require_accepting(upload.version, upload.role)
    if not 1 <= number <= upload.part_count:
        raise InvalidInput(
            f"Part numbers run from 1 to {upload.part_count}.",
            code=DatasetErrorCode.INVALID_PART_NUMBER,
            details=[field_error("n", "out of range", "invalid_part_number")],
        )
    expected = upload_part_size(upload, number)
    start = (number - 1) * upload.part_size
    want = f"bytes {start}-{start + expected - 1}/{upload.size}"
    if (content_range or "").strip() != want:
        raise InvalidInput(
            f"Content-Range must be {want!r} for part {number}.",
            code=DatasetErrorCode.INVALID_CONTENT_RANGE,
            details=[field_error("Content-Range", want, "invalid_content_range")],
        )
    if length is None:
        # Without a Content-Length the WSGI body reads as empty: storing it would replace
        # a part that already arrived with nothing.
        raise InvalidInput(
            "A part needs a Content-Length header (chunked transfer is not accepted).",
            code=DatasetErrorCode.LENGTH_REQUIRED,
            details=[field_error("Content-Length", "missing", "length_required")],
        )
    if length != expected:
        raise InvalidInput(
            f"Part {number} must be {expected} bytes.",
            code=DatasetErrorCode.PART_SIZE_MISMATCH,
            details=[field_error(f"parts[{number}]", f"expected {expected} bytes", "part_size_mismatch")],
        )
    sha = upload.part_sha256[number - 1] if upload.part_sha256 else None
    try:
        part = storage.multipart_put_part(upload.storage_key, upload.multipart_id, number, stream, sha256_hex=sha)
    except StorageError as exc:
        raise InvalidInput(
            str(exc),
            code=DatasetErrorCode.PART_SHA256_MISMATCH if "sha256" in str(exc) else DatasetErrorCode.PART_REJECTED,
            details=[field_error(f"parts[{number}]", str(exc), "part_sha256_mismatch")],
        ) from None
    return {"number": part.number, "size": part.size}


def upload_parts_arrived(*, upload: UploadSession) -> list[dict]:
    if upload.state != UploadState.OPEN:
        return []
    try:
        parts = get_storage().multipart_parts(upload.storage_key, upload.multipart_id)
    except (StorageError, Exception) as exc:  # noqa: BLE001 - a vanished multipart upload has no parts
        log.info("multipart_parts failed for %s: %s", upload.pk, exc)
        return []
    return [{"number": p.number, "size": p.size} for p in parts]


def upload_part_urls(*, upload: UploadSession, numbers: list[int]) -> dict[int, str | None]:
    storage = get_storage()
    ttl = limits().part_url_ttl
    return {
        n: storage.multipart_part_url(
            upload.storage_key, upload.multipart_id, n, ttl=ttl, sha256_hex=upload.part_sha256[n - 1] if upload.part_sha256 else None
        )
        for n in numbers
    }


def upload_parts_plan(*, upload: UploadSession) -> list[dict[str, Any]]:
    """Every part with its expected size, whether it arrived, and (S3, not yet arrived) a
    fresh presigned URL with the headers it needs: a resuming client needs nothing else.
    Closed uploads have no parts to send. Issues presigned URLs, hence a service."""
    if upload.state != UploadState.OPEN:
        return []
    numbers = range(1, upload.part_count + 1)
    arrived = {p["number"]: p["size"] for p in upload_parts_arrived(upload=upload)}
    missing = [n for n in numbers if arrived.get(n) != upload_part_size(upload, n)]
    urls = upload_part_urls(upload=upload, numbers=missing)
    return [
        {
            "number": n,
            "size": upload_part_size(upload, n),
            "arrived": n not in urls,
            "url": urls.get(n),
            "headers": upload_part_headers(upload=upload, number=n),
        }
        for n in numbers
    ]


def upload_part_headers(*, upload: UploadSession, number: int) -> dict[str, str]:
    """Headers the client must send with a part: the signed-in checksum (S3 checks the
    bytes against it) and a neutral content type."""
    headers = {"Content-Type": "application/octet-stream"}
    if upload.part_sha256:
        headers["x-amz-checksum-sha256"] = base64.b64encode(bytes.fromhex(upload.part_sha256[number - 1])).decode()
    return headers


@transaction.atomic
def upload_complete(*, upload: UploadSession, actor) -> UploadSession:
    """Check that every part arrived with its size, then let a worker assemble and re-hash."""
    locked = UploadSession.objects.select_for_update().select_related("version").get(pk=upload.pk)
    if locked.state in (UploadState.VERIFYING, UploadState.COMPLETE):
        return locked  # a repeated complete is harmless
    if locked.state != UploadState.OPEN:
        raise Conflict(f"This upload is {locked.state}.", code=DatasetErrorCode.UPLOAD_CLOSED)
    _require_accepting(locked.version, locked.role)
    arrived = {p["number"]: p["size"] for p in upload_parts_arrived(upload=locked)}
    missing = [n for n in range(1, locked.part_count + 1) if n not in arrived]
    if missing:
        raise Conflict(
            f"{len(missing)} part(s) have not arrived.",
            code=DatasetErrorCode.UPLOAD_INCOMPLETE,
            details=[field_error(f"parts[{n}]", "missing", "missing_part") for n in missing[:100]],
        )
    extra = sorted(n for n in arrived if n > locked.part_count)
    wrong = [n for n in range(1, locked.part_count + 1) if arrived[n] != upload_part_size(locked, n)]
    if extra or wrong:
        details = [
            field_error(f"parts[{n}]", f"{arrived[n]} bytes, expected {upload_part_size(locked, n)}", "part_size_mismatch")
            for n in wrong[:100]
        ]
        details += [field_error(f"parts[{n}]", "beyond the declared part count", "unexpected_part") for n in extra[:100]]
        raise Conflict("Some parts do not have their declared size; re-send them.", code=DatasetErrorCode.PART_SIZE_MISMATCH, details=details)
    locked.state = UploadState.VERIFYING
    locked.save(update_fields=["state", "updated_at"])
    audit_event_record(
        actor=actor, action="upload.complete", obj=locked.version, organization=locked.organization, after={"upload": str(locked.pk)}
    )
    upload_id = str(locked.pk)

    def enqueue() -> None:
        from datasets.tasks import upload_verify_task

        upload_verify_task.delay(upload_id)

    transaction.on_commit(enqueue)
    return locked


def upload_abort_storage(upload: UploadSession) -> None:
    storage = get_storage()
    try:
        storage.multipart_abort(upload.storage_key, upload.multipart_id)
    except Exception as exc:  # noqa: BLE001 - already gone is fine; log anything else
        log.warning("abort of upload %s failed: %s", upload.pk, exc)


def _upload_reject(upload: UploadSession, code: str, message: str, details: list | None = None) -> UploadSession:
    storage = get_storage()
    try:
        storage.delete(upload.storage_key)
    except Exception as exc:  # noqa: BLE001
        log.warning("delete of rejected upload %s failed: %s", upload.pk, exc)
    upload_abort_storage(upload)
    UploadSession.objects.filter(pk=upload.pk).update(
        state=UploadState.REJECTED, error={"code": code, "message": message, "details": details or []}, updated_at=timezone.now()
    )
    upload.refresh_from_db()
    return upload


def upload_verify(*, upload_id: str) -> UploadSession:
    """Worker side of complete: assemble, re-hash the whole object and every part, and
    only then record the DatasetFile. Idempotent (a finished upload is returned as is)."""
    upload = UploadSession.objects.select_related("version").get(pk=upload_id)
    if upload.state != UploadState.VERIFYING:
        return upload
    storage = get_storage()
    try:
        parts = storage.multipart_parts(upload.storage_key, upload.multipart_id)
    except Exception:  # noqa: BLE001 - completed by an earlier, interrupted run
        parts = None
    if parts is not None:
        parts = [p for p in parts if 1 <= p.number <= upload.part_count]
        if len(parts) != upload.part_count:
            return _upload_reject(upload, "upload_incomplete", "Parts disappeared before assembly.")
        storage.multipart_complete(upload.storage_key, upload.multipart_id, parts)
    elif not storage.exists(upload.storage_key):
        return _upload_reject(upload, "upload_incomplete", "The uploaded object is missing.")
    # Re-hash server-side, streaming: the client's checksums are claims, not facts.
    whole = hashlib.sha256()
    part_hash = hashlib.sha256()
    part_no, in_part, total = 1, 0, 0
    bad_parts: list[dict] = []

    def close_part(n: int, digest: str) -> None:
        if upload.part_sha256 and upload.part_sha256[n - 1] != digest:
            bad_parts.append(field_error(f"parts[{n}]", "sha256 of the stored part differs from the declared one", "part_sha256_mismatch"))

    with storage.open(upload.storage_key) as body:
        while True:
            chunk = body.read(CHUNK)
            if not chunk:
                break
            whole.update(chunk)
            total += len(chunk)
            view = memoryview(chunk)
            while len(view):
                room = upload_part_size(upload, part_no) - in_part if part_no <= upload.part_count else len(view)
                take = view[:room]
                part_hash.update(take)
                in_part += len(take)
                view = view[len(take) :]
                if part_no <= upload.part_count and in_part == upload_part_size(upload, part_no):
                    close_part(part_no, part_hash.hexdigest())
                    part_no, in_part, part_hash = part_no + 1, 0, hashlib.sha256()
    if total != upload.size:
        return _upload_reject(
            upload,
            "size_mismatch",
            f"The object has {total} bytes; {upload.size} were declared.",
            [field_error("size", "differs", "size_mismatch")],
        )
    if bad_parts:
        return _upload_reject(upload, "part_sha256_mismatch", f"{len(bad_parts)} part(s) do not match their declared sha256.", bad_parts)
    if whole.hexdigest() != upload.sha256:
        return _upload_reject(
            upload,
            "sha256_mismatch",
            "The sha256 of the uploaded file differs from the declared one.",
            [field_error("sha256", f"computed {whole.hexdigest()}", "sha256_mismatch")],
        )
    if upload.shard:
        return shard_record(upload)
    if upload.role == FileRole.REFERENCE:
        return _reference_record(upload)
    with transaction.atomic():
        upload = UploadSession.objects.select_for_update().get(pk=upload.pk)
        version = DatasetVersion.objects.select_for_update().select_related("dataset__owner").get(pk=upload.version_id)
        if upload.state != UploadState.VERIFYING:
            return upload
        if version.state != VersionState.DRAFT:
            return _upload_reject(upload, "version_frozen", "The version left draft before this upload was verified.")
        if version.files.filter(path=upload.name).exists():
            return _upload_reject(upload, "name_taken", "The version already has a file by that name.")
        content_type = mimetypes.guess_type(upload.name)[0] or "application/octet-stream"
        dfile = DatasetFile.objects.create(
            version=version,
            role=upload.role,
            path=upload.name,
            size=upload.size,
            sha256=upload.sha256,
            content_type=content_type,
            storage_key=upload.storage_key,
            origin=FileOrigin.UPLOAD,
        )
        upload.state = UploadState.COMPLETE
        upload.file = dfile
        upload.error = {}
        upload.save(update_fields=["state", "file", "error", "updated_at"])
        audit_event_record(
            actor=None,
            action="version.file_add",
            obj=version,
            organization=version.dataset.owner,
            after={"path": upload.name, "role": upload.role, "sha256": upload.sha256, "size": upload.size},
        )
    return upload


def _reference_record(upload: UploadSession) -> UploadSession:
    """A verified reference upload goes through the auditor's reference check and store
    (:func:`audit_reference_submit`, the same rules as the request-body route); refused,
    the upload is rejected with its located errors and nothing changes. The uploaded object
    itself is not kept: the reference is stored under its own digest."""
    from datasets.services.audit import audit_reference_submit

    storage = get_storage()
    with tempfile.TemporaryDirectory(prefix=f"reference-upload-{upload.pk}-") as tmp:
        local = Path(tmp) / ("reference.json" if upload.name.lower().endswith(".json") else "reference.archive")
        with storage.open(upload.storage_key) as src, open(local, "wb") as out:
            shutil.copyfileobj(src, out, CHUNK)
        version = DatasetVersion.objects.select_related("dataset__owner").get(pk=upload.version_id)
        try:
            dfile = audit_reference_submit(version=version, actor=upload.created_by, path=local, archive=is_archive(upload.name))
        except (InvalidInput, Conflict) as exc:
            return _upload_reject(upload, exc.code, exc.message, exc.details)
    UploadSession.objects.filter(pk=upload.pk, state=UploadState.VERIFYING).update(state=UploadState.COMPLETE, file=dfile, error={}, updated_at=timezone.now())
    storage.delete(upload.storage_key)
    upload.refresh_from_db()
    return upload


def _name_conflicts(version: DatasetVersion, rows: list[DatasetFile], *, exclude_upload) -> tuple[set[str], set[str]]:
    """(taken, same): member names the version has as another file or an open upload, and
    those it has already as this very file (same role and sha256: sent again, nothing new)."""
    taken: set[str] = set()
    same: set[str] = set()
    by_name = {r.path: r for r in rows}
    names = list(by_name)
    for i in range(0, len(names), 2000):
        chunk = names[i : i + 2000]
        for path, role, digest in version.files.filter(path__in=chunk).values_list("path", "role", "sha256"):
            (same if (role, digest) == (by_name[path].role, by_name[path].sha256) else taken).add(path)
        taken.update(
            version.uploads.filter(name__in=chunk, shard=False, state__in=[UploadState.OPEN, UploadState.VERIFYING])
            .exclude(pk=exclude_upload.pk)
            .values_list("name", flat=True)
        )
    return taken, same - taken


def _delete_keys(keys: list[str]) -> None:
    storage = get_storage()
    for key in keys:
        try:
            storage.delete(key)
        except Exception as exc:  # noqa: BLE001 - an orphan object is logged, not fatal
            log.warning("delete of %s failed: %s", key, exc)


def shard_record(upload: UploadSession) -> UploadSession:
    """Unpack a verified shard and record every member as a file of the version, with its
    own sha256, all or nothing: a refused member rejects the whole shard (code, and the
    member's name as location) and leaves no row and no object behind. The shard is read
    once, straight from storage; its members are stored as they come, a few at a time."""
    storage = get_storage()
    prefix = f"versions/{upload.version_id}/uploads/{upload.pk.hex}/members/"
    stored: list[str] = []

    def row(name: str, size: int, digest: str, key: str, content_type: str) -> DatasetFile:
        return DatasetFile(
            version_id=upload.version_id,
            role=upload.role,
            path=name,
            size=size,
            sha256=digest,
            content_type=content_type,
            storage_key=key,
            origin=FileOrigin.UPLOAD,
        )

    def store_bytes(name: str, data: bytes) -> DatasetFile:
        key, content_type = prefix + name, mimetypes.guess_type(name)[0] or "application/octet-stream"
        storage.put_bytes(key, data, content_type=content_type)
        stored.append(key)
        return row(name, len(data), hashlib.sha256(data).hexdigest(), key, content_type)

    def store_spooled(name: str, chunks) -> DatasetFile:
        key, content_type = prefix + name, mimetypes.guess_type(name)[0] or "application/octet-stream"
        digest, n = hashlib.sha256(), 0
        with tempfile.NamedTemporaryFile(dir=_scratch_root(), prefix="member-") as tmp:
            for chunk in chunks:
                digest.update(chunk)
                n += len(chunk)
                tmp.write(chunk)
            tmp.flush()
            storage.put_file(key, tmp.name, content_type=content_type)
        stored.append(key)
        return row(name, n, digest.hexdigest(), key, content_type)

    try:
        try:
            futures, spooled = [], []
            # Storing is I/O (local files or S3 requests): a few threads overlap the waits.
            with storage.open(upload.storage_key) as body, ThreadPoolExecutor(max_workers=SHARD_STORE_THREADS) as pool:
                for name, size, chunks in tar_stream_members(body, size=upload.size, lim=limits(), name="shard"):
                    try:
                        validate_file_path(name, location=name)
                    except InvalidInput:
                        raise ArchiveError("invalid_name", name, "a member name must be a relative path of at most 512 characters") from None
                    if size <= SHARD_MEMBER_IN_MEMORY:
                        futures.append(pool.submit(store_bytes, name, b"".join(chunks)))
                    else:
                        spooled.append(store_spooled(name, chunks))  # a large member: through a temporary file, here
                    if len(futures) % 32 == 0:  # bounded memory: wait for the older members
                        futures[-32].result()
                rows = [f.result() for f in futures] + spooled
        except (tarfile.TarError, EOFError) as exc:
            raise ArchiveError("invalid_archive", "shard", f"not a readable tar archive: {exc}") from None
    except ArchiveError as exc:
        _delete_keys(stored)
        return _upload_reject(upload, exc.code, exc.message, [field_error(exc.location, exc.message, exc.code)])
    except BaseException:
        _delete_keys(stored)
        raise
    if not rows:
        return _upload_reject(upload, "empty_shard", "The shard holds no file.", [field_error("shard", "no member", "empty_shard")])
    taken, same = _name_conflicts(upload.version, rows, exclude_upload=upload)
    if taken:
        _delete_keys(stored)
        details = [field_error(n, "the version already has a file or an open upload by that name", "name_taken") for n in sorted(taken)[:100]]
        return _upload_reject(upload, "name_taken", f"{len(taken)} member name(s) are taken in this version.", details)
    if same:  # frames sent again (a client that lost its resume state): the version keeps its rows
        _delete_keys([r.storage_key for r in rows if r.path in same])
        rows = [r for r in rows if r.path not in same]
        stored = [k for k in stored if k.removeprefix(prefix) not in same]
    try:
        with transaction.atomic():
            locked = UploadSession.objects.select_for_update().get(pk=upload.pk)
            version = DatasetVersion.objects.select_for_update().select_related("dataset__owner").get(pk=upload.version_id)
            if locked.state != UploadState.VERIFYING:
                _delete_keys(stored)
                return locked
            if version.state != VersionState.DRAFT:
                _delete_keys(stored)
                return _upload_reject(locked, "version_frozen", "The version left draft before this shard was verified.")
            DatasetFile.objects.bulk_create(rows, batch_size=2000)
            locked.state = UploadState.COMPLETE
            locked.members = len(rows)
            locked.error = {}
            locked.save(update_fields=["state", "members", "error", "updated_at"])
            audit_event_record(
                actor=None,
                action="version.files_add",
                obj=version,
                organization=version.dataset.owner,
                after={"shard": locked.name, "sha256": locked.sha256, "members": len(rows), "role": locked.role},
            )
    except IntegrityError:  # a concurrent shard recorded one of these names first
        _delete_keys(stored)
        return _upload_reject(upload, "name_taken", "A member name was taken by another upload meanwhile.", [field_error("shard", "name taken", "name_taken")])
    except BaseException:
        _delete_keys(stored)
        raise
    _delete_keys([upload.storage_key])  # the members are the files; the shard is spent
    return locked


def _scratch_root() -> Path:
    root = settings.CONFIG.var_dir / "scratch"
    root.mkdir(parents=True, exist_ok=True)
    return root


@transaction.atomic
def upload_abort(*, upload: UploadSession, actor) -> UploadSession:
    locked = UploadSession.objects.select_for_update().get(pk=upload.pk)
    if locked.state in (UploadState.ABORTED, UploadState.EXPIRED, UploadState.REJECTED):
        return locked
    if locked.state != UploadState.OPEN:
        raise Conflict(f"This upload is {locked.state}.", code=DatasetErrorCode.UPLOAD_CLOSED)
    upload_abort_storage(locked)
    locked.state = UploadState.ABORTED
    locked.save(update_fields=["state", "updated_at"])
    audit_event_record(
        actor=actor, action="upload.abort", obj=locked.version, organization=locked.organization, after={"upload": str(locked.pk)}
    )
    return locked


def uploads_expire_abandoned(*, now=None) -> int:
    """Abort open uploads past their expiry in the store and mark them expired."""
    now = now or timezone.now()
    count = 0
    for upload_id in UploadSession.objects.filter(state=UploadState.OPEN, expires_at__lt=now).values_list("pk", flat=True):
        with transaction.atomic():
            upload = UploadSession.objects.select_for_update(skip_locked=True).filter(pk=upload_id, state=UploadState.OPEN).first()
            if upload is None:
                continue
            upload_abort_storage(upload)
            upload.state = UploadState.EXPIRED
            upload.save(update_fields=["state", "updated_at"])
            count += 1
    return count
