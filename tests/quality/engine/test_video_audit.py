"""Video audit: the seller's tracks against reference tracks on sampled clips.

Parity of the video AP with YTVOSeval on the fixtures (whole videos as clips), and figures
on generated tracks whose perturbation is known: a one-pixel shift of 10x10 squares
(IoU 90/110 per frame), an identity swap, masks outside the clips, both seller formats."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from pycocotools import mask as mask_utils

from quality.engine.errors import EngineInputError
from quality.engine.video_audit import video_audit_compare

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures" / "ytvis"
CASES = sorted(p.name for p in FIXTURES.glob("case_*"))
H = W = 32


def _box(x: int, y: int, side: int = 10) -> dict:
    m = np.zeros((H, W), np.uint8)
    m[y : y + side, x : x + side] = 1
    r = mask_utils.encode(np.asfortranarray(m))
    return {"size": r["size"], "counts": r["counts"].decode()}


def _videos(n_videos: int, length: int) -> list[dict]:
    return [{"id": v, "width": W, "height": H, "length": length, "file_names": [f"{v}/{f}.png" for f in range(length)]} for v in range(1, n_videos + 1)]


def _tracks(n_videos: int, length: int, *, shift: int = 0, swap_at: int | None = None) -> dict:
    """Two squares per video moving right one pixel a frame, category 1; ``shift`` moves the
    seller's down; ``swap_at`` exchanges the two tracks' identities from that frame on."""
    anns = []
    for v in range(1, n_videos + 1):
        a = [_box(1 + f, 2 + shift) for f in range(length)]
        b = [_box(1 + f, 18 + shift) for f in range(length)]
        if swap_at is not None:
            a, b = a[:swap_at] + b[swap_at:], b[:swap_at] + a[swap_at:]
        for segs in (a, b):
            anns.append({"id": len(anns) + 1, "video_id": v, "category_id": 1, "segmentations": segs, "iscrowd": 0})
    return {"videos": _videos(n_videos, length), "categories": [{"id": 1, "name": "box"}], "annotations": anns}


def _only(doc: dict, clips: dict[int, list[int]]) -> dict:
    """The reference for ``clips``: masks at the sampled frames, null elsewhere."""
    anns = []
    for ann in doc["annotations"]:
        frames = set(clips.get(ann["video_id"], []))
        if frames:
            anns.append({**ann, "segmentations": [s if f in frames else None for f, s in enumerate(ann["segmentations"])]})
    return {**doc, "videos": [v for v in doc["videos"] if v["id"] in clips], "annotations": anns}


def _as_coco(doc: dict) -> dict:
    images, anns = [], []
    for v in doc["videos"]:
        for f, name in enumerate(v["file_names"]):
            images.append({"id": v["id"] * 100 + f, "video_id": v["id"], "frame_index": f, "file_name": name, "width": W, "height": H})
    for track in doc["annotations"]:
        for f, seg in enumerate(track["segmentations"]):
            if seg:
                anns.append({"id": len(anns) + 1, "image_id": track["video_id"] * 100 + f, "category_id": 1, "track_id": track["id"], "segmentation": seg, "iscrowd": 0})
    return {"images": images, "annotations": anns, "categories": doc["categories"]}


@pytest.mark.parametrize("case", CASES)
def test_video_ap_of_whole_clips_equals_ytvoseval_on_the_fixtures(case):
    root = FIXTURES / case
    gt = json.loads((root / "gt.json").read_text())
    results = json.loads((root / "results.json").read_text())
    expected = json.loads((root / "expected.json").read_text())
    seller = {
        "videos": gt["videos"],
        "categories": gt["categories"],
        "annotations": [{"id": i + 1, "iscrowd": 0, **r} for i, r in enumerate(results)],
    }
    report = video_audit_compare(gt, seller, seed=1, n_boot=10)
    assert report.ytvis.stats == expected["stats"]
    assert report.video_ap == (expected["stats"][0] if expected["stats"][0] >= 0 else None)
    assert report.scores_assumed is False


def test_a_one_pixel_shift_gives_iou_90_over_110_on_every_sampled_frame():
    clips = {1: [2, 3, 4], 2: [0, 1, 2], 3: [5, 6, 7]}
    reference = _only(_tracks(4, 8), clips)
    report = video_audit_compare(reference, _tracks(4, 8, shift=1), clips=clips, seed=3, n_boot=200)
    assert report.n_videos == 3 and report.n_frames == 9
    assert report.n_reference == report.n_seller == report.n_matched == 18
    assert report.mask_iou == pytest.approx(90 / 110)
    assert report.instance_recall == report.instance_precision == 1.0
    assert 0 < report.boundary_iou < report.mask_iou
    assert report.id_switches == 0 and report.fragmentations == 0
    # every track's spatio-temporal IoU is 90/110 = 0.818: a true positive at the seven
    # thresholds 0.50..0.80, a miss at 0.85..0.95
    assert report.video_ap == pytest.approx(0.7)
    ci = report.intervals["mask_iou"]
    assert ci.low <= report.mask_iou <= ci.high and ci.n_boot == 200
    assert [row.video_id for row in report.per_clip] == [1, 2, 3]
    assert report.tier is not None


def test_video_ap_falls_with_the_perturbation():
    clips = {1: [0, 1, 2, 3]}
    reference = _only(_tracks(1, 6), clips)
    exact = video_audit_compare(reference, _tracks(1, 6), clips=clips, n_boot=10)
    shifted = video_audit_compare(reference, _tracks(1, 6, shift=2), clips=clips, n_boot=10)
    assert exact.mask_iou == 1.0 and exact.video_ap == 1.0
    assert shifted.mask_iou == pytest.approx(80 / 120)
    assert shifted.video_ap < exact.video_ap


def test_an_identity_swap_inside_a_clip_is_two_id_switches_and_outside_none():
    seller = _tracks(2, 8, swap_at=4)
    inside = {1: [2, 3, 4, 5]}
    outside = {2: [4, 5, 6, 7]}  # after the swap only: each reference track sees one seller track
    r_in = video_audit_compare(_only(_tracks(2, 8), inside), seller, clips=inside, n_boot=10)
    r_out = video_audit_compare(_only(_tracks(2, 8), outside), seller, clips=outside, n_boot=10)
    assert r_in.id_switches == 2 and r_in.fragmentations == 0
    assert r_in.mask_iou == 1.0  # per frame the masks are right; only identities changed
    assert r_out.id_switches == 0
    assert r_in.video_ap < r_out.video_ap == 1.0


def test_seller_masks_outside_the_clips_do_not_count():
    clips = {1: [1, 2]}
    reference = _only(_tracks(1, 6), clips)
    seller = _tracks(1, 6)
    noisy = json.loads(json.dumps(seller))
    for ann in noisy["annotations"]:
        ann["segmentations"][5] = _box(20, 20)  # wrong, but at an unsampled frame
    assert video_audit_compare(reference, noisy, clips=clips, n_boot=10).to_dict() == video_audit_compare(reference, seller, clips=clips, n_boot=10).to_dict()


def test_coco_with_tracks_gives_the_same_figures_as_youtube_vis():
    clips = {1: [0, 1, 2], 2: [3, 4, 5]}
    reference = _only(_tracks(2, 6), clips)
    seller = _tracks(2, 6, shift=1, swap_at=1)
    a = video_audit_compare(reference, seller, clips=clips, seed=2, n_boot=50).to_dict()
    b = video_audit_compare(reference, _as_coco(seller), clips=clips, seed=2, n_boot=50).to_dict()
    assert a == b


@pytest.mark.parametrize(
    ("mutate", "code"),
    [
        (lambda ref, sel: sel["videos"][0].update(height=H + 1), "size_mismatch"),
        (lambda ref, sel: sel["videos"][0].update(file_names=sel["videos"][0]["file_names"][:-1]), "frame_count_mismatch"),
        (lambda ref, sel: sel["videos"].pop(0), "unknown_video"),
    ],
)
def test_a_seller_file_that_does_not_fit_the_reference_is_a_located_error(mutate, code):
    reference, seller = _only(_tracks(1, 4), {1: [0, 1]}), _tracks(1, 4)
    if code == "frame_count_mismatch":
        for ann in seller["annotations"]:
            ann["segmentations"] = ann["segmentations"][:-1]
    if code in ("unknown_video", "size_mismatch"):
        seller["annotations"] = []  # (masks of another size would be the gate's rle_size_mismatch first)
    mutate(reference, seller)
    with pytest.raises(EngineInputError) as err:
        video_audit_compare(reference, seller, clips={1: [0, 1]}, n_boot=10)
    assert err.value.code == code and err.value.location == "videos id 1"


def test_a_reference_that_is_not_youtube_vis_is_refused():
    with pytest.raises(EngineInputError) as err:
        video_audit_compare(_as_coco(_tracks(1, 4)), _tracks(1, 4), n_boot=10)
    assert err.value.code == "unknown_format" and err.value.location == "videos"


def test_youtube_vis_tracks_are_checked_frame_by_frame_as_coco_frames():
    from quality.engine.intrinsic import intrinsic_checks
    from quality.engine.ytvis import ytvis_as_coco

    doc = _tracks(2, 3)
    doc["annotations"][0]["segmentations"][1] = None  # a gap: no annotation for that frame
    doc["annotations"][1]["segmentations"][2] = _box(5, 5, side=2)  # 4 pixels: tiny
    doc["annotations"][3]["segmentations"][0] = doc["annotations"][2]["segmentations"][0]  # the same mask twice
    coco = ytvis_as_coco(doc)
    assert len(coco["images"]) == 6 and len(coco["annotations"]) == 11
    assert coco["images"][4] == {"id": 5, "video_id": 2, "frame_index": 1, "file_name": "2/1.png", "height": H, "width": W}
    assert {(a["image_id"], a["track_id"]) for a in coco["annotations"] if a["track_id"] == 2} == {(1, 2), (2, 2), (3, 2)}
    report = intrinsic_checks(coco)
    counts = {f.code: f.count for f in report.findings}
    assert counts["tiny_mask"] == 1 and counts["duplicate_instance"] == 1 and counts["image_without_annotations"] == 0
    assert report.n_images == 6 and report.n_annotations == 11
