"""Small, seeded COCO data stored as a real version: DatasetFile rows + objects in the test S3."""

from __future__ import annotations

import hashlib
import io
import json
import random

import numpy as np
from PIL import Image

from datasets.models import AuditSample, DatasetFile, DatasetVersion
from marketplace.core.storage import get_storage

SIZE = 64


def square(x: int, y: int, s: int) -> list[list[float]]:
    return [[x, y, x + s, y, x + s, y + s, x, y + s]]


def make_coco(*, n_images: int = 20, seed: int = 7, jitter: int = 0, val_folder: bool = False) -> dict:
    """Two categories, 1-2 squares per image; ``jitter`` shifts every square (a second annotator)."""
    rng = random.Random(seed)
    images, annotations = [], []
    ann_id = 1
    for i in range(1, n_images + 1):
        folder = "val" if val_folder and i % 4 == 0 else "train"
        images.append({"id": i, "file_name": f"{folder}/img{i:03d}.png", "width": SIZE, "height": SIZE})
        for k in range(1 + (i % 2)):
            x, y, s = 4 + 28 * k, 6 + rng.randint(0, 8), 20
            dx = jitter if (i + k) % 2 == 0 else 0
            seg = square(x + dx, y, s)
            annotations.append({"id": ann_id, "image_id": i, "category_id": 1 + k, "segmentation": seg, "area": float(s * s), "bbox": [x + dx, y, s, s], "iscrowd": 0})
            ann_id += 1
    categories = [{"id": 1, "name": "mug"}, {"id": 2, "name": "gripper"}]
    return {"images": images, "annotations": annotations, "categories": categories}


def put_file(*, version: DatasetVersion, role: str, path: str, data: dict, origin: str = "upload") -> DatasetFile:
    raw = json.dumps(data).encode()
    key = f"test/versions/{version.pk}/{role}/{hashlib.sha256(raw).hexdigest()[:12]}/{path}"
    get_storage().put_bytes(key, raw, content_type="application/json")
    return DatasetFile.objects.create(
        version=version, role=role, path=path, size=len(raw), sha256=hashlib.sha256(raw).hexdigest(),
        content_type="application/json", storage_key=key, origin=origin,
    )


def image_png(image_id: int, *, width: int = SIZE, height: int = SIZE) -> tuple[bytes, np.ndarray]:
    """A seeded noise image (any repaint of a pixel shows) as PNG bytes and its pixels."""
    pixels = np.random.default_rng(image_id).integers(0, 256, size=(height, width, 3), dtype=np.uint8)
    buf = io.BytesIO()
    Image.fromarray(pixels).save(buf, format="PNG")
    return buf.getvalue(), pixels


def scene_png(image_id: int, coco: dict) -> tuple[bytes, np.ndarray]:
    """A picture of the objects ``coco`` annotates on image ``image_id``: a bench-grey
    gradient with each object's polygon filled in its category's colour (for screenshots)."""
    from PIL import ImageDraw

    img_row = next(i for i in coco["images"] if i["id"] == image_id)
    w, h = int(img_row["width"]), int(img_row["height"])
    ramp = np.linspace(150, 205, w, dtype=np.float32)[None, :, None] + np.linspace(0, 25, h, dtype=np.float32)[:, None, None]
    canvas = Image.fromarray(np.repeat(ramp, 3, axis=2).clip(0, 255).astype(np.uint8))
    draw = ImageDraw.Draw(canvas)
    colours = {1: (196, 64, 52), 2: (60, 140, 70)}
    for ann in coco["annotations"]:
        if ann["image_id"] == image_id:
            for poly in ann["segmentation"]:
                draw.polygon(list(zip(poly[0::2], poly[1::2], strict=True)), fill=colours.get(ann["category_id"], (90, 90, 160)))
    buf = io.BytesIO()
    canvas.save(buf, format="PNG")
    return buf.getvalue(), np.asarray(canvas)


def put_images(*, version: DatasetVersion, coco: dict, scene: bool = False) -> dict[int, np.ndarray]:
    """An image file for each image of ``coco`` at its ``file_name`` (noise, or with
    ``scene`` a picture of its objects); returns each image's pixels."""
    storage, out = get_storage(), {}
    for img in coco["images"]:
        if scene:
            raw, pixels = scene_png(int(img["id"]), coco)
        else:
            raw, pixels = image_png(int(img["id"]), width=int(img["width"]), height=int(img["height"]))
        key = f"test/versions/{version.pk}/images/{hashlib.sha256(raw).hexdigest()[:12]}/{img['file_name']}"
        storage.put_bytes(key, raw, content_type="image/png")
        DatasetFile.objects.create(
            version=version, role="images", path=img["file_name"], size=len(raw), sha256=hashlib.sha256(raw).hexdigest(), content_type="image/png", storage_key=key
        )
        out[int(img["id"])] = pixels
    return out


def seed_version(version: DatasetVersion, *, reference: bool = True, second_pass: bool = False, val_folder: bool = False, images: bool | str = False) -> dict:
    """Annotations (+ auditor reference on a drawn sample, + a second pass, + the image
    files: noise, or with ``images="scene"`` pictures of the reference's objects) for ``version``."""
    seller = make_coco(val_folder=val_folder)
    put_file(version=version, role="annotations", path="annotations.json", data=seller)
    sample = [2, 3, 5, 8, 13, 17]
    AuditSample.objects.create(version=version, seed=version.pk, size=len(sample), image_ids=sample)
    out = {"annotations": seller, "sample": sample}
    if images:
        out["pixels"] = put_images(version=version, coco=make_coco(jitter=2) if images == "scene" else seller, scene=images == "scene")
    if reference:
        ref = make_coco(jitter=2)
        ref["images"] = [img for img in ref["images"] if img["id"] in sample]
        ref["annotations"] = [a for a in ref["annotations"] if a["image_id"] in sample]
        put_file(version=version, role="reference", path="reference.json", data=ref, origin="audit")
        out["reference"] = ref
    if second_pass:
        put_file(version=version, role="second_pass", path="second_pass.json", data=make_coco(jitter=1))
    return out


def set_state(version: DatasetVersion, state: str) -> DatasetVersion:
    # Test setup only: the state machine itself is tested in tests/datasets.
    DatasetVersion.objects.filter(pk=version.pk).update(state=state)
    version.refresh_from_db()
    return version


def make_video_coco(*, n_videos: int = 2, n_frames: int = 6, step: int = 1, seed: int = 11) -> dict:
    """COCO with tracks: ``n_videos`` videos of ``n_frames`` frames (``video_id``,
    ``frame_id``), two tracks each (``track_id``): 20-pixel squares that move ``step``
    pixels a frame, so consecutive masks of a track overlap with IoU (20 - step) / (20 + step)."""
    rng = random.Random(seed)
    images, annotations = [], []
    for v in range(1, n_videos + 1):
        starts = [(2 + rng.randint(0, 3), 4), (2 + rng.randint(0, 3), 34)]
        for f in range(n_frames):
            image_id = v * 1000 + f
            images.append({"id": image_id, "file_name": f"video{v}/{f:05d}.png", "width": SIZE * 2, "height": SIZE, "video_id": v, "frame_id": f})
            for k, (x0, y0) in enumerate(starts):
                x = x0 + step * f
                annotations.append(
                    {"id": len(annotations) + 1, "image_id": image_id, "category_id": 1 + k, "track_id": k + 1, "segmentation": square(x, y0, 20), "area": 400.0, "bbox": [x, y0, 20, 20], "iscrowd": 0}
                )
    categories = [{"id": 1, "name": "mug"}, {"id": 2, "name": "gripper"}]
    return {"images": images, "annotations": annotations, "categories": categories}
