"""Safe extraction of zip and tar archives into a scratch directory.

Refused (each with its own code and the member's name as location): absolute paths and
paths that escape the directory (``..``, drive letters, backslashes), symlinks and
hardlinks, device files and FIFOs, more than ``archive_max_files`` members, a member or
a total bigger than the caps, a compression ratio above ``archive_max_ratio`` (per member
and overall: zip bombs), and archives inside the archive (nested bombs are never
expanded). Sizes are enforced on the bytes actually written, not on the headers' claims.
Members are streamed to disk; nothing is written outside ``dest``.
"""

from __future__ import annotations

import os
import stat
import tarfile
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import BinaryIO

from datasets.limits import Limits, limits

CHUNK = 1024 * 1024
ARCHIVE_SUFFIXES = (".zip", ".tar", ".tar.gz", ".tgz", ".tar.bz2", ".tbz2", ".tar.xz", ".txz")
_NESTED_MAGIC = (b"PK\x03\x04", b"\x1f\x8b", b"BZh", b"\xfd7zXZ", b"7z\xbc\xaf", b"Rar!")


class ArchiveError(Exception):
    def __init__(self, code: str, location: str, message: str) -> None:
        super().__init__(f"{code} at {location}: {message}")
        self.code, self.location, self.message = code, location, message

    def to_dict(self) -> dict:
        return {"code": self.code, "location": self.location, "message": self.message}


@dataclass(frozen=True, kw_only=True)
class Extracted:
    path: str  # relative POSIX path inside the archive
    local: Path
    size: int


def is_archive(name: str) -> bool:
    return name.lower().endswith(ARCHIVE_SUFFIXES)


def _safe_name(name: str, where: str) -> str:
    if name.startswith(("/", "\\")) or (len(name) > 1 and name[1] == ":"):
        raise ArchiveError("absolute_path", where, "absolute paths are not allowed in archives")
    if "\\" in name or "\x00" in name:
        raise ArchiveError("invalid_path", where, "backslashes and NUL are not allowed in archive paths")
    parts = [p for p in PurePosixPath(name).parts if p not in ("", ".")]
    if any(p == ".." for p in parts):
        raise ArchiveError("path_escape", where, "the path leaves the archive's directory ('..')")
    if not parts:
        raise ArchiveError("invalid_path", where, "empty path")
    return "/".join(parts)


def _target(dest: Path, rel: str, where: str) -> Path:
    target = (dest / rel).resolve()
    if not target.is_relative_to(dest):
        raise ArchiveError("path_escape", where, "the path resolves outside the extraction directory")
    return target


class DiskBudget:
    """The bytes one version's ingest may write to the worker's disk, across all its
    archives and files (``Limits.ingest_disk_max``); ``take`` before writing them."""

    def __init__(self, limit: int) -> None:
        self.limit, self.used = limit, 0

    def take(self, where: str, n: int) -> None:
        self.used += n
        if self.used > self.limit:
            raise ArchiveError(
                "version_disk_budget", where, f"the version's files and archives together take more than {self.limit} bytes on disk"
            )


class _Budget:
    def __init__(self, lim: Limits, archive_size: int, disk: DiskBudget | None = None) -> None:
        self.lim, self.archive_size, self.total, self.files = lim, max(archive_size, 1), 0, 0
        self.disk = disk

    def member(self, where: str, declared: int, compressed: int | None) -> None:
        self.files += 1
        if self.files > self.lim.archive_max_files:
            raise ArchiveError("too_many_files", where, f"more than {self.lim.archive_max_files} files in the archive")
        if declared > self.lim.archive_max_member:
            raise ArchiveError("file_too_large", where, f"a member of {declared} bytes exceeds {self.lim.archive_max_member}")
        if compressed is not None and declared > 1024 * 1024 and declared / max(compressed, 1) > self.lim.archive_max_ratio:
            raise ArchiveError(
                "compression_ratio",
                where,
                f"compression ratio {declared / max(compressed, 1):.0f} exceeds {self.lim.archive_max_ratio:g} (zip bomb)",
            )

    def written(self, where: str, n: int) -> None:
        if self.disk is not None:
            self.disk.take(where, n)
        self.total += n
        if self.total > self.lim.archive_max_total:
            raise ArchiveError("archive_too_large", where, f"the archive expands to more than {self.lim.archive_max_total} bytes")
        if self.total > 16 * 1024 * 1024 and self.total / self.archive_size > self.lim.archive_max_ratio:
            raise ArchiveError("compression_ratio", where, f"the archive expands more than {self.lim.archive_max_ratio:g} times (zip bomb)")


def _chunks(src, where: str, declared: int, budget: _Budget) -> Iterator[bytes]:
    """A member's bytes, checked as they are read: no archive inside, no more than its header
    says, within the archive's budget."""
    n = 0
    first = True
    while True:
        chunk = src.read(CHUNK)
        if not chunk:
            break
        if first:
            first = False
            if chunk.startswith(_NESTED_MAGIC) or (len(chunk) > 262 and chunk[257:262] == b"ustar"):
                raise ArchiveError("nested_archive", where, "archives inside archives are not expanded; upload them separately")
        n += len(chunk)
        if n > declared:
            raise ArchiveError("size_mismatch", where, "the member is larger than its header says")
        budget.written(where, len(chunk))
        yield chunk


def _copy(src, target: Path, where: str, declared: int, budget: _Budget) -> int:
    target.parent.mkdir(parents=True, exist_ok=True)
    n = 0
    # O_EXCL + O_NOFOLLOW: never write through a pre-existing file or link
    fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0), 0o600)
    with os.fdopen(fd, "wb") as out:
        for chunk in _chunks(src, where, declared, budget):
            n += len(chunk)
            out.write(chunk)
    return n


def safe_extract(archive: str | os.PathLike, dest: str | os.PathLike, *, lim: Limits | None = None, disk: DiskBudget | None = None) -> list[Extracted]:
    """Extract ``archive`` into ``dest``; ``disk`` is the version's budget the written bytes
    count against (shared by all its archives)."""
    lim = lim or limits()
    archive, dest = Path(archive), Path(dest).resolve()
    dest.mkdir(parents=True, exist_ok=True)
    budget = _Budget(lim, archive.stat().st_size, disk)
    if zipfile.is_zipfile(archive):
        return _extract_zip(archive, dest, budget)
    try:
        tf = tarfile.open(archive, "r:*")  # noqa: SIM115
    except tarfile.TarError as exc:
        raise ArchiveError("invalid_archive", archive.name, f"not a readable zip or tar archive: {exc}") from None
    with tf:
        return _extract_tar(tf, dest, budget)


def _extract_zip(archive: Path, dest: Path, budget: _Budget) -> list[Extracted]:
    out: list[Extracted] = []
    seen: set[str] = set()
    with zipfile.ZipFile(archive) as zf:
        infos = zf.infolist()
        if len(infos) > budget.lim.archive_max_files:
            raise ArchiveError("too_many_files", archive.name, f"{len(infos)} members; at most {budget.lim.archive_max_files}")
        for info in infos:
            where = info.filename
            mode = info.external_attr >> 16
            if stat.S_ISLNK(mode):
                raise ArchiveError("symlink", where, "symbolic links are not allowed in archives")
            if stat.S_IFMT(mode) not in (0, stat.S_IFREG, stat.S_IFDIR):  # 0: no type recorded (plain file)
                raise ArchiveError("special_file", where, "device files, FIFOs and sockets are not allowed in archives")
            rel = _safe_name(info.filename, where)
            if info.is_dir():
                continue
            if rel in seen:
                raise ArchiveError("duplicate_path", where, "the archive holds this path twice")
            seen.add(rel)
            budget.member(where, info.file_size, info.compress_size)
            target = _target(dest, rel, where)
            with zf.open(info) as src:
                size = _copy(src, target, where, info.file_size, budget)
            out.append(Extracted(path=rel, local=target, size=size))
    return out


def _tar_members(tf: tarfile.TarFile, budget: _Budget) -> Iterator[tuple[str, tarfile.TarInfo]]:
    """The regular files of a tar in order, each with its safe relative path, after the
    member rules (no links, no special files, no escaping or duplicate paths, bounded)."""
    seen: set[str] = set()
    for member in tf:  # streamed: the member list is never held whole
        where = member.name
        if member.issym():
            raise ArchiveError("symlink", where, "symbolic links are not allowed in archives")
        if member.islnk():
            raise ArchiveError("hardlink", where, "hard links are not allowed in archives")
        if member.isdev() or member.isfifo() or not (member.isfile() or member.isdir()):
            raise ArchiveError("special_file", where, "device files, FIFOs and sockets are not allowed in archives")
        rel = _safe_name(member.name, where)
        if member.isdir():
            continue
        if rel in seen:
            raise ArchiveError("duplicate_path", where, "the archive holds this path twice")
        seen.add(rel)
        budget.member(where, member.size, None)
        yield rel, member
        tf.members = []  # keep memory flat on archives with very many members


def _extract_tar(tf: tarfile.TarFile, dest: Path, budget: _Budget) -> list[Extracted]:
    out: list[Extracted] = []
    for rel, member in _tar_members(tf, budget):
        target = _target(dest, rel, member.name)
        size = _copy(tf.extractfile(member), target, member.name, member.size, budget)
        out.append(Extracted(path=rel, local=target, size=size))
    return out


def tar_stream_members(stream: BinaryIO, *, size: int, lim: Limits | None = None, name: str = "archive") -> Iterator[tuple[str, int, Iterator[bytes]]]:
    """The members of an uncompressed tar read once from ``stream`` (never written to disk
    here), under the same rules as :func:`safe_extract`: for each regular file, its safe
    relative path, its size and its checked bytes, to be consumed before the next member.
    A stream that is not a whole tar raises ``invalid_archive`` located at ``name`` (reading
    a cut member's bytes raises tarfile's own error)."""
    budget = _Budget(lim or limits(), size)
    try:
        with tarfile.open(fileobj=stream, mode="r|") as tf:
            for rel, member in _tar_members(tf, budget):
                yield rel, member.size, _chunks(tf.extractfile(member), member.name, member.size, budget)
    except (tarfile.TarError, EOFError) as exc:
        raise ArchiveError("invalid_archive", name, f"not a readable tar archive: {exc}") from None
