"""Generated panoptic data for the demo and the tests: scenes of parts on a floor under a
wall, the truth (what the auditor draws for the sample) and the seller's version of it
(outlines off by a pixel or two, and, where asked, two bolts painted as one segment)."""

from __future__ import annotations

import io
import json
import random
import zipfile

import numpy as np
from PIL import Image

PANOPTIC_CATEGORIES = [
    {"id": 1, "name": "bolt", "supercategory": "part", "isthing": 1},
    {"id": 2, "name": "gripper", "supercategory": "tool", "isthing": 1},
    {"id": 3, "name": "floor", "supercategory": "scene", "isthing": 0},
    {"id": 4, "name": "wall", "supercategory": "scene", "isthing": 0},
]
HEIGHT, WIDTH = 40, 56
WALL, FLOOR = 100, 101  # segment ids of the stuff


def _png(ids: np.ndarray) -> bytes:
    rgb = np.stack([ids % 256, (ids // 256) % 256, ids // 65536], axis=-1).astype(np.uint8)
    buf = io.BytesIO()
    Image.fromarray(rgb).save(buf, format="PNG")
    return buf.getvalue()


def _photo(ids: np.ndarray, rng: random.Random) -> bytes:
    palette = {WALL: (180, 180, 190), FLOOR: (90, 80, 70)}
    rgb = np.zeros((*ids.shape, 3), np.uint8)
    for seg in np.unique(ids):
        rgb[ids == seg] = palette.get(int(seg), (rng.randint(0, 255), rng.randint(0, 255), rng.randint(0, 255)))
    buf = io.BytesIO()
    Image.fromarray(rgb).save(buf, format="PNG")
    return buf.getvalue()


def _segments(ids: np.ndarray, cats: dict[int, int]) -> list[dict]:
    out = []
    for seg in sorted(int(v) for v in np.unique(ids)):
        ys, xs = np.nonzero(ids == seg)
        bbox = [int(xs.min()), int(ys.min()), int(xs.max() - xs.min() + 1), int(ys.max() - ys.min() + 1)]
        out.append({"id": seg, "category_id": cats[seg], "iscrowd": 0, "area": int(ys.size), "bbox": bbox})
    return out


def _paint(rects: list[tuple[int, int, int, int, int, int]]) -> tuple[np.ndarray, dict[int, int]]:
    ids = np.full((HEIGHT, WIDTH), FLOOR, np.int64)
    ids[:10] = WALL
    cats = {WALL: 4, FLOOR: 3}
    for seg, cat, x, y, w, h in rects:
        ids[max(0, y) : max(0, y + h), max(0, x) : max(0, x + w)] = seg
        cats[seg] = cat
    present = {int(v) for v in np.unique(ids)}
    return ids, {k: v for k, v in cats.items() if k in present}


def panoptic_dataset(*, images: int, seed: int, jitter: int = 1, merged_every: int = 0) -> dict:
    """``{"truth": (doc, pngs), "seller": (doc, pngs), "photos": pngs}``: COCO panoptic
    documents with their PNGs ({name: bytes}). ``merged_every`` > 0: every such image's
    seller version paints its two bolts with one segment id."""
    rng = random.Random(seed)
    truth_anns, seller_anns, image_rows = [], [], []
    truth_pngs, seller_pngs, photos = {}, {}, {}
    for image_id in range(1, images + 1):
        merged = merged_every > 0 and image_id % merged_every == 0
        rects = []
        # two bolts far apart (left and right halves), one gripper in the middle
        for k, (cat, x0) in enumerate(((1, 2), (1, 38), (2, 20))):
            w, h = rng.randint(8, 12), rng.randint(8, 12)
            rects.append((k + 1, cat, x0 + rng.randint(0, 4), 14 + rng.randint(0, 12), w, h))
        truth_ids, truth_cats = _paint(rects)
        seller_rects = []
        for seg, cat, x, y, w, h in rects:
            dx, dy, dw, dh = (rng.randint(-jitter, jitter) for _ in range(4))
            seller_rects.append((1 if merged and seg == 2 else seg, cat, x + dx, y + dy, w + dw, h + dh))
        seller_ids, seller_cats = _paint(seller_rects)
        name = f"pan{image_id:03d}.png"
        image_rows.append({"id": image_id, "file_name": f"img{image_id:03d}.png", "width": WIDTH, "height": HEIGHT, "license": 1})
        truth_pngs[name], seller_pngs[name] = _png(truth_ids), _png(seller_ids)
        photos[f"img{image_id:03d}.png"] = _photo(truth_ids, rng)
        truth_anns.append({"image_id": image_id, "file_name": name, "segments_info": _segments(truth_ids, truth_cats)})
        seller_anns.append({"image_id": image_id, "file_name": name, "segments_info": _segments(seller_ids, seller_cats)})
    licenses = [{"id": 1, "name": "CC BY 4.0", "url": "https://creativecommons.org/licenses/by/4.0/"}]

    def doc(anns):
        return {"licenses": licenses, "images": image_rows, "categories": PANOPTIC_CATEGORIES, "annotations": anns}

    return {"truth": (doc(truth_anns), truth_pngs), "seller": (doc(seller_anns), seller_pngs), "photos": photos}


def zipped(files: dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        for name, data in sorted(files.items()):
            zf.writestr(zipfile.ZipInfo(name, date_time=(2024, 1, 1, 0, 0, 0)), data)
    return buf.getvalue()


def panoptic_reference_archive(*, truth: tuple[dict, dict[str, bytes]], sample: list[int]) -> bytes:
    """The auditor's reference for the drawn sample: the truth of those images, as one zip
    of the panoptic JSON and its PNGs (under ``panoptic/``)."""
    doc, pngs = truth
    keep = set(sample)
    anns = [a for a in doc["annotations"] if a["image_id"] in keep]
    reference = {**doc, "images": [i for i in doc["images"] if i["id"] in keep], "annotations": anns}
    files = {"reference.json": json.dumps(reference).encode()} | {f"panoptic/{a['file_name']}": pngs[a["file_name"]] for a in anns}
    return zipped(files)


def panoptic_seller_files(dataset: dict) -> dict[tuple[str, str], bytes]:
    """What a seller uploads: photos, the panoptic JSON and the PNGs ({(role, name): bytes})."""
    doc, pngs = dataset["seller"]
    return {
        ("images", "images.zip"): zipped(dataset["photos"]),
        ("panoptic", "panoptic.json"): json.dumps(doc).encode(),
        ("panoptic", "panoptic_pngs.zip"): zipped(pngs),
    }


PANOPTIC_DEMO = {"slug": "tabletop-panoptic", "title": "Tabletop parts: panoptic", "images": 16, "seed": 7}


def seed_panoptic(*, users: dict, seller_org, log, timeout: float) -> str | None:
    """Publish the demo's panoptic listing through the real pipeline: the seller's upload,
    the drawn sample, the auditor's panoptic reference archive, PQ and the checks computed
    by the worker, the moderator's approval. Idempotent; returns the slug when it published."""
    import tempfile
    from pathlib import Path

    from datasets.models import Dataset
    from datasets.selectors import version_audit_reference, version_audit_sample
    from datasets.services import audit_reference_submit, dataset_create, version_create, version_submit
    from datasets.states import VersionState
    from licensing.services import moderation_decide, provenance_update
    from marketplace.demo import DEMO_PROVENANCE, sample_drawn, upload_bytes, version_state, wait_for

    spec = PANOPTIC_DEMO
    dataset = Dataset.objects.filter(owner=seller_org, slug=spec["slug"]).first()
    if dataset is not None and dataset.versions.filter(state=VersionState.PUBLISHED).exists():
        log(f"{spec['slug']}: already published")
        return None
    data = panoptic_dataset(images=spec["images"], seed=spec["seed"], jitter=1, merged_every=8)
    active = (VersionState.SUBMITTED, VersionState.PROCESSING, VersionState.IN_REVIEW)
    version = dataset.versions.filter(state__in=active).order_by("-number").first() if dataset else None
    if version is None:
        seller = users["demo-seller"]
        dataset = dataset or dataset_create(
            owner=seller_org, actor=seller, slug=spec["slug"], title=spec["title"], annotation_license="CC-BY-4.0", annotation_kind="panoptic", price="140.00",
            summary="Panoptic segments of parts on a table: things and stuff.",
        )
        version = version_create(dataset=dataset, actor=seller, notes="generated panoptic demo data")
        provenance_update(version=version, actor=seller, fields=DEMO_PROVENANCE)
        for (role, name), blob in panoptic_seller_files(data).items():
            upload_bytes(version=version, actor=seller, role=role, name=name, data=blob)
        version_submit(version=version, actor=seller)
        log(f"{spec['slug']}: v{version.number} submitted ({spec['images']} panoptic images)")
    wait_for(lambda: sample_drawn(version.pk) or version_state(version.pk) not in (VersionState.SUBMITTED, VersionState.PROCESSING), timeout=timeout, what=f"{spec['slug']}: ingest and the audit sample")
    version.refresh_from_db()
    if version.state == VersionState.PROCESSING and version_audit_reference(version=version) is None:
        with tempfile.TemporaryDirectory() as tmp:
            path = Path(tmp) / "reference.zip"
            path.write_bytes(panoptic_reference_archive(truth=data["truth"], sample=version_audit_sample(version=version)))
            audit_reference_submit(version=version, actor=users["demo-auditor"], path=path, archive=True)
        log(f"{spec['slug']}: auditor's panoptic reference uploaded for the sample")
    state = wait_for(lambda: (s := version_state(version.pk)) not in (VersionState.SUBMITTED, VersionState.PROCESSING) and s, timeout=timeout, what=f"{spec['slug']}: PQ and checks")
    if state != VersionState.IN_REVIEW:
        raise RuntimeError(f"{spec['slug']}: the pipeline ended in {state} (see GET /api/v1/versions/{version.pk}/jobs/)")
    version.refresh_from_db()
    moderation_decide(version=version, actor=users["demo-moderator"], decision="approve", reason="demo")
    log(f"{spec['slug']}: approved and published")
    return spec["slug"]
