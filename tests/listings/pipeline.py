"""A version published the way sellers publish: uploads through the upload services, the
real pipeline in a worker (no auditor's reference needed: PIPELINE_AUDIT_REQUIRED=false),
a moderator's approval through the API."""

from __future__ import annotations

import io
import json
import random
import zipfile

from PIL import Image

from datasets.services import dataset_create, version_create, version_submit
from datasets.states import VersionState
from licensing.services import provenance_update
from marketplace.demo import DEMO_PROVENANCE, upload_bytes, version_state, wait_for

WORKER_ENV = {"QUALITY_DEVICE": "cpu", "PIPELINE_AUDIT_REQUIRED": "false", "PIPELINE_MAX_RETRIES": "1", "PIPELINE_RETRY_BACKOFF_MAX": "2"}


def png(seed: int, size: int = 48) -> bytes:
    rng = random.Random(seed)
    buf = io.BytesIO()
    Image.new("RGB", (size, size), (rng.randint(0, 255), rng.randint(0, 255), rng.randint(0, 255))).save(buf, format="PNG")
    return buf.getvalue()


def zipped(files: dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        for name, data in sorted(files.items()):
            zf.writestr(zipfile.ZipInfo(name, date_time=(2024, 1, 1, 0, 0, 0)), data)
    return buf.getvalue()


def square(ann_id: int, owner: int, cat: int, x: float, key: str = "image_id") -> dict:
    poly = [x, 4.0, x + 12, 4.0, x + 12, 16.0, x, 16.0]
    return {"id": ann_id, key: owner, "category_id": cat, "segmentation": [poly], "area": 144.0, "bbox": [x, 4.0, 12.0, 12.0], "iscrowd": 0}


def submit(seller, *, slug: str, files: dict[tuple[str, str], bytes], price: str = "80.00", annotation_license: str = "CC-BY-4.0", annotation_kind: str = "instances", dataset=None):
    """A new version of ``slug`` with ``files`` ({(role, name): bytes}) uploaded and submitted."""
    if dataset is None:
        dataset = dataset_create(owner=seller.org, actor=seller.user, slug=slug, title=slug.replace("-", " ").title(), annotation_license=annotation_license, price=price, annotation_kind=annotation_kind)
    version = version_create(dataset=dataset, actor=seller.user)
    provenance_update(version=version, actor=seller.user, fields=DEMO_PROVENANCE)
    for (role, name), data in files.items():
        upload_bytes(version=version, actor=seller.user, role=role, name=name, data=data)
    version_submit(version=version, actor=seller.user)
    return version


def wait_settled(version, timeout: float = 240) -> str:
    return wait_for(
        lambda: (s := version_state(version.pk)) not in (VersionState.SUBMITTED, VersionState.PROCESSING) and s,
        timeout=timeout,
        what=f"version {version.pk} to leave the pipeline",
    )


def publish(seller, moderator, **kw):
    """Submit, let the pipeline run, approve through the API; returns the published version."""
    version = submit(seller, **kw)
    state = wait_settled(version)
    assert state == VersionState.IN_REVIEW, (state, version.__class__.objects.get(pk=version.pk).validation_report)
    resp = moderator.client.post(f"/api/v1/moderation/versions/{version.pk}/decision/", {"decision": "approve", "reason": "fine"}, format="json")
    assert resp.status_code == 200, resp.content
    version.refresh_from_db()
    return version


def json_bytes(doc: dict) -> bytes:
    return json.dumps(doc).encode()
