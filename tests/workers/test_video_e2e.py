"""Video versions end to end with a real worker, over HTTP against a live server, through
the API only: a seller uploads (the seller CLI's client) and submits, the auditor fetches
the clip sample, downloads a frame by its URL and posts the reference tracks (a misfit
first: refused, nothing changes), a moderator approves, a buyer reads the listing.

One YouTube-VIS video-only version and one COCO-with-tracks version whose seller tracks
swap identities inside every clip. The seller's masks are the generated truth with known
jitter, so the verified mask IoU is checked against the IoU of truth and seller masks on
the sampled frames computed here with pycocotools, and the ID switches against the swaps."""

from __future__ import annotations

import json
import time
import urllib.request

import numpy as np
import pytest
from pycocotools import mask as mask_utils

from datasets.client import Api, ApiError
from datasets.client import main as seller_cli
from marketplace.demo import DEMO_PROVENANCE, images_zip, video_dataset, video_reference_for_clips

pytestmark = [pytest.mark.worker, pytest.mark.timeout(600)]

WORKER_ENV = {"QUALITY_DEVICE": "cpu", "PIPELINE_MAX_RETRIES": "1", "PIPELINE_RETRY_BACKOFF_MAX": "2"}
VIDEOS, FRAMES = 3, 14  # longer than the default clip (10 frames): the clips are runs inside the videos


def _wait(predicate, *, timeout: float, what: str):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if value := predicate():
            return value
        time.sleep(0.5)
    raise TimeoutError(what)


def _state(api: Api, version_id: int) -> str:
    return api.call("GET", f"versions/{version_id}/jobs/")["state"]


def _jobs(api: Api, version_id: int) -> dict[str, dict]:
    return {j["step"]: j for j in api.call("GET", f"versions/{version_id}/jobs/")["jobs"]}


def _expected_mask_iou(truth: dict, seller: dict, clips: list[dict]) -> float:
    """Mean IoU of each sampled frame's seller mask with the truth mask of the same object."""
    sampled = {c["video_id"]: c["frame_indices"] for c in clips}
    ious = []
    for clean, dirty in zip(truth["annotations"], seller["annotations"], strict=True):
        for f in sampled.get(clean["video_id"], []):
            a = mask_utils.merge(mask_utils.frPyObjects(clean["segmentations"][f], 64, 64))
            b = mask_utils.merge(mask_utils.frPyObjects(dirty["segmentations"][f], 64, 64))
            ious.append(float(mask_utils.iou([b], [a], [0])[0, 0]))
    return float(np.mean(ious))


def _version_view(api: Api, version_id: int) -> dict:
    """The seller's view of the version, its short-lived links without their signatures
    (a link signed a second later differs)."""
    body = api.call("GET", f"versions/{version_id}/")
    return {**body, "previews": [url.split("?", 1)[0] for url in body.get("previews") or []]}


def _sell(live_server, seller, tmp_path, *, slug: str, files: dict[str, bytes], declared: dict | None = None) -> tuple[Api, int]:
    api = Api(live_server.url, seller.token)
    api.call("POST", "datasets/", {"slug": slug, "title": slug, "annotation_license": "CC-BY-4.0", "annotation_kind": "video", "price": "90.00"})
    root = tmp_path / slug
    root.mkdir()
    for name, data in files.items():
        (root / name).write_bytes(data)
    assert seller_cli(["--api", live_server.url, "--token", seller.token, "upload", str(root), "--dataset", slug, "--workers", "2"]) == 0
    version_id = api.call("GET", f"datasets/{slug}/versions/")["results"][0]["id"]
    api.call("PUT", f"versions/{version_id}/provenance/", {"fields": DEMO_PROVENANCE | (declared or {})})
    api.call("POST", f"versions/{version_id}/submit/")
    return api, version_id


def _audit(live_server, auditor, seller_api: Api, version_id: int, data: dict, *, videos: int = VIDEOS) -> list[dict]:
    """The auditor's part: the clips, a frame through its URL, a misfit refused, the reference."""
    _wait(
        lambda: _jobs(seller_api, version_id).get("quality_audit", {}).get("state") == "waiting" or _state(seller_api, version_id) not in ("submitted", "processing"),
        timeout=240,
        what="the clip sample",
    )
    assert _state(seller_api, version_id) == "processing", json.dumps(seller_api.call("GET", f"versions/{version_id}/"))[:4000]
    jobs = _jobs(seller_api, version_id)
    assert jobs["quality_audit"]["state"] == "waiting"
    assert jobs["audit_sample"]["message"] == f"{videos} clips ({videos * 10} frames) drawn for the audit"
    api = Api(live_server.url, auditor.token)
    sample = api.call("GET", f"versions/{version_id}/audit/sample/")
    clips, frames = sample["clips"], sample["frames"]
    assert len(clips) == videos and sample["images"] == []
    for clip in clips:
        assert clip["length"] == FRAMES and len(clip["frame_indices"]) == 10
        assert clip["frame_indices"] == list(range(clip["frame_indices"][0], clip["frame_indices"][0] + 10))
    assert len(frames) == videos * 10
    with urllib.request.urlopen(frames[3]["url"], timeout=30) as resp:  # noqa: S310 - the test's own store
        assert resp.read() == data["pngs"][frames[3]["file_name"]]

    reference = video_reference_for_clips(reference=data["reference"], clips=clips)
    misfit = json.loads(json.dumps(reference))
    outside = next(f for f in range(FRAMES) if f not in clips[0]["frame_indices"])
    k = next(k for k, a in enumerate(misfit["annotations"]) if a["video_id"] == clips[0]["video_id"])
    misfit["annotations"][k]["segmentations"][outside] = [[1.0, 1.0, 9.0, 1.0, 9.0, 9.0]]
    before = _version_view(seller_api, version_id)
    with pytest.raises(ApiError) as refused:
        api.call("POST", f"versions/{version_id}/audit/reference/", misfit)
    assert refused.value.status == 400
    assert refused.value.body["details"][0]["location"] == f"annotations[{k}].segmentations[{outside}]"
    assert refused.value.body["details"][0]["code"] == "mask_outside_sample"
    assert _version_view(seller_api, version_id) == before
    assert _jobs(seller_api, version_id)["quality_audit"]["state"] == "waiting"

    api.call("POST", f"versions/{version_id}/audit/reference/", reference)
    _wait(lambda: _state(seller_api, version_id) != "processing", timeout=300, what="quality and checks")
    assert _state(seller_api, version_id) == "in_review", _jobs(seller_api, version_id)
    return clips


def _approve_and_view(live_server, moderator, buyer, seller_api: Api, version_id: int, slug: str) -> tuple[dict, dict]:
    Api(live_server.url, moderator.token).call("POST", f"moderation/versions/{version_id}/decision/", {"decision": "approve", "reason": "fine"})
    buyer_api = Api(live_server.url, buyer.token)
    listing = buyer_api.call("GET", f"listings/{slug}/")
    reports = buyer_api.call("GET", f"versions/{version_id}/quality/")["results"]
    kinds = [r["kind"] for r in reports]
    assert sorted(kinds) == sorted(set(kinds)), kinds  # each kind once
    assert {"audit", "temporal"} <= set(kinds)
    return listing, {r["kind"]: r for r in reports}


def test_youtube_vis_video_only_version_from_upload_to_the_buyers_listing(live_server, worker_factory, seller, auditor, moderator, buyer, tmp_path):
    worker_factory(extra_env=WORKER_ENV)
    data = video_dataset(videos=VIDEOS, frames=FRAMES, seed=21, noise=0.12)
    # the seller also types in figures: the platform's verified mask IoU replaces the
    # declared one; the declared agreement (no second pass to measure) stays self-declared
    declared = {"declared_mask_iou": 0.6, "declared_agreement": 0.93}
    files = {"tracks.json": json.dumps(data["ytvis"]).encode(), "frames.zip": images_zip(data["pngs"])}
    seller_api, version_id = _sell(live_server, seller, tmp_path, slug="arm-episodes", files=files, declared=declared)
    assert {f["role"] for f in seller_api.call("GET", f"versions/{version_id}/")["manifest"]} == {"video", "images"}
    clips = _audit(live_server, auditor, seller_api, version_id, data)
    listing, reports = _approve_and_view(live_server, moderator, buyer, seller_api, version_id, "arm-episodes")

    quality = listing["quality"]
    assert quality["mask_iou"]["status"] == "verified"  # not the declared 0.6
    expected = _expected_mask_iou(data["reference"], data["ytvis"], clips)
    assert quality["mask_iou"]["value"] == pytest.approx(expected, abs=0.02)
    low, high = quality["mask_iou"]["ci"]
    assert low <= quality["mask_iou"]["value"] <= high
    assert quality["id_switches"] == {"value": 0.0, "ci": None, "n": quality["id_switches"]["n"], "status": "verified"}
    assert quality["fragmentations"]["value"] == 0.0 and quality["fragmentations"]["status"] == "verified"
    assert 0.0 < quality["video_ap"]["value"] <= 1.0 and quality["video_ap"]["status"] == "verified"
    assert quality["temporal_iou"]["status"] == "measured" and 0.3 < quality["temporal_iou"]["value"] < 1.0
    assert quality["tier"]
    audit = reports["audit"]["summary"]
    assert audit["n_videos"] == VIDEOS and audit["n_frames"] == VIDEOS * 10 and audit["verified"] is True
    assert audit["instance_recall"]["status"] == "verified" and audit["instance_recall"]["value"] > 0.9
    assert reports["temporal"]["summary"]["temporal_iou"]["status"] == "measured"
    assert quality["agreement"] == {"value": 0.93, "ci": None, "n": None, "status": "self-declared"}
    # the tracks' own masks checked frame by frame: every frame of every video, measured
    intrinsic = reports["intrinsic"]
    assert intrinsic["status"] == "ok" and intrinsic["summary"]["n_images"] == VIDEOS * FRAMES
    assert intrinsic["summary"]["findings"]["empty_mask"]["status"] == "measured"


def test_coco_with_tracks_version_finds_the_identity_swaps(live_server, worker_factory, seller, auditor, moderator, buyer, tmp_path):
    worker_factory(extra_env=WORKER_ENV)
    # the seller's first two tracks of every video swap identities at frame 5: inside every
    # 10-frame clip of a 14-frame video (the clip starts at frame 0..4)
    data = video_dataset(videos=VIDEOS, frames=FRAMES, seed=22, noise=0.12, swap_at=5)
    seller_api, version_id = _sell(live_server, seller, tmp_path, slug="gripper-tracks", files={"annotations.json": json.dumps(data["coco"]).encode(), "frames.zip": images_zip(data["pngs"])})
    clips = _audit(live_server, auditor, seller_api, version_id, data)
    listing, reports = _approve_and_view(live_server, moderator, buyer, seller_api, version_id, "gripper-tracks")

    quality = listing["quality"]
    # the same generation without the swap: the same masks per object, identities kept
    unswapped = video_dataset(videos=VIDEOS, frames=FRAMES, seed=22, noise=0.12)
    expected = _expected_mask_iou(unswapped["reference"], unswapped["ytvis"], clips)
    assert quality["mask_iou"]["status"] == "verified"
    assert quality["mask_iou"]["value"] == pytest.approx(expected, abs=0.02)
    assert quality["id_switches"]["status"] == "verified" and quality["id_switches"]["value"] == 2 * VIDEOS
    assert quality["temporal_iou"]["status"] == "measured"
    assert reports["intrinsic"]["status"] == "ok"


def _renumbered(data: dict, *, first_video: int, first_track: int) -> dict:
    """``data`` (video_dataset's) with its videos numbered from ``first_video``, its tracks
    from ``first_track`` and its frames in those videos' folders: a second annotation file
    of the same version, disjoint from the first."""
    shift_video, shift_track = first_video - 1, first_track - 1

    def name(old: str) -> str:
        vid = int(old.split("/")[1])
        return old.replace(f"videos/{vid:03d}/", f"videos/{vid + shift_video:03d}/", 1)

    def tracks(doc: dict) -> dict:
        videos = [{**v, "id": v["id"] + shift_video, "file_names": [name(n) for n in v["file_names"]]} for v in doc["videos"]]
        anns = [{**a, "id": a["id"] + shift_track, "video_id": a["video_id"] + shift_video} for a in doc["annotations"]]
        return {**doc, "videos": videos, "annotations": anns}

    return {"reference": tracks(data["reference"]), "ytvis": tracks(data["ytvis"]), "pngs": {name(n): png for n, png in data["pngs"].items()}}


def test_clips_are_drawn_from_every_video_annotation_file_of_the_version(live_server, worker_factory, seller, auditor, moderator, buyer, tmp_path):
    """Two YouTube-VIS files in one version (say two recording sessions): the audit's clips
    come from both, the auditor's one reference covers both, and the verified figures are
    those of the sampled frames of both files."""
    worker_factory(extra_env=WORKER_ENV)
    first = video_dataset(videos=VIDEOS, frames=FRAMES, seed=21, noise=0.12)
    second_videos = 2
    second = video_dataset(videos=second_videos, frames=FRAMES, seed=22, noise=0.12)
    second = _renumbered(second, first_video=VIDEOS + 1, first_track=len(first["ytvis"]["annotations"]) + 1)
    # both files' videos fit the audit's clip count (audit_clip_videos, 8): every one is drawn
    videos = VIDEOS + second_videos
    files = {
        "session_a.json": json.dumps(first["ytvis"]).encode(),
        "session_b.json": json.dumps(second["ytvis"]).encode(),
        "frames.zip": images_zip(first["pngs"] | second["pngs"]),
    }
    seller_api, version_id = _sell(live_server, seller, tmp_path, slug="two-sessions", files=files)
    manifest = seller_api.call("GET", f"versions/{version_id}/")["manifest"]
    assert sorted(f["path"] for f in manifest if f["role"] == "video") == ["session_a.json", "session_b.json"]
    merged = {
        key: {**first[key], "videos": first[key]["videos"] + second[key]["videos"], "annotations": first[key]["annotations"] + second[key]["annotations"]}
        for key in ("reference", "ytvis")
    }
    clips = _audit(live_server, auditor, seller_api, version_id, {**merged, "pngs": first["pngs"] | second["pngs"]}, videos=videos)
    by_file = {}
    for clip in clips:
        by_file.setdefault(clip["file"], set()).add(clip["video_id"])
    assert by_file == {"session_a.json": set(range(1, VIDEOS + 1)), "session_b.json": set(range(VIDEOS + 1, videos + 1))}, by_file

    listing, reports = _approve_and_view(live_server, moderator, buyer, seller_api, version_id, "two-sessions")
    quality = listing["quality"]
    assert quality["mask_iou"]["status"] == "verified"
    expected = _expected_mask_iou(merged["reference"], merged["ytvis"], clips)
    assert quality["mask_iou"]["value"] == pytest.approx(expected, abs=0.02)
    assert quality["id_switches"]["status"] == "verified" and quality["id_switches"]["value"] == 0.0
    audit = reports["audit"]["summary"]
    assert audit["n_videos"] == videos and audit["n_frames"] == videos * 10 and audit["verified"] is True
