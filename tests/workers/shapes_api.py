"""The people of an end-to-end test, each over HTTP against a live server with their token:
a seller who creates a dataset, uploads files in parts and submits; an auditor who reads the
drawn sample and posts a reference; a moderator who decides; a buyer who reads the listing."""

from __future__ import annotations

import hashlib
import json
import time
import urllib.error
import urllib.request
from pathlib import Path

from datasets.client import Api, Progress, upload_file
from marketplace.demo import DEMO_PROVENANCE


class Person:
    def __init__(self, base: str, actor) -> None:
        self.base, self.token, self.actor = base.rstrip("/"), actor.token, actor

    def call(self, method: str, path: str, body=None, *, raw: bytes | None = None, content_type: str = "application/json") -> tuple[int, dict]:
        data = raw if raw is not None else (json.dumps(body).encode() if body is not None else None)
        req = urllib.request.Request(
            f"{self.base}/api/v1/{path}", data=data, method=method, headers={"Authorization": f"Token {self.token}", "Content-Type": content_type}
        )
        try:
            with urllib.request.urlopen(req, timeout=120) as resp:
                payload = resp.read()
                return resp.status, (json.loads(payload) if payload else {})
        except urllib.error.HTTPError as exc:
            payload = exc.read()
            return exc.code, (json.loads(payload) if payload else {})

    def ok(self, method: str, path: str, body=None, **kw) -> dict:
        status, payload = self.call(method, path, body, **kw)
        assert status < 300, (method, path, status, payload)
        return payload


def seller_submit(seller: Person, *, slug: str, annotation_kind: str, files: dict[tuple[str, str], bytes], tmp: Path, price: str = "90.00") -> int:
    """Create the dataset and a version, declare provenance, upload every file in parts
    (the seller CLI's upload), submit; returns the version id."""
    seller.ok("POST", "datasets/", {"slug": slug, "title": slug.replace("-", " ").title(), "annotation_license": "CC-BY-4.0", "annotation_kind": annotation_kind, "price": price})
    version = seller.ok("POST", f"datasets/{slug}/versions/", {})
    seller.ok("PUT", f"versions/{version['id']}/provenance/", {"fields": DEMO_PROVENANCE})
    api = Api(seller.base, seller.token)
    for (role, name), data in files.items():
        path = tmp / slug / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
        current = seller.ok("GET", f"versions/{version['id']}/")
        upload_file(api, current, path, name, role, part_size=5 * 1024 * 1024, workers=1, progress=Progress(len(data)))
    seller.ok("POST", f"versions/{version['id']}/submit/", {})
    return version["id"]


def wait_state(person: Person, version_id: int, *, leave: tuple[str, ...], timeout: float = 300) -> dict:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        body = person.ok("GET", f"versions/{version_id}/")
        if body["state"] not in leave:
            return body
        time.sleep(1)
    raise TimeoutError(f"version {version_id} stayed in {leave}")


def wait_sample(auditor: Person, version_id: int, timeout: float = 240) -> dict:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        status, body = auditor.call("GET", f"versions/{version_id}/audit/sample/")
        if status == 200 and body["image_ids"]:
            return body
        time.sleep(1)
    raise TimeoutError(f"no audit sample for version {version_id}")


def jobs(person: Person, version_id: int) -> dict[str, dict]:
    return {j["step"]: j for j in person.ok("GET", f"versions/{version_id}/jobs/")["jobs"]}


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()
