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


PART = 5 * 1024 * 1024


def upload(seller: Person, version_id: int, *, role: str, name: str, data: bytes, expect: str = "complete") -> dict:
    """One file through the multipart upload API: start, each part (to the presigned store
    URL, or through the API with its byte range on local storage), complete, then wait for
    the re-hashing verification."""
    part_shas = [sha(data[i : i + PART]) for i in range(0, max(len(data), 1), PART)]
    started = seller.ok("POST", f"versions/{version_id}/uploads/", {"role": role, "name": name, "size": len(data), "sha256": sha(data), "part_size": PART, "part_sha256": part_shas})
    for part in started["parts"]:
        chunk = data[(part["number"] - 1) * PART : (part["number"] - 1) * PART + part["size"]]
        headers = dict(part.get("headers") or {})
        if part["url"]:
            req = urllib.request.Request(part["url"], data=chunk, method="PUT", headers=headers)
        else:
            start = (part["number"] - 1) * PART
            headers |= {"Content-Range": f"bytes {start}-{start + len(chunk) - 1}/{len(data)}", "Authorization": f"Token {seller.token}"}
            req = urllib.request.Request(f"{seller.base}/api/v1/uploads/{started['id']}/parts/{part['number']}/", data=chunk, method="PUT", headers=headers)
        with urllib.request.urlopen(req, timeout=120) as resp:
            assert resp.status < 300
    body = seller.ok("POST", f"uploads/{started['id']}/complete/")
    deadline = time.monotonic() + 120
    while body["state"] == "verifying" and time.monotonic() < deadline:
        time.sleep(0.3)
        body = seller.ok("GET", f"uploads/{started['id']}/")
    assert body["state"] == expect, body
    return body


def seller_submit(seller: Person, *, slug: str, annotation_kind: str, files: dict[tuple[str, str], bytes], tmp: Path | None = None, price: str = "90.00") -> int:
    """Create the dataset and a version, declare provenance, upload every file in parts,
    submit; returns the version id."""
    seller.ok("POST", "datasets/", {"slug": slug, "title": slug.replace("-", " ").title(), "annotation_license": "CC-BY-4.0", "annotation_kind": annotation_kind, "price": price})
    version = seller.ok("POST", f"datasets/{slug}/versions/", {})
    seller.ok("PUT", f"versions/{version['id']}/provenance/", {"fields": DEMO_PROVENANCE})
    for (role, name), data in files.items():
        upload(seller, version["id"], role=role, name=name, data=data)
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
