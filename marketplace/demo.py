"""The demo seed: users in every role, a seller and a buyer organization, and a few small
generated datasets sent through the REAL pipeline (upload → ingest → the auditor's
reference → quality → checks → a moderator's approval), so the demo catalogue's figures
are computed, not written in.

Data: seeded star polygons on PNG images; the reference masks are the clean stars, the
seller's masks the same stars with jittered vertices and a small offset, so the audit
finds a real, imperfect mask IoU. Never runs in production.
"""

from __future__ import annotations

import hashlib
import io
import json
import math
import random
import tempfile
import time
import urllib.request
import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from django.conf import settings
from django.contrib.auth import get_user_model
from django.db import transaction
from PIL import Image, ImageDraw

from datasets.models import Dataset, DatasetVersion, VocabularyKind, VocabularyTerm
from datasets.selectors import version_audit_clips, version_audit_reference, version_audit_sample
from datasets.services import (
    audit_reference_submit,
    dataset_create,
    upload_complete,
    upload_part_headers,
    upload_part_urls,
    upload_put_part,
    upload_start,
    upload_verify,
    version_create,
    version_submit,
)
from datasets.states import VersionState
from licensing.services import moderation_decide, provenance_update
from marketplace.accounts.models import Organization, OrganizationRole
from marketplace.accounts.services import membership_add, organization_create, staff_group_add
from marketplace.core.storage import get_storage
from workers.models import Job, JobState, JobStep

DEMO_PASSWORD = "demo-password-123"
DEMO_USERS = ("demo-seller", "demo-buyer", "demo-auditor", "demo-moderator")
LICENSES = [{"id": 1, "name": "CC BY 4.0", "url": "https://creativecommons.org/licenses/by/4.0/"}]
CATEGORIES = [{"id": 1, "name": "gripper"}, {"id": 2, "name": "bolt"}, {"id": 3, "name": "cable"}]


@dataclass(frozen=True)
class DemoSpec:
    slug: str
    title: str
    summary: str
    images: int
    seed: int
    noise: float
    price: str
    embodiments: tuple[str, ...] = ()
    tasks: tuple[str, ...] = ()
    scenes: tuple[str, ...] = ()
    sensors: tuple[str, ...] = ("rgb",)


# What a seller declares (Croissant RAI names); self-declared until a moderator verifies.
DEMO_PROVENANCE = {
    "rai:dataCollection": "Synthetic star-shaped parts rendered for the demo",
    "rai:dataCollectionType": "scripted",
    "rai:dataCollectionTimeFrame": {"start": "2026-01-01", "end": "2026-01-31"},
    "locations": ["US"],
    "human_subjects": False,
    "rai:dataAnnotationPlatform": ["generated"],
    "rai:dataAnnotationProtocol": ["masks drawn from the generating polygons, then perturbed"],
    "rai:annotationsPerItem": 1,
    "rai:dataAnnotationAnalysis": ["platform audit on a drawn sample"],
    "rai:dataUseCases": ["trying the marketplace"],
    "rai:dataLimitations": ["synthetic shapes, not real objects"],
}

DEMO_DATASETS = (
    DemoSpec(
        "bin-picking-stars",
        "Bin picking: parts in clutter",
        "Instance masks of parts in a bin, top-down camera.",
        30,
        1,
        0.08,
        "250.00",
        ("franka-panda", "ur5"),
        ("pick-and-place", "grasping"),
        ("factory",),
        ("rgb", "depth"),
    ),
    DemoSpec(
        "assembly-line-stars",
        "Assembly line: small parts",
        "Bolts, grippers and cables on a conveyor.",
        24,
        2,
        0.18,
        "120.00",
        ("kuka-iiwa",),
        ("insertion", "sorting"),
        ("factory",),
    ),
    DemoSpec(
        "warehouse-stars",
        "Warehouse shelves",
        "Objects on shelves seen from a mobile robot.",
        20,
        3,
        0.30,
        "80.00",
        ("mobile-manipulator", "stretch"),
        ("pick-and-place", "navigation"),
        ("warehouse", "retail"),
        ("rgbd", "point_cloud"),
    ),
)


# The video listing: ``images`` is its number of videos, each of DEMO_VIDEO_FRAMES frames.
DEMO_VIDEO = DemoSpec(
    "teleop-episodes",
    "Teleoperation episodes: parts tracked through the grasp",
    "Instance tracks of parts over teleoperated pick episodes, wrist camera.",
    6,
    7,
    0.12,
    "300.00",
    ("franka-panda",),
    ("pick-and-place", "grasping"),
    ("factory",),
)
DEMO_VIDEO_FRAMES = 16


def _star(cx: float, cy: float, r: float, points: int, rng: random.Random, jitter: float) -> list[float]:
    poly: list[float] = []
    for i in range(points * 2):
        radius = (r if i % 2 == 0 else r * 0.5) * (1 + rng.uniform(-jitter, jitter))
        angle = math.pi * i / points
        poly += [round(cx + radius * math.cos(angle), 2), round(cy + radius * math.sin(angle), 2)]
    return poly


def _ann(ann_id: int, image_id: int, cat: int, poly: list[float]) -> dict:
    xs, ys = poly[0::2], poly[1::2]
    bbox = [min(xs), min(ys), round(max(xs) - min(xs), 2), round(max(ys) - min(ys), 2)]
    # shoelace area, as COCO stores polygon areas
    area = abs(sum(xs[i] * ys[i - 1] - xs[i - 1] * ys[i] for i in range(len(xs)))) / 2
    return {
        "id": ann_id,
        "image_id": image_id,
        "category_id": cat,
        "segmentation": [poly],
        "area": round(area, 2),
        "bbox": bbox,
        "iscrowd": 0,
    }


def star_dataset(*, images: int, seed: int, noise: float, size: int = 96) -> tuple[dict, dict, dict[str, bytes]]:
    """(reference COCO, seller COCO, {file name: PNG bytes}); deterministic for a seed."""

    rng = random.Random(seed)
    ref = {"info": {"description": "demo reference"}, "licenses": LICENSES, "images": [], "annotations": [], "categories": CATEGORIES}
    seller = {
        "info": {"description": "demo seller annotations"},
        "licenses": LICENSES,
        "images": [],
        "annotations": [],
        "categories": CATEGORIES,
    }
    pngs: dict[str, bytes] = {}
    ann_id = 1
    for image_id in range(1, images + 1):
        name = f"images/{image_id:04d}.png"
        image = {"id": image_id, "file_name": name, "width": size, "height": size, "license": 1}
        ref["images"].append(image)
        seller["images"].append(dict(image))
        canvas = Image.new("RGB", (size, size), (rng.randint(20, 60),) * 3)
        draw = ImageDraw.Draw(canvas)
        for _ in range(rng.randint(1, 3)):
            cx, cy, r = rng.uniform(20, size - 20), rng.uniform(20, size - 20), rng.uniform(8, 16)
            points, cat = rng.randint(4, 7), rng.choice(CATEGORIES)["id"]
            clean = _star(cx, cy, r, points, rng, 0.0)
            dirty = _star(cx + rng.uniform(-1.5, 1.5), cy + rng.uniform(-1.5, 1.5), r, points, rng, noise)
            draw.polygon(list(zip(clean[0::2], clean[1::2], strict=True)), fill=(80 * cat % 255, 160, 255 - 60 * cat))
            ref["annotations"].append(_ann(ann_id, image_id, cat, clean))
            seller["annotations"].append(_ann(ann_id, image_id, cat, dirty))
            ann_id += 1
        buffer = io.BytesIO()
        canvas.save(buffer, format="PNG")
        pngs[name] = buffer.getvalue()
    return ref, seller, pngs


def images_zip(pngs: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as zf:
        for name, data in sorted(pngs.items()):
            zf.writestr(zipfile.ZipInfo(name, date_time=(2024, 1, 1, 0, 0, 0)), data)
    return buffer.getvalue()


def upload_bytes(*, version, actor, role: str, name: str, data: bytes):
    """Upload a file through the real upload services (parts to the store, then the
    re-hashing verification), as a client would; returns the finished UploadSession."""

    upload = upload_start(version=version, actor=actor, role=role, name=name, size=len(data), sha256=hashlib.sha256(data).hexdigest())
    storage = get_storage()
    for number in range(1, upload.part_count + 1):
        chunk = data[(number - 1) * upload.part_size : number * upload.part_size]
        if storage.backend == "local":
            upload_put_part(
                upload=upload,
                number=number,
                content_range=f"bytes {(number - 1) * upload.part_size}-{(number - 1) * upload.part_size + len(chunk) - 1}/{len(data)}",
                stream=io.BytesIO(chunk),
                length=len(chunk),
            )
        else:
            url = upload_part_urls(upload=upload, numbers=[number])[number]
            request = urllib.request.Request(url, data=chunk, method="PUT", headers=upload_part_headers(upload=upload, number=number))
            with urllib.request.urlopen(request, timeout=60) as response:  # noqa: S310 - our presigned store URL
                if response.status >= 300:
                    raise RuntimeError(f"part {number} upload answered {response.status}")
    upload_complete(upload=upload, actor=actor)
    # The worker verifies too (enqueued on commit); verifying here is idempotent and lets
    # the caller submit at once.
    return upload_verify(upload_id=str(upload.pk))


def dataset_submit_generated(*, seller_user, org, spec: DemoSpec, ref_out: dict | None = None):
    """Create the dataset and a version, upload images + annotations, submit. Returns the
    version; ``ref_out`` receives the clean reference COCO for the auditor's step."""

    def terms(kind: str, slugs: tuple[str, ...]):
        return list(VocabularyTerm.objects.filter(kind=kind, slug__in=slugs))

    ref, seller_coco, pngs = star_dataset(images=spec.images, seed=spec.seed, noise=spec.noise)
    dataset = Dataset.objects.filter(owner=org, slug=spec.slug).first() or dataset_create(
        owner=org,
        actor=seller_user,
        slug=spec.slug,
        title=spec.title,
        annotation_license="CC-BY-4.0",
        summary=spec.summary,
        price=spec.price,
        embodiments=terms(VocabularyKind.EMBODIMENT, spec.embodiments),
        tasks=terms(VocabularyKind.TASK, spec.tasks),
        scene_types=terms(VocabularyKind.SCENE, spec.scenes),
        sensors=list(spec.sensors),
    )
    version = version_create(dataset=dataset, actor=seller_user, notes="generated demo data")
    provenance_update(version=version, actor=seller_user, fields=DEMO_PROVENANCE)
    upload_bytes(version=version, actor=seller_user, role="images", name="images.zip", data=images_zip(pngs))
    upload_bytes(version=version, actor=seller_user, role="annotations", name="annotations.json", data=json.dumps(seller_coco).encode())
    version_submit(version=version, actor=seller_user)
    if ref_out is not None:
        ref_out.update(ref)
    return version


def video_submit_generated(*, seller_user, org, spec: DemoSpec, frames: int = DEMO_VIDEO_FRAMES):
    """The video listing's dataset (annotation kind video) and a version: frames and YouTube-VIS
    tracks uploaded, submitted. Returns the version."""

    def terms(kind: str, slugs: tuple[str, ...]):
        return list(VocabularyTerm.objects.filter(kind=kind, slug__in=slugs))

    data = video_dataset(videos=spec.images, frames=frames, seed=spec.seed, noise=spec.noise)
    dataset = Dataset.objects.filter(owner=org, slug=spec.slug).first() or dataset_create(
        owner=org,
        actor=seller_user,
        slug=spec.slug,
        title=spec.title,
        annotation_license="CC-BY-4.0",
        summary=spec.summary,
        price=spec.price,
        annotation_kind="video",
        embodiments=terms(VocabularyKind.EMBODIMENT, spec.embodiments),
        tasks=terms(VocabularyKind.TASK, spec.tasks),
        scene_types=terms(VocabularyKind.SCENE, spec.scenes),
        sensors=list(spec.sensors),
    )
    version = version_create(dataset=dataset, actor=seller_user, notes="generated demo video data")
    provenance_update(version=version, actor=seller_user, fields=DEMO_PROVENANCE)
    upload_bytes(version=version, actor=seller_user, role="images", name="frames.zip", data=images_zip(data["pngs"]))
    upload_bytes(version=version, actor=seller_user, role="video", name="tracks.json", data=json.dumps(data["ytvis"]).encode())
    version_submit(version=version, actor=seller_user)
    return version


def video_auditor_reference_upload(*, version, auditor_user, reference: dict) -> None:
    """The auditor's step for a video version: reference tracks at the drawn clips' frames."""
    version.refresh_from_db()
    clips = version_audit_clips(version=version)
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "reference.json"
        path.write_text(json.dumps(video_reference_for_clips(reference=reference, clips=clips)))
        audit_reference_submit(version=version, actor=auditor_user, path=path)  # resumes the pipeline on commit


def reference_for_sample(*, reference: dict, sample: list[int]) -> dict:
    keep = set(sample)
    return {
        **reference,
        "images": [i for i in reference["images"] if i["id"] in keep],
        "annotations": [a for a in reference["annotations"] if a["image_id"] in keep],
    }


def auditor_reference_upload(*, version, auditor_user, reference: dict) -> None:
    """The auditor's step: references for the drawn sample, then the pipeline goes on."""

    version.refresh_from_db()
    sample = version_audit_sample(version=version)
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "reference.json"
        path.write_text(json.dumps(reference_for_sample(reference=reference, sample=sample)))
        audit_reference_submit(version=version, actor=auditor_user, path=path)  # resumes the pipeline on commit


def wait_for(predicate: Callable[[], object], *, timeout: float, what: str, interval: float = 0.5):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    raise TimeoutError(f"timed out after {timeout:.0f}s waiting for {what}")


def sample_drawn(version_id: int) -> bool:
    return Job.objects.filter(version_id=version_id, step=JobStep.AUDIT_SAMPLE, state=JobState.SUCCEEDED).exists()


def version_state(version_id: int) -> str:
    return DatasetVersion.objects.values_list("state", flat=True).get(pk=version_id)


def seed_demo(*, log: Callable[[str], None] = print, timeout: float = 600) -> dict:
    """Create the demo users and organizations and publish the generated datasets through
    the real pipeline (a worker must be running). Idempotent: published datasets are kept."""

    if settings.PROFILE == "production":
        raise RuntimeError("seed_demo refuses to run with MARKET_PROFILE=production")

    User = get_user_model()
    users = {}
    for username in DEMO_USERS:
        user, created = User.objects.get_or_create(username=username, defaults={"email": f"{username}@example.com"})
        if created:
            user.set_password(DEMO_PASSWORD)
            user.save()
        users[username] = user
    staff_group_add(user=users["demo-auditor"], group_name="auditor")
    staff_group_add(user=users["demo-moderator"], group_name="moderator")
    # Platform staff: they use the admin (moderation queue) and mark B2B orders paid.
    User.objects.filter(username__in=["demo-auditor", "demo-moderator"]).update(is_staff=True)
    seller_org = Organization.objects.filter(slug="demo-robotics").first() or organization_create(
        name="Demo Robotics", slug="demo-robotics"
    )
    buyer_org = Organization.objects.filter(slug="demo-buyer-lab").first() or organization_create(
        name="Demo Buyer Lab", slug="demo-buyer-lab"
    )
    membership_add(organization=seller_org, user=users["demo-seller"], role=OrganizationRole.SELLER)
    membership_add(organization=buyer_org, user=users["demo-buyer"], role=OrganizationRole.BUYER)
    log(f"users {', '.join(DEMO_USERS)} (password {DEMO_PASSWORD}); organizations {seller_org.slug}, {buyer_org.slug}")

    pending = []
    active_states = (VersionState.SUBMITTED, VersionState.PROCESSING, VersionState.IN_REVIEW)
    # (spec, submit, the clean reference, the auditor's upload, what it holds)
    demos = [
        (spec, dataset_submit_generated, star_dataset(images=spec.images, seed=spec.seed, noise=spec.noise)[0], auditor_reference_upload, f"{spec.images} images")
        for spec in DEMO_DATASETS
    ]
    video = DEMO_VIDEO
    video_reference = video_dataset(videos=video.images, frames=DEMO_VIDEO_FRAMES, seed=video.seed, noise=video.noise)["reference"]
    demos.append((video, video_submit_generated, video_reference, video_auditor_reference_upload, f"{video.images} videos of {DEMO_VIDEO_FRAMES} frames"))
    uploaders = {}
    for spec, submit, reference, upload_reference, holds in demos:
        dataset = Dataset.objects.filter(owner=seller_org, slug=spec.slug).first()
        if dataset is not None and dataset.versions.filter(state=VersionState.PUBLISHED).exists():
            log(f"{spec.slug}: already published")
            continue
        # A version left on its way by an interrupted seed goes on; no second one is made.
        version = dataset.versions.filter(state__in=active_states).order_by("-number").first() if dataset else None
        if version is None:
            with transaction.atomic():
                version = submit(seller_user=users["demo-seller"], org=seller_org, spec=spec)
            log(f"{spec.slug}: v{version.number} submitted ({holds})")
        uploaders[spec.slug] = upload_reference
        pending.append((spec, version, reference))

    for spec, version, reference in pending:
        wait_for(
            lambda v=version: sample_drawn(v.pk) or version_state(v.pk) not in (VersionState.SUBMITTED, VersionState.PROCESSING),
            timeout=timeout,
            what=f"{spec.slug}: ingest and the audit sample (is a worker running?)",
        )
        state = version_state(version.pk)
        if state == VersionState.PROCESSING and version_audit_reference(version=version) is None:
            uploaders[spec.slug](version=version, auditor_user=users["demo-auditor"], reference=reference)
            log(f"{spec.slug}: auditor's reference uploaded for the sample")
        elif state not in (VersionState.PROCESSING, VersionState.IN_REVIEW):
            raise RuntimeError(f"{spec.slug}: the pipeline ended in {state} (see GET /api/v1/versions/{version.pk}/jobs/)")
    for spec, version, _ in pending:
        state = wait_for(
            lambda v=version: (s := version_state(v.pk)) not in (VersionState.SUBMITTED, VersionState.PROCESSING) and s,
            timeout=timeout,
            what=f"{spec.slug}: quality reports and checks",
        )
        if state != VersionState.IN_REVIEW:
            raise RuntimeError(f"{spec.slug}: the pipeline ended in {state} (see GET /api/v1/versions/{version.pk}/jobs/)")
        version.refresh_from_db()
        moderation_decide(version=version, actor=users["demo-moderator"], decision="approve", reason="demo")
        log(f"{spec.slug}: approved and published")
    from marketplace.demo_panoptic import seed_panoptic

    panoptic = seed_panoptic(users=users, seller_org=seller_org, log=log, timeout=timeout)
    return {"users": list(DEMO_USERS), "published": [spec.slug for spec, _, _ in pending] + ([panoptic] if panoptic else [])}


# ---------------------------------------------------------------- video: tracks over frames


def video_dataset(*, videos: int, frames: int, seed: int, noise: float, size: int = 64, swap_at: int | None = None) -> dict:
    """A generated video dataset, deterministic for a seed: ``{"reference": YouTube-VIS of
    the clean tracks, "ytvis": the seller's YouTube-VIS, "coco": the same seller tracks as
    COCO with video_id/frame_index/track_id, "pngs": {frame file name: PNG bytes}}``.

    Each video holds two or three stars moving across the frames; the seller's masks are
    the clean stars with jittered vertices and a small offset. With ``swap_at``, the
    seller's first two tracks of each video exchange identities from that frame on (an ID
    switch the audit must find)."""
    rng = random.Random(seed)
    reference = {"info": {"description": "demo reference tracks"}, "licenses": LICENSES, "videos": [], "annotations": [], "categories": CATEGORIES}
    ytvis = {"info": {"description": "demo seller tracks"}, "licenses": LICENSES, "videos": [], "annotations": [], "categories": CATEGORIES}
    coco = {"info": {"description": "demo seller tracks"}, "licenses": LICENSES, "images": [], "annotations": [], "categories": CATEGORIES}
    pngs: dict[str, bytes] = {}
    track_id = 0
    for vid in range(1, videos + 1):
        names = [f"videos/{vid:03d}/{f:04d}.png" for f in range(frames)]
        video = {"id": vid, "width": size, "height": size, "length": frames, "file_names": names, "license": 1}
        reference["videos"].append(dict(video))
        ytvis["videos"].append(dict(video))
        canvases = [Image.new("RGB", (size, size), (rng.randint(20, 60),) * 3) for _ in range(frames)]
        objects = []
        for _ in range(rng.randint(2, 3)):
            cx, cy, r = rng.uniform(14, size - 14), rng.uniform(14, size - 14), rng.uniform(6, 10)
            dx, dy = rng.uniform(-1.0, 1.0), rng.uniform(-1.0, 1.0)
            cat = rng.choice(CATEGORIES)["id"]
            if swap_at is not None and len(objects) == 1:
                cat = objects[0][6]  # the swapped pair shares a category: a swap of identities, not of classes
            objects.append((cx, cy, r, dx, dy, rng.randint(4, 7), cat))
        clean_tracks, dirty_tracks = [], []
        for cx, cy, r, dx, dy, points, cat in objects:
            clean, dirty = [], []
            for f in range(frames):
                x, y = cx + dx * f, cy + dy * f
                c = _star(x, y, r, points, rng, 0.0)
                clean.append(c)
                dirty.append(_star(x + rng.uniform(-1.0, 1.0), y + rng.uniform(-1.0, 1.0), r, points, rng, noise))
                ImageDraw.Draw(canvases[f]).polygon(list(zip(c[0::2], c[1::2], strict=True)), fill=(80 * cat % 255, 160, 255 - 60 * cat))
            clean_tracks.append((cat, clean))
            dirty_tracks.append((cat, dirty))
        if swap_at is not None and len(dirty_tracks) >= 2:
            (cat_a, a), (cat_b, b) = dirty_tracks[0], dirty_tracks[1]
            dirty_tracks[0] = (cat_a, a[:swap_at] + b[swap_at:])
            dirty_tracks[1] = (cat_b, b[:swap_at] + a[swap_at:])
        for (cat, clean), (dcat, dirty) in zip(clean_tracks, dirty_tracks, strict=True):
            track_id += 1
            reference["annotations"].append(_video_ann(track_id, vid, cat, clean))
            ytvis["annotations"].append(_video_ann(track_id, vid, dcat, dirty))
        for f, canvas in enumerate(canvases):
            buffer = io.BytesIO()
            canvas.save(buffer, format="PNG")
            pngs[names[f]] = buffer.getvalue()
            image_id = vid * 1000 + f
            coco["images"].append({"id": image_id, "video_id": vid, "frame_index": f, "file_name": names[f], "width": size, "height": size, "license": 1})
    for ann in ytvis["annotations"]:
        for f, poly in enumerate(ann["segmentations"]):
            coco_ann = _ann(len(coco["annotations"]) + 1, ann["video_id"] * 1000 + f, ann["category_id"], poly[0])
            coco["annotations"].append(coco_ann | {"track_id": ann["id"]})
    return {"reference": reference, "ytvis": ytvis, "coco": coco, "pngs": pngs}


def _video_ann(track_id: int, video_id: int, cat: int, polys: list[list[float]]) -> dict:
    per_frame = [_ann(0, 0, cat, p) for p in polys]
    return {
        "id": track_id,
        "video_id": video_id,
        "category_id": cat,
        "segmentations": [[p] for p in polys],
        "areas": [a["area"] for a in per_frame],
        "bboxes": [a["bbox"] for a in per_frame],
        "iscrowd": 0,
    }


def video_reference_for_clips(*, reference: dict, clips: list[dict]) -> dict:
    """The auditor's reference for the drawn clips: the sampled videos only, each track's
    masks at the sampled frames and null elsewhere."""
    sampled = {c["video_id"]: set(c["frame_indices"]) for c in clips}
    annotations = []
    for ann in reference["annotations"]:
        frames = sampled.get(ann["video_id"])
        if frames is None:
            continue
        segmentations = [seg if f in frames else None for f, seg in enumerate(ann["segmentations"])]
        if any(segmentations):
            areas = [a if f in frames else None for f, a in enumerate(ann["areas"])]
            bboxes = [b if f in frames else None for f, b in enumerate(ann["bboxes"])]
            annotations.append({**ann, "segmentations": segmentations, "areas": areas, "bboxes": bboxes})
    return {**reference, "videos": [v for v in reference["videos"] if v["id"] in sampled], "annotations": annotations}
