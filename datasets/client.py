"""The seller's command-line client (the standard library and PyYAML, so it runs anywhere).

    python -m datasets.client [--api URL] [--token TOKEN] upload DIR --dataset SLUG [--submit]
        [--shard-size BYTES] [--small-file-max BYTES] [--part-size BYTES] [--workers N] [--quiet]
    python -m datasets.client [--api URL] [--token TOKEN] status --dataset SLUG [--json]

URL and token also come from ``MARKET_API_URL`` and ``MARKET_TOKEN``. ``upload`` reads the
folder's dataset card (``dataset.yaml``, else YAML front matter in ``README.md``), checks it
locally and then with the server (``POST dataset-cards/check/``) before sending any byte,
creates or updates the dataset and its draft version from it and sets the provenance.
Without a card it creates the dataset titled by its slug. It then finds the annotation
files and images in DIR by their format: small images travel packed in shards (a
deterministic tar of many files, unpacked by the server into one manifest row per file),
everything else one upload per file; each upload in parts, several at once, straight to
the object store (presigned URLs) or to the API (local storage). Killed and re-run, it
sends only what is missing: shards the server recorded are skipped (the resume state in
``DIR/.market-upload-state.json``), and open uploads resume with the parts that did not
arrive. A progress bar (files and bytes) goes to stderr when it is a terminal.
"""

from __future__ import annotations

import argparse
import hashlib
import io
import json
import os
import sys
import tarfile
import threading
import time
import urllib.error
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import yaml

STATE_FILE = ".market-upload-state.json"
CHUNK = 1024 * 1024
IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff", ".gif")
ARCHIVE_SUFFIXES = (".zip", ".tar", ".tar.gz", ".tgz")
IDEMPOTENT = frozenset({"GET", "HEAD", "PUT", "DELETE"})


class ApiError(Exception):
    def __init__(self, status: int, body: dict | str) -> None:
        super().__init__(f"HTTP {status}: {body}")
        self.status, self.body = status, body


class Api:
    def __init__(self, base: str, token: str) -> None:
        self.base = base.rstrip("/") + "/api/v1/"
        self.token = token

    def call(self, method: str, path: str, body: dict | None = None) -> dict:
        data = json.dumps(body).encode() if body is not None else None
        req = urllib.request.Request(
            self.base + path,
            data=data,
            method=method,
            headers={"Authorization": f"Token {self.token}", "Content-Type": "application/json", "Accept": "application/json"},
        )
        for attempt in range(5):
            try:
                with urllib.request.urlopen(req, timeout=60) as resp:
                    raw = resp.read()
                    return json.loads(raw) if raw else {}
            except urllib.error.HTTPError as exc:
                raw = exc.read()
                try:
                    parsed = json.loads(raw)
                except ValueError:
                    parsed = raw.decode(errors="replace")
                if exc.code >= 500 and attempt < 4:
                    time.sleep(2**attempt)
                    continue
                raise ApiError(exc.code, parsed) from None
            except urllib.error.URLError:
                if attempt == 4:
                    raise
                time.sleep(2**attempt)
            except (ConnectionError, TimeoutError):
                # The connection dropped after the request went out: only a request that is
                # safe to repeat is sent again (a POST may have been applied).
                if method not in IDEMPOTENT or attempt == 4:
                    raise
                time.sleep(2**attempt)
        raise RuntimeError("unreachable")

    def put_part(self, url: str, data: bytes, headers: dict) -> None:
        full = url if url.startswith("http") else self.base.split("/api/v1/")[0] + url
        if not url.startswith("http"):
            headers = {**headers, "Authorization": f"Token {self.token}"}
        for attempt in range(5):
            try:
                req = urllib.request.Request(full, data=data, method="PUT", headers=headers)
                with urllib.request.urlopen(req, timeout=300) as resp:
                    resp.read()
                return
            except (urllib.error.URLError, ConnectionError, TimeoutError):
                if attempt == 4:
                    raise
                time.sleep(2**attempt)


class Progress:
    """One line on stderr: files and bytes sent, and the rate. Silent when stderr is not a
    terminal or with --quiet."""

    def __init__(self, files: int, total: int, *, enabled: bool) -> None:
        self.files_total, self.total = files, max(total, 1)
        self.files, self.done, self.lock, self.start, self.enabled = 0, 0.0, threading.Lock(), time.monotonic(), enabled
        self.shown = 0.0

    def add(self, n: float, files: int = 0) -> None:
        with self.lock:
            self.done += n
            self.files += files
            now = time.monotonic()
            if self.enabled and (now - self.shown > 0.1 or self.files == self.files_total):
                self.shown = now
                frac = min(self.done / self.total, 1.0)
                rate = self.done / max(now - self.start, 1e-6) / 1e6
                sys.stderr.write(
                    f"\r[{'#' * int(frac * 30):<30}] {self.files:,}/{self.files_total:,} files "
                    f"{self.done / 1e6:,.1f}/{self.total / 1e6:,.1f} MB {rate:6.1f} MB/s"
                )
                sys.stderr.flush()

    def close(self) -> None:
        if self.enabled:
            sys.stderr.write("\n")


def role_of(path: Path) -> str | None:
    name = path.name.lower()
    if name.endswith(".json"):
        with open(path, "rb") as fh:
            head = fh.read(1 << 16)
        if b'"videos"' in head:
            return "video"
        if b'"segments_info"' in head:
            return "panoptic"
        if "second_pass" in name or "second-pass" in name:
            return "second_pass"
        return "annotations"
    if name.endswith(IMAGE_SUFFIXES) or name.endswith(ARCHIVE_SUFFIXES):
        return "images"
    if name.endswith((".pdf", ".txt", ".md")):
        return "provenance_docs"
    return None


def file_hashes(path: Path, part_size: int) -> tuple[str, list[str]]:
    whole, parts = hashlib.sha256(), []
    with open(path, "rb") as fh:
        while True:
            block = fh.read(part_size)
            if not block:
                break
            whole.update(block)
            parts.append(hashlib.sha256(block).hexdigest())
    return whole.hexdigest(), parts or [hashlib.sha256(b"").hexdigest()]


def ensure_version(api: Api, slug: str, license_id: str, dataset_fields: dict | None = None, exists: bool | None = None) -> dict:
    """The seller's dataset by ``slug`` (created, or updated from the card's fields) and its
    open draft version (created when none is open)."""
    if exists is None:
        try:
            api.call("GET", f"datasets/{slug}/")
            exists = True
        except ApiError as exc:
            if exc.status != 404:
                raise
            exists = False
    if not exists:
        api.call("POST", "datasets/", {"title": slug, "annotation_license": license_id, **(dataset_fields or {}), "slug": slug})
    elif dataset_fields:
        api.call("PATCH", f"datasets/{slug}/", dataset_fields)
    versions = api.call("GET", f"datasets/{slug}/versions/")["results"]
    draft = next((v for v in versions if v["state"] == "draft"), None)
    if draft is None:
        draft = api.call("POST", f"datasets/{slug}/versions/", {})
    return api.call("GET", f"versions/{draft['id']}/")


class Source:
    """The bytes of one upload: a file on disk, or a shard packed in memory."""

    def __init__(self, *, path: Path | None = None, data: bytes | None = None) -> None:
        self.path, self.data = path, data
        self.size = len(data) if data is not None else path.stat().st_size

    def read(self, offset: int, n: int) -> bytes:
        if self.data is not None:
            return self.data[offset : offset + n]
        with open(self.path, "rb") as fh:
            fh.seek(offset)
            return fh.read(n)

    def hashes(self, part_size: int) -> tuple[str, list[str]]:
        if self.data is None:
            return file_hashes(self.path, part_size)
        parts = [hashlib.sha256(self.data[i : i + part_size]).hexdigest() for i in range(0, len(self.data), part_size)]
        return hashlib.sha256(self.data).hexdigest(), parts or [hashlib.sha256(b"").hexdigest()]


def send_upload(
    api: Api,
    version: dict,
    source: Source,
    name: str,
    role: str,
    *,
    part_size: int,
    workers: int,
    on_bytes,
    shard: bool = False,
    upload_id: str | None = None,
    on_start=None,
) -> dict:
    """Start (or resume) one upload, send the parts that have not arrived, and complete it.
    Returns the upload as the server sees it (``verifying`` or already ``complete``)."""
    sha, part_shas = source.hashes(part_size)
    upload = None
    if upload_id:
        upload = api.call("GET", f"uploads/{upload_id}/")
        if upload["sha256"] != sha or upload["state"] in ("rejected", "aborted", "expired"):
            upload = None
    if upload is None:
        open_upload = next((u for u in version["uploads"] if u["name"] == name and u["state"] in ("open", "verifying")), None)
        if open_upload:
            upload = api.call("GET", f"uploads/{open_upload['id']}/")
            if upload["sha256"] != sha:  # the local file changed: start over
                api.call("POST", f"uploads/{upload['id']}/abort/")
                upload = None
    if upload is None:
        body = {"role": role, "name": name, "size": source.size, "sha256": sha, "part_size": part_size, "part_sha256": part_shas}
        if shard:
            body["shard"] = True
        upload = api.call("POST", f"versions/{version['id']}/uploads/", body)
    if on_start is not None:  # noted before any part: a re-run finds this upload whatever happens next
        on_start(upload)
    if upload["state"] == "open":
        on_bytes(sum(p["size"] for p in upload["parts"] if p["arrived"]))

        def send(part: dict) -> None:
            start = (part["number"] - 1) * upload["part_size"]
            data = source.read(start, part["size"])
            headers = dict(part.get("headers") or {})
            url = part["url"]
            if not url:  # local storage: through the API, with the part's byte range
                headers["Content-Range"] = f"bytes {start}-{start + len(data) - 1}/{source.size}"
                url = f"/api/v1/uploads/{upload['id']}/parts/{part['number']}/"
            api.put_part(url, data, headers)
            on_bytes(len(data))

        todo = [p for p in upload["parts"] if not p["arrived"]]
        if workers > 1 and len(todo) > 1:
            with ThreadPoolExecutor(max_workers=workers) as pool:
                list(pool.map(send, todo))
        else:
            for part in todo:
                send(part)
        upload = api.call("POST", f"uploads/{upload['id']}/complete/")
    return upload


def wait_verified(api: Api, upload: dict, name: str) -> dict:
    deadline = time.monotonic() + 3600
    while upload["state"] == "verifying" and time.monotonic() < deadline:
        time.sleep(0.2)
        upload = api.call("GET", f"uploads/{upload['id']}/")
    if upload["state"] != "complete":
        raise UploadRefused(name, upload)
    return upload


class UploadRefused(Exception):
    def __init__(self, name: str, upload: dict) -> None:
        error = upload.get("error") or {}
        located = "; ".join(f"{d.get('location')}: {d.get('message')} [{d.get('code')}]" for d in error.get("details") or [])
        super().__init__(f"{name}: upload {upload['state']}: {error.get('code', '')} {error.get('message', '')} {located}".strip())


def upload_file(api: Api, version: dict, path: Path, name: str, role: str, *, part_size: int, workers: int, progress: Progress) -> dict:
    """One file through the multipart path (annotation files, archives, large media)."""
    source = Source(path=path)
    existing = {f["path"]: f for f in version["manifest"]}
    if name in existing and existing[name]["sha256"] == source.hashes(part_size)[0]:
        progress.add(source.size, files=1)
        return existing[name]
    upload = send_upload(api, version, source, name, role, part_size=part_size, workers=workers, on_bytes=progress.add)
    upload = wait_verified(api, upload, name)
    progress.add(0, files=1)
    return upload


# ---------------------------------------------------------------- shards of small files


def plan_shards(files: list[tuple[Path, str, int]], shard_size: int) -> list[list[tuple[Path, str, int]]]:
    """Consecutive runs of the (name-sorted) small files, each shard at most ``shard_size``
    bytes of tar (one file per shard at least): the same folder always gives the same shards."""
    shards: list[list[tuple[Path, str, int]]] = []
    current: list[tuple[Path, str, int]] = []
    used = 0
    for path, name, size in sorted(files, key=lambda f: f[1]):
        need = 1024 + -(-size // 512) * 512  # a header (and a pax header for long names) + the padded data
        if current and used + need > shard_size - 1024:
            shards.append(current)
            current, used = [], 0
        current.append((path, name, size))
        used += need
    if current:
        shards.append(current)
    return shards


def pack_shard(members: list[tuple[Path, str, int]]) -> bytes:
    """A deterministic tar: members in order, names as they are, no times or owners."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tf:
        for path, name, size in members:
            info = tarfile.TarInfo(name)
            info.size, info.mtime, info.mode, info.uid, info.gid, info.uname, info.gname = size, 0, 0o644, 0, 0, "", ""
            with open(path, "rb") as fh:
                tf.addfile(info, fh)
    return buf.getvalue()


class ResumeState:
    """What earlier runs sent for this folder and draft: each shard (by its sha256) with its
    upload and whether the server recorded it. Written atomically after every change, so a
    run killed at any point leaves a state the next run can trust."""

    def __init__(self, path: Path, *, api: str, version_id: int) -> None:
        self.path, self.lock = path, threading.Lock()
        try:
            data = json.loads(path.read_text())
        except (OSError, ValueError):
            data = {}
        if data.get("api") != api or data.get("version") != version_id:
            data = {"api": api, "version": version_id, "shards": {}}
        self.data = data

    def shard(self, sha: str) -> dict:
        return dict(self.data["shards"].get(sha, {}))

    def set_shard(self, sha: str, **values) -> None:
        with self.lock:
            self.data["shards"][sha] = {**self.data["shards"].get(sha, {}), **values}
            self._write()

    def plan(self) -> list[list[list]]:
        """The shards planned by earlier runs: each a list of [name, size, mtime_ns]."""
        return [list(map(list, shard)) for shard in self.data.get("plan", [])]

    def set_plan(self, plan: list[list[list]]) -> None:
        with self.lock:
            self.data["plan"] = plan
            self._write()

    def _write(self) -> None:
        tmp = self.path.with_name(self.path.name + ".tmp")
        tmp.write_text(json.dumps(self.data, indent=1, sort_keys=True))
        os.replace(tmp, self.path)


def shard_plan(state: ResumeState, small: list[tuple[Path, str, int]], shard_size: int, *, already) -> list[list[tuple[Path, str, int]]]:
    """The shards to send: those an earlier run planned, kept while every member is unchanged
    (same name, size and modification time), so a re-run packs the very same bytes and
    resumes them; files outside them (new, or of a shard that changed) in new shards after,
    but those ``already`` says the version has."""
    by_name = {name: (path, size, path.stat().st_mtime_ns) for path, name, size in small}
    kept: list[list[tuple[Path, str, int]]] = []
    planned: set[str] = set()
    for shard in state.plan():
        if all(name in by_name and [by_name[name][1], by_name[name][2]] == [size, mtime] for name, size, mtime in shard):
            kept.append([(by_name[name][0], name, size) for name, size, _mtime in shard])
            planned.update(name for name, _size, _mtime in shard)
    kept += plan_shards([f for f in small if f[1] not in planned and not already(f)], shard_size)
    state.set_plan([[[name, size, by_name[name][2]] for _p, name, size in shard] for shard in kept])
    return kept


def upload_shards(
    api: Api,
    version: dict,
    small: list[tuple[Path, str, int]],
    *,
    role: str,
    shard_size: int,
    part_size: int,
    workers: int,
    state: ResumeState,
    progress: Progress,
) -> int:
    """Pack the small files into shards and send them, ``workers`` at a time; shards an
    earlier run got recorded are not sent again (nor packed twice), and files the version
    already has with the same sha256 are left out. Returns the shard count."""
    in_version = {f["path"]: f["sha256"] for f in version["manifest"]}

    def recorded(path: Path, name: str) -> bool:
        return name in in_version and file_hashes(path, CHUNK)[0] == in_version[name]

    def already(f: tuple[Path, str, int]) -> bool:
        if recorded(f[0], f[1]):
            progress.add(f[2], files=1)
            return True
        return False

    shards = shard_plan(state, small, shard_size, already=already)
    failures: list[str] = []

    def one(index_members: tuple[int, list[tuple[Path, str, int]]]) -> None:
        index, members = index_members
        payload = sum(size for _p, _n, size in members)
        data = pack_shard(members)
        sha = hashlib.sha256(data).hexdigest()
        known = state.shard(sha)
        if known.get("state") != "complete" and all(recorded(p, n) for p, n, _s in members):
            known = {**known, "state": "complete"}  # recorded by a run killed before it could note so
            state.set_shard(sha, state="complete", members=len(members))
        if known.get("state") == "complete":
            progress.add(payload, files=len(members))
            return
        name = f"_shards/{index:05d}-{sha[:16]}.tar"
        scale = payload / max(len(data), 1)
        try:
            upload = send_upload(
                api,
                version,
                Source(data=data),
                name,
                role,
                part_size=part_size,
                workers=1,
                on_bytes=lambda n: progress.add(n * scale),
                shard=True,
                upload_id=known.get("upload"),
                on_start=lambda up: state.set_shard(sha, upload=up["id"], name=name, state="started"),
            )
            state.set_shard(sha, upload=upload["id"], name=name, state="sent")
            upload = wait_verified(api, upload, name)
        except UploadRefused as exc:
            failures.append(str(exc))
            return
        state.set_shard(sha, upload=upload["id"], name=name, state="complete", members=len(members))
        progress.add(0, files=len(members))

    with ThreadPoolExecutor(max_workers=max(workers, 1)) as pool:
        list(pool.map(one, enumerate(shards)))
    if failures:
        raise SystemExit("\n".join(failures))
    return len(shards)


# ---------------------------------------------------------------- the dataset card

CARD_FILE = "dataset.yaml"
# Hugging Face dataset cards name the license ``license``; the marketplace's field is the
# annotation license.
CARD_ALIASES = {"license": "annotation_license", "pretty_name": "title"}
CARD_LIST_KEYS = ("embodiments", "tasks", "scene_types", "sensors", "splits")
CARD_TEXT_KEYS = ("title", "summary", "description", "annotation_license", "annotation_kind", "currency")


class CardLoader(yaml.SafeLoader):
    """YAML as JSON sees it: dates stay text (ISO dates are what the API takes)."""


CardLoader.yaml_implicit_resolvers = {
    first: [r for r in resolvers if r[0] != "tag:yaml.org,2002:timestamp"] for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}


class CardError(Exception):
    def __init__(self, errors: list[dict]) -> None:
        super().__init__("\n".join(f"  {e['location']}: {e['message']} [{e['code']}]" for e in errors))
        self.errors = errors


def read_card(root: Path) -> tuple[dict | None, Path | None]:
    """The card of the folder: ``dataset.yaml``, else the YAML front matter of ``README.md``
    (between the first two ``---`` lines); (None, None) when there is neither."""
    path = root / CARD_FILE
    if path.is_file():
        text, where = path.read_text(encoding="utf-8"), path
    else:
        readme = root / "README.md"
        if not readme.is_file():
            return None, None
        lines = readme.read_text(encoding="utf-8").splitlines()
        if not lines or lines[0].strip() != "---":
            return None, None
        end = next((i for i in range(1, len(lines)) if lines[i].strip() == "---"), None)
        if end is None:
            raise CardError([{"location": "README.md", "message": "the front matter has no closing '---' line", "code": "invalid_yaml"}])
        text, where = "\n".join(lines[1:end]), readme
    try:
        card = yaml.load(text, Loader=CardLoader)  # noqa: S506 - a safe loader
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        at = f"{where.name}:{mark.line + 1 + (where.name == 'README.md')}:{mark.column + 1}" if mark else where.name
        raise CardError([{"location": at, "message": str(getattr(exc, "problem", exc)), "code": "invalid_yaml"}]) from None
    if not isinstance(card, dict):
        raise CardError([{"location": where.name, "message": "the card is a mapping of keys to values", "code": "invalid"}])
    return card, where


def card_local_errors(card: dict, files: list[tuple[Path, str, str]]) -> tuple[dict, list[dict]]:
    """The card with aliases resolved, and what can be told without the server: value types,
    and split names against the folder's annotation files (a split is an annotation file,
    named by its stem)."""
    errors: list[dict] = []
    out: dict = {}
    for key, value in card.items():
        key = str(key)
        target = CARD_ALIASES.get(key, key)
        if target in out:
            errors.append({"location": key, "message": f"{target} is given twice", "code": "duplicate"})
        out[target] = value
    for key in CARD_TEXT_KEYS:
        if key in out and not isinstance(out[key], str):
            errors.append({"location": key, "message": "text", "code": "invalid"})
    for key in CARD_LIST_KEYS:
        if key in out and not (isinstance(out[key], list) and all(isinstance(x, str) for x in out[key])):
            errors.append({"location": key, "message": "a list of names", "code": "invalid"})
    if "price" in out:
        price = out["price"]
        if isinstance(price, bool) or not isinstance(price, (int, float, str)):
            errors.append({"location": "price", "message": "a number", "code": "invalid"})
        else:
            out["price"] = str(price)
    if isinstance(out.get("consent_records"), list):
        documents = {name for _p, name, role in files if role == "provenance_docs"}
        for i, rec in enumerate(out["consent_records"]):
            document = rec.get("document") if isinstance(rec, dict) else None
            if isinstance(document, str) and document not in documents:
                errors.append(
                    {"location": f"consent_records[{i}].document", "message": f"no provenance document {document} (PDF, text or Markdown) in the folder", "code": "unknown_document"}
                )
    if isinstance(out.get("splits"), list):
        stems = {name.rsplit("/", 1)[-1][: -len(".json")] for _p, name, role in files if role in ANNOTATION_ROLES and name.lower().endswith(".json")}
        for i, split in enumerate(out["splits"]):
            if isinstance(split, str) and split not in stems:
                errors.append({"location": f"splits[{i}]", "message": f"no annotation file {split}.json in the folder", "code": "unknown_split"})
    return out, errors


# ---------------------------------------------------------------- the command


ANNOTATION_ROLES = ("annotations", "video", "panoptic", "second_pass")


def collect(root: Path, card_file: Path | None) -> list[tuple[Path, str, str]]:
    """The files to send, by role; hidden files and folders (the resume state among them)
    and the card itself are not part of the dataset."""
    files = []
    for path in sorted(p for p in root.rglob("*") if p.is_file()):
        rel = path.relative_to(root)
        if any(part.startswith(".") for part in rel.parts) or path == card_file:
            continue
        role = role_of(path)
        if role:
            files.append((path, rel.as_posix(), role))
    return files


def cmd_upload(api: Api, args) -> int:
    root = Path(args.dir)
    try:
        card, card_file = read_card(root)
    except CardError as exc:
        print(f"the dataset card is not valid:\n{exc}", file=sys.stderr)
        return 2
    files = collect(root, card_file)
    if not any(r in ("annotations", "video", "panoptic") for _p, _n, r in files):
        print(f"no annotation file found in {root}", file=sys.stderr)
        return 2
    dataset_fields, provenance, exists = None, None, None
    if card is not None:
        card, errors = card_local_errors(card, files)
        if errors:
            print(f"{card_file.name}: the dataset card is not valid:\n{CardError(errors)}", file=sys.stderr)
            return 2
        try:  # the whole card, checked by the server before any byte is sent
            facts = api.call("POST", "dataset-cards/check/", {"slug": args.dataset, "card": card, "submit": args.submit})
        except ApiError as exc:
            if exc.status == 400 and isinstance(exc.body, dict) and exc.body.get("details"):
                print(f"{card_file.name}: the server refused the dataset card:\n{CardError(exc.body['details'])}", file=sys.stderr)
                return 2
            raise
        exists = facts["exists"]
        dataset_fields = {k: v for k, v in card.items() if k not in ("splits", "provenance", "consent_records")}
        provenance = {"fields": card.get("provenance") or {}}
        if card.get("consent_records") is not None:
            provenance["consent_records"] = card["consent_records"]
    version = ensure_version(api, args.dataset, args.license, dataset_fields, exists)
    small = [(p, n, p.stat().st_size) for p, n, r in files if r == "images" and not n.lower().endswith(ARCHIVE_SUFFIXES)]
    small = [f for f in small if f[2] <= args.small_file_max] if args.shard_size > 0 else []
    sharded = {n for _p, n, _s in small}
    # Provenance documents first: the card's consent records name them by path, which the
    # provenance route resolves among the version's uploaded documents.
    single = sorted((f for f in files if f[1] not in sharded), key=lambda f: f[2] != "provenance_docs")
    documents = sum(1 for f in single if f[2] == "provenance_docs")
    progress = Progress(len(files), sum(p.stat().st_size for p, _n, _r in files), enabled=sys.stderr.isatty() and not args.quiet)
    shards = 0
    try:
        for path, name, role in single[:documents]:
            upload_file(api, version, path, name, role, part_size=args.part_size, workers=args.workers, progress=progress)
        if provenance is not None:
            api.call("PUT", f"versions/{version['id']}/provenance/", provenance)
        for path, name, role in single[documents:]:
            upload_file(api, version, path, name, role, part_size=args.part_size, workers=args.workers, progress=progress)
        if small:
            state = ResumeState(Path(args.state) if args.state else root / STATE_FILE, api=api.base, version_id=version["id"])
            shards = upload_shards(
                api, version, small, role="images", shard_size=args.shard_size, part_size=args.part_size, workers=args.workers, state=state, progress=progress
            )
    except UploadRefused as exc:
        progress.close()
        print(str(exc), file=sys.stderr)
        return 1
    progress.close()
    summary = f"{len(files)} files ({len(small)} in {shards} shards)"
    if args.submit:
        api.call("POST", f"versions/{version['id']}/submit/")
        print(f"version {version['id']} submitted: {summary}")
    else:
        print(f"version {version['id']}: {summary} uploaded")
    return 0


def cmd_status(api: Api, args) -> int:
    versions = api.call("GET", f"datasets/{args.dataset}/versions/")["results"]
    out = []
    for v in versions:
        try:
            jobs = api.call("GET", f"versions/{v['id']}/jobs/")
            jobs = jobs.get("results", jobs) if isinstance(jobs, dict) else jobs
        except ApiError:
            jobs = []
        out.append({"id": v["id"], "number": v["number"], "state": v["state"], "jobs": jobs})
    if args.json:
        print(json.dumps(out, indent=2))
    else:
        for v in out:
            print(f"v{v['number']} (id {v['id']}): {v['state']}")
            for j in v["jobs"] if isinstance(v["jobs"], list) else []:
                print(f"    {j.get('step', '?'):<16} {j.get('state', '?'):<12} {j.get('progress', '')}")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m datasets.client")
    parser.add_argument("--api", default=os.environ.get("MARKET_API_URL", "http://127.0.0.1:8000"))
    parser.add_argument("--token", default=os.environ.get("MARKET_TOKEN"))
    sub = parser.add_subparsers(dest="command", required=True)
    up = sub.add_parser("upload")
    up.add_argument("dir")
    up.add_argument("--dataset", required=True)
    up.add_argument("--submit", action="store_true")
    up.add_argument("--license", default="LicenseRef-proprietary", help="annotation license of a dataset created here")
    up.add_argument("--workers", type=int, default=4, help="uploads (shards) or parts in flight at once")
    up.add_argument("--part-size", type=int, default=16 * 1024 * 1024)
    up.add_argument("--shard-size", type=int, default=64 * 1024 * 1024, help="bytes per shard of small files (0: one upload per file)")
    up.add_argument("--small-file-max", type=int, default=8 * 1024 * 1024, help="images up to this size travel in shards")
    up.add_argument("--state", help=f"the resume state file (default: DIR/{STATE_FILE})")
    up.add_argument("--quiet", action="store_true", help="no progress bar")
    st = sub.add_parser("status")
    st.add_argument("--dataset", required=True)
    st.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    if not args.token:
        parser.error("a token is needed: --token or MARKET_TOKEN")
    api = Api(args.api, args.token)
    try:
        return cmd_upload(api, args) if args.command == "upload" else cmd_status(api, args)
    except ApiError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
