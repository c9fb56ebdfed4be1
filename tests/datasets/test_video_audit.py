"""The audit of a video version in process (real PostgreSQL and S3 endpoint): the seeded
clip sample behind ``GET versions/{id}/audit/sample/``, and the auditor's YouTube-VIS
reference: accepted when it fits the clips, refused with 400 and located errors when it
does not, leaving the seller's version as it was."""

from __future__ import annotations

import copy
import json
import urllib.request

import pytest
from django.test import override_settings

from datasets.ingest import version_ingest
from datasets.models import AuditSample, DatasetFile, FileRole
from datasets.services import audit_sample_draw, version_transition
from datasets.states import VersionState
from marketplace.core.storage import get_storage
from marketplace.demo import images_zip, video_dataset, video_reference_for_clips
from tests.datasets.helpers import add_file, json_bytes
from tests.factories import make_version

pytestmark = pytest.mark.django_db
LIMITS = {"audit_clip_videos": 3, "audit_clip_frames": 4}


def _video_version(seller, *, fmt: str, videos: int = 5, frames: int = 7):
    data = video_dataset(videos=videos, frames=frames, seed=11, noise=0.1)
    version = make_version(seller=seller)
    if fmt == "ytvis":
        add_file(version, role="video", path="tracks.json", data=json_bytes(data["ytvis"]))
    else:
        add_file(version, role="annotations", path="annotations.json", data=json_bytes(data["coco"]))
    add_file(version, role="images", path="frames.zip", data=images_zip(data["pngs"]))
    for state in (VersionState.SUBMITTED, VersionState.PROCESSING):
        version_transition(version=version, to_state=state, actor=seller.user)
    assert version_ingest(version_id=version.pk) == "ok"
    return version, data


def _post(auditor, version, doc):
    return auditor.client.post(f"/api/v1/versions/{version.pk}/audit/reference/", data=json.dumps(doc), content_type="application/json")


@override_settings(DATASETS_LIMITS=LIMITS)
@pytest.mark.parametrize("fmt", ["ytvis", "coco"])
def test_the_clip_sample_is_seeded_runs_of_consecutive_frames_with_urls(seller, auditor, fmt):
    version, data = _video_version(seller, fmt=fmt)
    drawn = audit_sample_draw(version=version)
    assert drawn == audit_sample_draw(version=version)  # drawn once
    body = auditor.client.get(f"/api/v1/versions/{version.pk}/audit/sample/").json()
    clips = body["clips"]
    assert len(clips) == 3 and len({c["video_id"] for c in clips}) == 3
    for clip in clips:
        indices = clip["frame_indices"]
        assert len(indices) == 4 and indices == list(range(indices[0], indices[0] + 4))
        assert clip["length"] == 7 and (clip["height"], clip["width"]) == (64, 64)
    assert len(body["frames"]) == 12 and body["images"] == []
    assert {(f["video_id"], f["frame_index"]) for f in body["frames"]} == {(c["video_id"], i) for c in clips for i in c["frame_indices"]}
    frame = body["frames"][0]
    assert set(frame) == {"video_id", "frame_index", "file_name", "url"}
    assert frame["file_name"] == f"videos/{frame['video_id']:03d}/{frame['frame_index']:04d}.png"
    with urllib.request.urlopen(frame["url"], timeout=30) as resp:  # noqa: S310 - the test's own store
        assert resp.read() == data["pngs"][frame["file_name"]]
    # COCO frames are images: their ids are the sample's image ids
    assert drawn == (sorted(i for c in clips for i in c["image_ids"]) if fmt == "coco" else [])
    # another version with the same files draws its own clips, reproducibly
    assert AuditSample.objects.get(version=version).clips == clips


def _seller_state(version):
    version.refresh_from_db()
    files = sorted(DatasetFile.objects.filter(version=version).values_list("role", "path", "sha256"))
    return version.state, version.statistics, version.validation_report, files, sorted(get_storage().list_keys(f"versions/{version.pk}/"))


def _mutations():
    def unknown_video(ref, clips):
        ref["videos"].append({**ref["videos"][0], "id": 999})

    def wrong_frame_count(ref, clips):
        ref["videos"][0]["file_names"] = ref["videos"][0]["file_names"][:-1]
        for ann in ref["annotations"]:
            if ann["video_id"] == ref["videos"][0]["id"]:
                ann["segmentations"], ann["areas"], ann["bboxes"] = ann["segmentations"][:-1], ann["areas"][:-1], ann["bboxes"][:-1]

    def mask_outside(ref, clips):
        clip = clips[0]
        outside = next(f for f in range(clip["length"]) if f not in clip["frame_indices"])
        k, ann = next((k, a) for k, a in enumerate(ref["annotations"]) if a["video_id"] == clip["video_id"])
        ann["segmentations"][outside] = [[1.0, 1.0, 9.0, 1.0, 9.0, 9.0]]
        return f"annotations[{k}].segmentations[{outside}]"

    def size_mismatch(ref, clips):
        ref["videos"][0]["height"] = 63

    def missing_video(ref, clips):
        gone = ref["videos"].pop()
        ref["annotations"] = [a for a in ref["annotations"] if a["video_id"] != gone["id"]]

    def bad_mask(ref, clips):
        ann = ref["annotations"][0]
        f = next(f for f, s in enumerate(ann["segmentations"]) if s)
        ann["segmentations"][f] = {"size": [64, 64], "counts": "0Xo0"}
        return f"annotations[0].segmentations[{f}].counts"

    return [
        (unknown_video, "not_in_sample", "not_in_sample", lambda r: f"videos[{len(r['videos']) - 1}].id"),
        (wrong_frame_count, "not_in_sample", "frame_count_mismatch", lambda r: "videos[0].file_names"),
        (mask_outside, "not_in_sample", "mask_outside_sample", None),
        (size_mismatch, "not_in_sample", "size_mismatch", lambda r: "videos[0].height"),
        (missing_video, "not_in_sample", "missing_video", lambda r: "videos"),
        (bad_mask, "invalid_reference", "rle_sum_mismatch", None),
    ]


@override_settings(DATASETS_LIMITS=LIMITS)
@pytest.mark.parametrize(("mutate", "code", "detail_code", "where"), _mutations(), ids=lambda v: getattr(v, "__name__", None))
def test_a_reference_that_does_not_fit_is_refused_located_and_changes_nothing(seller, auditor, mutate, code, detail_code, where):
    version, data = _video_version(seller, fmt="ytvis")
    audit_sample_draw(version=version)
    clips = auditor.client.get(f"/api/v1/versions/{version.pk}/audit/sample/").json()["clips"]
    reference = copy.deepcopy(video_reference_for_clips(reference=data["reference"], clips=clips))
    before = _seller_state(version)
    location = mutate(reference, clips)
    location = location or (where(reference) if where else None)
    resp = _post(auditor, version, reference)
    assert resp.status_code == 400, resp.content
    body = resp.json()
    assert body["code"] == code
    details = [d for d in body["details"] if d["code"] == detail_code]
    assert details, body
    if location:
        assert details[0]["location"] == location, body
    assert _seller_state(version) == before
    assert not DatasetFile.objects.filter(version=version, role=FileRole.REFERENCE).exists()


@override_settings(DATASETS_LIMITS=LIMITS)
def test_a_reference_that_is_coco_is_refused_for_a_video_version(seller, auditor):
    version, data = _video_version(seller, fmt="coco")
    audit_sample_draw(version=version)
    resp = _post(auditor, version, data["coco"])
    assert resp.status_code == 400
    assert resp.json()["details"][0] == {"location": "videos", "message": resp.json()["details"][0]["message"], "code": "wrong_format"}


@override_settings(DATASETS_LIMITS=LIMITS)
def test_a_fitting_reference_is_stored(seller, auditor):
    version, data = _video_version(seller, fmt="coco")
    audit_sample_draw(version=version)
    clips = auditor.client.get(f"/api/v1/versions/{version.pk}/audit/sample/").json()["clips"]
    resp = _post(auditor, version, video_reference_for_clips(reference=data["reference"], clips=clips))
    assert resp.status_code == 201, resp.content
    assert DatasetFile.objects.filter(version=version, role=FileRole.REFERENCE).count() == 1


@pytest.mark.parametrize(
    ("mutate", "code", "location"),
    [
        (lambda d: d["images"][2].pop("frame_index"), "missing_field", "images[2].frame_index"),
        (lambda d: d["images"][1].__setitem__("frame_index", "3"), "wrong_type", "images[1].frame_index"),
        (lambda d: d["images"][4].__setitem__("video_id", None), "missing_field", "images[4].video_id"),
        (lambda d: d["annotations"][3].pop("track_id"), "missing_field", "annotations[3].track_id"),
    ],
)
def test_coco_frames_need_their_video_their_index_and_tracks(tmp_path, mutate, code, location):
    from datasets.validation import validate_annotation_file

    data = video_dataset(videos=2, frames=3, seed=5, noise=0.1)["coco"]
    path = tmp_path / "a.json"
    path.write_text(json.dumps(data))
    assert validate_annotation_file(path).valid
    mutate(data)
    path.write_text(json.dumps(data))
    result = validate_annotation_file(path)
    assert not result.valid
    assert [(e["code"], e["location"]) for e in result.report["errors"]] == [(code, location)]


def test_every_hostile_mask_in_a_video_reference_is_refused_located_and_nothing_is_stored(seller, auditor):
    """The hostile corpus (tests/hostile_masks.py) at a sampled frame of a reference track:
    the gate's code at that frame's JSON path, 400, no reference stored."""
    from tests.datasets.helpers import png_bytes
    from tests.hostile_masks import MASK_CASES, H, W

    names = [f"v/{f}.png" for f in range(3)]
    square = [[1.0, 1.0, 5.0, 1.0, 5.0, 5.0, 1.0, 5.0]]
    tracks = {
        "videos": [{"id": 1, "height": H, "width": W, "file_names": names}],
        "categories": [{"id": 1, "name": "thing"}],
        "annotations": [{"id": 1, "video_id": 1, "category_id": 1, "segmentations": [square] * 3, "iscrowd": 0}],
    }
    version = make_version(seller=seller)
    add_file(version, role="video", path="tracks.json", data=json_bytes(tracks))
    add_file(version, role="images", path="frames.zip", data=images_zip({n: png_bytes(W, H) for n in names}))
    for state in (VersionState.SUBMITTED, VersionState.PROCESSING):
        version_transition(version=version, to_state=state, actor=seller.user)
    assert version_ingest(version_id=version.pk) == "ok"
    assert audit_sample_draw(version=version) == []  # YouTube-VIS frames are no COCO images
    (clip,) = AuditSample.objects.get(version=version).clips
    assert clip["frame_indices"] == [0, 1, 2]
    before = _seller_state(version)
    good = {**tracks, "annotations": [{**tracks["annotations"][0], "segmentations": [square, "__SEG__", None]}]}
    for name, case in MASK_CASES.items():
        if case.segmentation == "null":
            continue  # null is a frame without a mask in YouTube-VIS, not a hostile mask
        body = json.dumps(good).replace('"__SEG__"', case.segmentation)
        resp = auditor.client.post(f"/api/v1/versions/{version.pk}/audit/reference/", data=body, content_type="application/json")
        assert resp.status_code == 400, (name, resp.content)
        detail = resp.json()["details"][0]
        assert (detail["code"], detail["location"]) == (case.code, f"annotations[0].segmentations[1]{case.where}"), name
    assert _seller_state(version) == before
    assert not DatasetFile.objects.filter(version=version, role=FileRole.REFERENCE).exists()
    body = json.dumps(good).replace('"__SEG__"', json.dumps(square))
    assert auditor.client.post(f"/api/v1/versions/{version.pk}/audit/reference/", data=body, content_type="application/json").status_code == 201


# ---------------------------------------------------------------- several annotation files

SPLIT_AT = 4  # videos 1-4 in the first file, 5-6 in the second


def _split(data: dict, fmt: str, keep) -> dict:
    """The part of the seller's file (YouTube-VIS or COCO with tracks) whose videos ``keep`` takes."""
    if fmt == "ytvis":
        doc = data["ytvis"]
        return {**doc, "videos": [v for v in doc["videos"] if keep(v["id"])], "annotations": [a for a in doc["annotations"] if keep(a["video_id"])]}
    doc = data["coco"]
    images = [img for img in doc["images"] if keep(img["video_id"])]
    ids = {img["id"] for img in images}
    return {**doc, "images": images, "annotations": [a for a in doc["annotations"] if a["image_id"] in ids]}


def _two_file_version(seller, *, fmt: str, second=None):
    """A video version whose tracks are in two files (YouTube-VIS tracks files, or COCO
    train/val splits); ``second`` replaces the second file's document."""
    data = video_dataset(videos=6, frames=7, seed=11, noise=0.1)
    version = make_version(seller=seller)
    role, paths = ("video", ("tracks/a.json", "tracks/b.json")) if fmt == "ytvis" else ("annotations", ("annotations/train.json", "annotations/val.json"))
    add_file(version, role=role, path=paths[0], data=json_bytes(_split(data, fmt, lambda v: v <= SPLIT_AT)))
    add_file(version, role=role, path=paths[1], data=json_bytes(second if second is not None else _split(data, fmt, lambda v: v > SPLIT_AT)))
    add_file(version, role="images", path="frames.zip", data=images_zip(data["pngs"]))
    for state in (VersionState.SUBMITTED, VersionState.PROCESSING):
        version_transition(version=version, to_state=state, actor=seller.user)
    return version, data, paths


@override_settings(DATASETS_LIMITS=LIMITS)
@pytest.mark.parametrize("fmt", ["ytvis", "coco"])
def test_clips_are_drawn_from_every_annotation_file_in_proportion_and_audited(seller, auditor, fmt):
    from quality import services as quality_services
    from quality.models import QualityReport

    version, data, paths = _two_file_version(seller, fmt=fmt)
    assert version_ingest(version_id=version.pk) == "ok"
    audit_sample_draw(version=version)
    clips = auditor.client.get(f"/api/v1/versions/{version.pk}/audit/sample/").json()["clips"]
    # Three clips over 4 + 2 videos: two from the first file, one from the second.
    by_file = {path: sorted(c["video_id"] for c in clips if c["file"] == path) for path in paths}
    assert [len(by_file[p]) for p in paths] == [2, 1], clips
    assert all(v <= SPLIT_AT for v in by_file[paths[0]]) and all(v > SPLIT_AT for v in by_file[paths[1]])
    # Seeded: drawing again from scratch gives the same clips.
    AuditSample.objects.filter(version=version).delete()
    audit_sample_draw(version=version)
    assert AuditSample.objects.get(version=version).clips == clips

    # The auditor's reference for all three clips fits, and the audit compares the seller's
    # tracks of both files with it.
    resp = _post(auditor, version, video_reference_for_clips(reference=data["reference"], clips=clips))
    assert resp.status_code == 201, resp.content
    quality_services.report_compute(version_id=version.pk, kind="audit")
    summary = QualityReport.objects.get(version=version, kind="audit").summary
    assert summary["instance_recall"]["value"] == 1.0 and summary["instance_recall"]["n"] == 3, summary
    assert summary["mask_iou"]["value"] > 0.6, summary




@pytest.mark.parametrize(
    ("fmt", "make_second", "code", "location"),
    [
        ("ytvis", lambda data: _split(data, "ytvis", lambda v: v <= 2), "duplicate_video_id", "videos"),
        # COCO splits: the frames (image ids) are new, the video ids are not.
        ("coco", lambda data: {**_split(data, "coco", lambda v: v <= 2), "images": [{**img, "id": img["id"] + 500} for img in _split(data, "coco", lambda v: v <= 2)["images"]],
                               "annotations": [{**a, "image_id": a["image_id"] + 500} for a in _split(data, "coco", lambda v: v <= 2)["annotations"]]},
         "duplicate_video_id", "images"),
        ("ytvis", lambda data: _split(data, "coco", lambda v: v > SPLIT_AT), "video_format_differs", "$"),
    ],
    ids=["ytvis-same-ids", "coco-same-video-ids", "mixed-formats"],
)
def test_annotation_files_sharing_a_video_id_or_mixing_formats_are_refused_located(seller, fmt, make_second, code, location):
    data = video_dataset(videos=6, frames=7, seed=11, noise=0.1)
    version, _data, paths = _two_file_version(seller, fmt=fmt, second=make_second(data))
    assert version_ingest(version_id=version.pk) == "invalid"
    version.refresh_from_db()
    errors = [e for e in version.validation_report["errors"] if e["code"] == code]
    assert errors and errors[0]["file"] == paths[1] and errors[0]["location"] == location, version.validation_report["errors"]
    assert not AuditSample.objects.filter(version=version).exists()
