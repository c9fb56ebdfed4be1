"""Helpers for dataset tests: small valid COCO files, PNGs, and uploads through the API."""

from __future__ import annotations

import hashlib
import io
import json
import urllib.request

from datasets.models import DatasetFile, FileOrigin

MB = 1024 * 1024


def png_bytes(w: int = 32, h: int = 24, color=(120, 10, 10)) -> bytes:
    from PIL import Image

    buf = io.BytesIO()
    Image.new("RGB", (w, h), color).save(buf, format="PNG")
    return buf.getvalue()


def coco(n_images: int = 3, w: int = 32, h: int = 24, cats: int = 2) -> dict:
    images = [{"id": i, "file_name": f"img{i}.png", "width": w, "height": h, "license": 1} for i in range(1, n_images + 1)]
    anns = []
    for i in range(1, n_images + 1):
        for k in range(2):
            x = 2 + 4 * k
            anns.append(
                {
                    "id": len(anns) + 1,
                    "image_id": i,
                    "category_id": 1 + (i + k) % cats,
                    "segmentation": [[x, 2, x + 8, 2, x + 8, 12, x, 12]],
                    "area": 80.0,
                    "bbox": [x, 2, 8, 10],
                    "iscrowd": 0,
                }
            )
    return {
        "licenses": [{"id": 1, "name": "CC BY 4.0", "url": "https://creativecommons.org/licenses/by/4.0/"}],
        "images": images,
        "categories": [{"id": c, "name": f"cat{c}"} for c in range(1, cats + 1)],
        "annotations": anns,
    }


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def add_file(version, *, role: str, path: str, data: bytes) -> DatasetFile:
    """A file as a verified upload leaves it (object + row), without the HTTP round trips."""
    from marketplace.core.storage import get_storage

    key = f"versions/{version.pk}/uploads/test/{path}"
    get_storage().put_bytes(key, data)
    return DatasetFile.objects.create(
        version=version,
        role=role,
        path=path,
        size=len(data),
        sha256=sha(data),
        storage_key=key,
        origin=FileOrigin.UPLOAD,
        content_type="application/json" if path.endswith(".json") else "application/octet-stream",
    )


def put_url(url: str, data: bytes, headers: dict | None = None) -> int:
    req = urllib.request.Request(url, data=data, method="PUT", headers=headers or {"Content-Type": "application/octet-stream"})
    with urllib.request.urlopen(req, timeout=30) as resp:
        return resp.status


def json_bytes(obj) -> bytes:
    return json.dumps(obj).encode()
