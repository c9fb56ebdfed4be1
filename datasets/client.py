"""The seller's command-line client (standard library only, so it runs anywhere).

    python -m datasets.client [--api URL] [--token TOKEN] upload DIR --dataset SLUG [--submit]
    python -m datasets.client [--api URL] [--token TOKEN] status --dataset SLUG [--json]

URL and token also come from ``MARKET_API_URL`` and ``MARKET_TOKEN``. ``upload`` creates
the dataset (titled by its slug) when the seller has none by that slug and a draft
version when none is open, finds the annotation files and images in DIR by their
format, and sends every file in parts, several at once, straight to the object store
(presigned URLs) or to the API (local storage). Killed and re-run, it asks the server
which parts arrived and sends only the rest; files already in the version are skipped.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import sys
import threading
import time
import urllib.error
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

CHUNK = 1024 * 1024
IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff", ".gif")
ARCHIVE_SUFFIXES = (".zip", ".tar", ".tar.gz", ".tgz")


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
    """A one-line progress bar on stderr."""

    def __init__(self, total: int) -> None:
        self.total, self.done, self.lock, self.start = max(total, 1), 0, threading.Lock(), time.monotonic()

    def add(self, n: int, note: str = "") -> None:
        with self.lock:
            self.done += n
            frac = self.done / self.total
            rate = self.done / max(time.monotonic() - self.start, 1e-6) / 1e6
            bar = "#" * int(frac * 30)
            sys.stderr.write(
                f"\r[{bar:<30}] {frac * 100:5.1f}% {self.done / 1e6:8.1f}/{self.total / 1e6:.1f} MB {rate:6.1f} MB/s {note}\n"
                if note
                else f"\r[{bar:<30}] {frac * 100:5.1f}% {self.done / 1e6:8.1f}/{self.total / 1e6:.1f} MB {rate:6.1f} MB/s"
            )
            sys.stderr.flush()


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


def ensure_version(api: Api, slug: str, license_id: str) -> dict:
    try:
        api.call("GET", f"datasets/{slug}/")
    except ApiError as exc:
        if exc.status != 404:
            raise
        api.call("POST", "datasets/", {"slug": slug, "title": slug, "annotation_license": license_id})
    versions = api.call("GET", f"datasets/{slug}/versions/")["results"]
    draft = next((v for v in versions if v["state"] == "draft"), None)
    if draft is None:
        draft = api.call("POST", f"datasets/{slug}/versions/", {})
    return api.call("GET", f"versions/{draft['id']}/")


def upload_file(api: Api, version: dict, path: Path, name: str, role: str, *, part_size: int, workers: int, progress: Progress) -> dict:
    size = path.stat().st_size
    sha, part_shas = file_hashes(path, part_size)
    existing = {f["path"]: f for f in version["manifest"]}
    if name in existing and existing[name]["sha256"] == sha:
        progress.add(size, f"{name}: already in the version")
        return existing[name]
    open_upload = next((u for u in version["uploads"] if u["name"] == name and u["state"] in ("open", "verifying")), None)
    if open_upload:
        upload = api.call("GET", f"uploads/{open_upload['id']}/")
        if upload["sha256"] != sha:  # the local file changed: start over
            api.call("POST", f"uploads/{upload['id']}/abort/")
            upload = None
    else:
        upload = None
    if upload is None:
        upload = api.call(
            "POST",
            f"versions/{version['id']}/uploads/",
            {"role": role, "name": name, "size": size, "sha256": sha, "part_size": part_size, "part_sha256": part_shas},
        )
    if upload["state"] == "open":
        todo = [p for p in upload["parts"] if not p["arrived"]]
        progress.add(sum(p["size"] for p in upload["parts"] if p["arrived"]))

        def send(part: dict) -> None:
            with open(path, "rb") as fh:
                fh.seek((part["number"] - 1) * upload["part_size"])
                data = fh.read(part["size"])
            headers = dict(part.get("headers") or {})
            url = part["url"]
            if not url:  # local storage: through the API, with the part's byte range
                start = (part["number"] - 1) * upload["part_size"]
                headers["Content-Range"] = f"bytes {start}-{start + len(data) - 1}/{size}"
                url = f"/api/v1/uploads/{upload['id']}/parts/{part['number']}/"
            api.put_part(url, data, headers)
            progress.add(len(data), f"{name}: part {part['number']}/{upload['part_count']}")

        with ThreadPoolExecutor(max_workers=workers) as pool:
            list(pool.map(send, todo))
        upload = api.call("POST", f"uploads/{upload['id']}/complete/")
    deadline = time.monotonic() + 3600
    while upload["state"] == "verifying" and time.monotonic() < deadline:
        time.sleep(0.5)
        upload = api.call("GET", f"uploads/{upload['id']}/")
    if upload["state"] != "complete":
        raise SystemExit(f"{name}: upload {upload['state']}: {json.dumps(upload.get('error'))}")
    return upload


def cmd_upload(api: Api, args) -> int:
    root = Path(args.dir)
    files = []
    for path in sorted(p for p in root.rglob("*") if p.is_file()):
        role = role_of(path)
        if role:
            files.append((path, path.relative_to(root).as_posix(), role))
    if not any(r in ("annotations", "video", "panoptic") for _p, _n, r in files):
        print(f"no annotation file found in {root}", file=sys.stderr)
        return 2
    version = ensure_version(api, args.dataset, args.license)
    progress = Progress(sum(p.stat().st_size for p, _n, _r in files))
    for path, name, role in files:
        upload_file(api, version, path, name, role, part_size=args.part_size, workers=args.workers, progress=progress)
    sys.stderr.write("\n")
    if args.submit:
        api.call("POST", f"versions/{version['id']}/submit/")
        print(f"version {version['id']} submitted")
    else:
        print(f"version {version['id']}: {len(files)} files uploaded")
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
    up.add_argument("--workers", type=int, default=4)
    up.add_argument("--part-size", type=int, default=16 * 1024 * 1024)
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
